"""Redaction for the OpenAI Responses API: requests, whole bodies, and streams.

Reasoning items per mode: ``omit`` keeps the item with ``summary: []`` (and ``content: []``) and its
``encrypted_content`` (what OpenAI sends when no summary is requested); ``seal`` does the same but
``encrypted_content`` becomes a seal token holding summary, content and the original
``encrypted_content``; ``placeholder`` puts the marker in ``summary``; ``drop`` removes the item and
renumbers ``output_index`` on every later event (openai-py <= 2.x and openai-node index a list).

The five carriers are all scrubbed: ``response.reasoning_*`` events, ``content_part.*`` of a reasoning
item, ``output_item.added/done``, the lifecycle events' ``response.output`` and whole bodies.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.openai_responses import LIFECYCLE
from proxy.exchange import Event
from proxy.redact.common import Ctx, RedactionFailed, strings_after, zero_keys
from proxy.redact.seal import KeyRing, is_token

_USAGE_PATH = ("output_tokens_details", "reasoning_tokens")
_LIFECYCLE = LIFECYCLE  # the events that carry the whole response object
_FAST = frozenset(("response.output_text.delta", "response.function_call_arguments.delta"))


# --------------------------------------------------------------------------- requests


def rewrite_request(
    body: dict[str, Any], ctx: Ctx | None, keyring: KeyRing, context: str, now: float, suppress: bool
) -> list[str]:
    changes: list[str] = []
    restored = 0
    inp = body.get("input")
    for item in inp if isinstance(inp, list) else ():
        if (
            isinstance(item, dict)
            and item.get("type") == "reasoning"
            and is_token(item.get("encrypted_content"))
        ):
            p = keyring.open(item["encrypted_content"], context=context, now=now)
            if not isinstance(p, dict) or "summary" not in p:
                raise RedactionFailed("sealed reasoning item has an unexpected payload")
            item["summary"] = p["summary"]
            if "content" in p:
                item["content"] = p["content"]
            else:
                item.pop("content", None)
            if "enc" in p:
                item["encrypted_content"] = p["enc"]
            else:
                del item["encrypted_content"]
            restored += 1
    if restored:
        changes.append(f"restored {restored} sealed reasoning item(s)")
    r = body.get("reasoning")
    if suppress and isinstance(r, dict):
        for key in ("summary", "generate_summary"):
            if r.get(key) is not None:
                del r[key]
                changes.append(f"reasoning.{key} removed")
    return changes


# --------------------------------------------------------------------------- items


def _redact_item(
    item: dict[str, Any], ctx: Ctx, tokens: dict[str, str] | None, final: bool
) -> dict[str, Any]:
    """A copy of a reasoning item in the mode's shape. ``final``: the item is complete (seal it)."""
    texts = [
        p.get("text", "")
        for key in ("summary", "content")
        for p in item.get(key) or ()
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    out = dict(item)
    ph = ctx.placeholder
    out["summary"] = [{"type": "summary_text", "text": ph}] if ph and final else []
    if "content" in item:
        out["content"] = [] if item["content"] is not None else None
    if ctx.seal_mode:
        if not final:
            out["encrypted_content"] = None
        else:
            iid = str(item.get("id", ""))
            token = tokens.get(iid) if tokens is not None else None
            if token is None:
                for t in texts:
                    ctx.saw_reasoning(t)
                payload: dict[str, Any] = {"summary": item.get("summary") or []}
                if "content" in item:
                    payload["content"] = item["content"]
                if "encrypted_content" in item:
                    payload["enc"] = item["encrypted_content"]
                token = ctx.seal(payload)
                if tokens is not None:
                    tokens[iid] = token
            out["encrypted_content"] = token
    elif final and (tokens is None or str(item.get("id", "")) not in tokens):
        for t in texts:
            ctx.saw_reasoning(t)
        if tokens is not None:
            tokens[str(item.get("id", ""))] = ""
    return out


def _redact_output(resp: dict[str, Any], ctx: Ctx, tokens: dict[str, str] | None) -> bool:
    output = resp.get("output")
    changed = False
    if isinstance(output, list) and output:
        new: list[Any] = []
        for item in output:
            if isinstance(item, dict) and item.get("type") == "reasoning":
                changed = True
                if not ctx.drop:
                    new.append(_redact_item(item, ctx, tokens, final=True))
            else:
                new.append(item)
        if changed:
            resp["output"] = new
    if ctx.zero_usage and zero_keys(resp.get("usage"), _USAGE_PATH):
        changed = True
    return changed


def redact_body(obj: Any, ctx: Ctx) -> bool:
    if not isinstance(obj, dict):
        return False
    changed = _redact_output(obj, ctx, None)
    for item in obj.get("output") or ():
        if isinstance(item, dict) and item.get("type") == "message":
            for p in item.get("content") or ():
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    ctx.saw_visible(p["text"])
    return changed


# --------------------------------------------------------------------------- streams


class ResponsesStream:
    """Per-stream state: item kinds by upstream ``output_index``, the index map, seal tokens by item id."""

    __slots__ = ("counts", "ctx", "dropped", "kinds", "next_index", "ph_done", "ph_sent", "read_head", "remap",
                 "tokens")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.kinds: dict[int, str] = {}
        self.remap: dict[int, int] = {}
        self.next_index = 0
        self.dropped = 0
        self.tokens: dict[str, str] = {}
        self.ph_done: set[int] = set()  # reasoning items whose placeholder summary was emitted
        self.ph_sent: set[int] = set()
        # (head, its length, kind): the event head ``reads.responses_read`` recognised last (NUL: none yet)
        self.read_head: tuple[bytes, int, int] = (b"\x00", 1, 0)
        self.counts = (0, 0)  # ``reads.responses_read``: (events read, events sent) of the last read it took

    def on_event(self, ev: Event) -> list[Event]:
        if ev.comment:
            return [ev]
        name = ev.name
        ctx = self.ctx
        if name is not None:
            if name in _FAST and not self.dropped:
                if ctx.stream_check is None or name != "response.output_text.delta":
                    return [ev]
                texts = strings_after(ev.data, b'"delta":"')
                if texts:  # else: not the compact form, parsed below
                    ctx.saw_visible(texts[0])
                    return [ev]
            # Reasoning events are never forwarded as they are (seal and the leak check read the complete
            # item from output_item.done); drop them unparsed unless the placeholder rewrites them.
            elif name.startswith("response.reasoning_") and not ctx.placeholder:
                return []
        obj = ev.obj
        if not isinstance(obj, dict):
            raise RedactionFailed("unparsable Responses stream event")
        kind = obj.get("type")
        if not isinstance(kind, str):
            raise RedactionFailed("Responses stream event without a type")
        if kind in _LIFECYCLE:
            resp = obj.get("response")
            if isinstance(resp, dict) and _redact_output(resp, self.ctx, self.tokens):
                ev.set_obj(obj)
            return [ev]
        idx = obj.get("output_index")
        if kind == "response.output_item.added":
            return self._added(ev, obj, idx)
        if not isinstance(idx, int):
            if "reasoning" in kind:
                return []  # a reasoning event this module does not know: never forwarded
            return [ev]
        ikind = self.kinds.get(idx)
        if ikind is None:
            raise RedactionFailed("Responses event for an output item that was never added")
        if ikind == "reasoning":
            if kind == "response.output_item.done":
                if self.ctx.drop:
                    return []
                obj["item"] = _redact_item(obj["item"], self.ctx, self.tokens, final=True)
                ev.set_obj(obj)
                return self._renumbered(ev, obj)
            if self.ctx.placeholder:
                return self._placeholder(ev, obj, idx, kind)
            return []
        if kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
            self.ctx.saw_visible(obj["delta"])
        return self._renumbered(ev, obj)

    def on_end(self) -> list[Event]:
        return []

    def _added(self, ev: Event, obj: dict[str, Any], idx: Any) -> list[Event]:
        item = obj.get("item")
        if not isinstance(idx, int) or not isinstance(item, dict):
            raise RedactionFailed("malformed response.output_item.added")
        ikind = str(item.get("type"))
        self.kinds[idx] = ikind
        if ikind == "reasoning":
            if self.ctx.drop:
                self.dropped += 1
                return []
            obj["item"] = _redact_item(item, self.ctx, self.tokens, final=False)
            ev.set_obj(obj)
        self.remap[idx] = self.next_index
        self.next_index += 1
        return self._renumbered(ev, obj)

    def _renumbered(self, ev: Event, obj: dict[str, Any]) -> list[Event]:
        i = obj["output_index"]
        j = self.remap.get(i, i)
        if j != i:
            obj["output_index"] = j
            ev.set_obj(obj)
        return [ev]

    def _placeholder(self, ev: Event, obj: dict[str, Any], idx: int, kind: str) -> list[Event]:
        """Rewrite the first summary part into the marker, one event for one, so sequence numbers stay."""
        ph = self.ctx.placeholder
        if obj.get("summary_index") != 0 or idx in self.ph_done:
            return []
        if kind == "response.reasoning_summary_part.added":
            obj["part"] = {"type": "summary_text", "text": ""}
        elif kind == "response.reasoning_summary_text.delta":
            if idx in self.ph_sent:
                return []
            self.ph_sent.add(idx)
            obj["delta"] = ph
            obj.pop("obfuscation", None)
        elif kind == "response.reasoning_summary_text.done":
            obj["text"] = ph
        elif kind == "response.reasoning_summary_part.done":
            obj["part"] = {"type": "summary_text", "text": ph}
            self.ph_done.add(idx)
        else:
            return []
        ev.set_obj(obj)
        return self._renumbered(ev, obj)
