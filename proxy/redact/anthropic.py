"""Redaction for the Anthropic Messages API: requests, whole bodies, and streams.

Thinking blocks per mode: ``omit`` keeps the block with ``thinking: ""`` and its signature (the API's own
``display: "omitted"`` shape); ``seal`` does the same but the signature becomes a seal token holding the
thinking text and the original signature; ``placeholder`` keeps the block with the marker as its text;
``drop`` removes thinking and ``redacted_thinking`` blocks and renumbers ``index`` on every later event
(both SDK accumulators address blocks by position). ``redacted_thinking`` is opaque and kept otherwise.
"""

from __future__ import annotations

from typing import Any

from proxy.exchange import Event
from proxy.redact.common import Ctx, RedactionFailed, decode_bodies, json_body, strings_after, zero_keys
from proxy.redact.seal import KeyRing, is_token

_USAGE_PATH = ("output_tokens_details", "thinking_tokens")
_REASONING_BLOCKS = frozenset(("thinking", "redacted_thinking"))


# --------------------------------------------------------------------------- requests


def rewrite_request(
    body: dict[str, Any], ctx: Ctx | None, keyring: KeyRing, context: str, now: float, suppress: bool
) -> list[str]:
    """Restore sealed thinking blocks; ask for ``display: "omitted"`` when hiding. Returns changes made."""
    changes: list[str] = []
    restored = 0
    for m in body.get("messages") or ():
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            continue
        for b in m["content"]:
            if isinstance(b, dict) and b.get("type") == "thinking" and is_token(b.get("signature")):
                p = keyring.open(b["signature"], context=context, now=now)
                if not isinstance(p, dict) or not isinstance(p.get("s"), str):
                    raise RedactionFailed("sealed thinking block has an unexpected payload")
                b["thinking"] = p.get("t", "")
                b["signature"] = p["s"]
                restored += 1
    if restored:
        changes.append(f"restored {restored} sealed thinking block(s)")
    thinking = body.get("thinking")
    if (
        suppress
        and isinstance(thinking, dict)
        and thinking.get("type") in ("enabled", "adaptive")
        and thinking.get("display") != "omitted"
    ):
        thinking["display"] = "omitted"
        changes.append("thinking.display=omitted")
    return changes


# --------------------------------------------------------------------------- whole bodies


def redact_body(obj: Any, ctx: Ctx) -> bool:
    """Redact a non-streaming ``message`` body in place. True when it changed."""
    if not isinstance(obj, dict) or obj.get("type") == "error":
        return False
    changed = _redact_content(obj, ctx)
    if ctx.zero_usage and zero_keys(obj.get("usage"), _USAGE_PATH):
        changed = True
    return changed


def _redact_content(msg: dict[str, Any], ctx: Ctx) -> bool:
    content = msg.get("content")
    if not isinstance(content, list):
        return False
    out: list[Any] = []
    changed = False
    for b in content:
        kind = b.get("type") if isinstance(b, dict) else None
        if kind not in _REASONING_BLOCKS:
            if kind == "text" and isinstance(b.get("text"), str):
                ctx.saw_visible(b["text"])
            out.append(b)
            continue
        if ctx.drop:
            changed = True
            continue
        if kind == "redacted_thinking":
            out.append(b)
            continue
        text = b.get("thinking") if isinstance(b.get("thinking"), str) else ""
        ctx.saw_reasoning(text)
        sig = b.get("signature") if isinstance(b.get("signature"), str) else ""
        nb = dict(b)
        nb["thinking"] = ctx.placeholder or ""
        if ctx.seal_mode:
            nb["signature"] = ctx.seal({"t": text, "s": sig})
        out.append(nb)
        changed = True
    if changed:
        msg["content"] = out
    return changed


# --------------------------------------------------------------------------- streams


def _delta_head(idx: int) -> bytes:
    return b'{"type":"content_block_delta","index":%d,"delta":{"type":"thinking_delta","thinking":"' % idx


def _text_head(idx: int) -> bytes:
    return b'{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":"' % idx


_OFF = b"\x00"  # the hot head while none is armed: no JSON text starts with a NUL byte
_DELTA = "content_block_delta"


def _thinking_text(data: bytes, head: bytes) -> bytes | None:
    """The text of a compact ``thinking_delta`` (``head`` names its block) as the body of a JSON string,
    or None (then the event is parsed): a quote inside must be escaped, and the body must not end in a
    backslash (it would escape the closing quote)."""
    if not data.startswith(head) or not data.endswith(b'"}}'):
        return None
    body = data[len(head) : -3]
    if b'"' in body and (body.find(b"\\\\") >= 0 or body.count(b'"') != body.count(b'\\"')):
        return None
    if body[-1:] == b"\\":
        return None
    return body


class AnthropicStream:
    """Per-stream state: block kinds by upstream index, the index map (drop), text collected (seal)."""

    __slots__ = (
        "cap",
        "counts",
        "ctx",
        "dropped",
        "hot",
        "hot_thinking",
        "kinds",
        "lean",
        "next_index",
        "one",
        "open_idx",
        "open_reasoning",
        "quick",
        "remap",
        "sig",
        "sink",
        "td_head",
        "text",
        "tx_head",
        "usage",
        "watch",
    )

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.kinds: dict[int, str] = {}
        self.remap: dict[int, int] = {}
        self.dropped = 0
        self.open_reasoning = 0  # reasoning blocks started and not yet stopped
        self.open_idx = -1  # upstream index of the last reasoning block started
        self.next_index = 0
        self.text: dict[int, list[bytes]] = {}  # seal: thinking text per block, as JSON string bodies
        self.sig: dict[int, list[str]] = {}
        self.td_head = b"-"  # the bytes a compact thinking_delta of block ``open_idx`` starts with
        self.tx_head = b"-"  # the same for a text_delta of the last text block started
        # Hot path (``on_event``): the head of the compact delta handled last, and whether it is thinking
        self.hot = _OFF
        self.hot_thinking = False
        self.lean = not ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        self.quick = ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        self.watch = ctx.stream_check is not None  # the leak check reads text deltas off the hot path too
        self.cap = ctx.spec.seal_max_bytes
        self.counts = (0, 0)  # ``reads.anthropic_read``: (events read, events sent) of the last read it took
        # ``reads.anthropic_read`` reads usage itself when set (``RedactFilter``): (the dialect's reader, usages)
        self.usage: tuple[Any, list[Any]] | None = None
        self.sink: list[bytes] = []  # seal: the open thinking block's text (``text[open_idx]``)
        # ``reads.anthropic_read``: (the hot head it was built for, the event line + "data: " + that head)
        self.one: tuple[bytes, bytes] = (b"", b"\x00")

    def on_event(self, ev: Event) -> list[Event]:
        """The hot path: a compact delta of the block the last event recognised on bytes belonged to
        (``hot``, armed by ``_event`` only there; every other event disarms it): that head, a string
        body, ``"}}``. The body holds no quote (so the string ends there and nothing else is in the
        event) and does not end in a backslash (which would escape its closing quote). A thinking
        delta is dropped (its text counted, or kept to seal), a text delta relayed as it came (armed
        only while no reasoning block is open and nothing is renumbered; its text fed to the leak check)."""
        data = ev.data
        rest = data.removeprefix(self.hot)
        body = rest.removesuffix(b'"}}')
        if rest is not data and body is not rest and body and 34 not in body and body[-1] != 92:  # '"', '\\'
            if not ev.comment:
                if not self.hot_thinking:
                    if self.watch:
                        self.ctx.saw_visible_raw(body)
                    return [ev]
                ctx = self.ctx
                if self.lean:
                    ctx.reasoning_chars += len(body)
                    return []
                if self.quick:  # the body kept as it came, decoded once when sealed
                    ctx.reasoning_chars += len(body)
                    ctx.held += len(body)
                    if ctx.held > self.cap:
                        raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                    self.sink.append(body)
                    return []
                self._thinking(body)
                return []
        return self._event(ev)

    def _thinking(self, body: bytes) -> None:
        """The open reasoning block's text, a JSON string body read off the bytes: counted, indexed, kept."""
        ctx = self.ctx
        ctx.saw_reasoning_raw(body)
        if ctx.seal_mode:
            kept = self.text.get(self.open_idx)
            if kept is None:
                raise RedactionFailed("Anthropic thinking delta outside an open thinking block")
            kept.append(ctx.hold_raw(body))

    def _event(self, ev: Event) -> list[Event]:
        self.hot = _OFF
        if ev.comment:
            return [ev]
        name = ev.name
        data = ev.data
        ctx = self.ctx
        if name == _DELTA:
            # A text or tool delta that needs no renumbering: relayed unparsed (the leak check reads its
            # text straight from the bytes). One that mentions thinking (a stray thinking_delta of a
            # closed block) or holds a ``\u`` escape (a key spelt with escapes) is parsed.
            if not self.dropped and not self.open_reasoning and b"thinking" not in data and b"\\u" not in data:
                self.hot = self.tx_head  # the hot path checks the head itself (and feeds the leak check)
                self.hot_thinking = False
                if ctx.stream_check is None or b'"text_delta"' not in data:
                    return [ev]
                texts = strings_after(data, b'"text_delta","text":"')
                if texts:  # else: not the compact form, parsed below
                    for t in texts:
                        ctx.saw_visible(t)
                    return [ev]
            # A thinking delta is never forwarded; seal and the leak check read its text from the bytes.
            if b'"type":"thinking_delta"' in data:
                sink = self.text.get(self.open_idx) if ctx.seal_mode else self.sink
                if sink is not None:  # (the hot path checks the head itself)
                    self.hot = self.td_head
                    self.hot_thinking = True
                    self.sink = sink
                if not ctx.seal_mode and ctx.index is None:
                    return []
                body = _thinking_text(data, self.td_head)
                if body is not None:
                    self._thinking(body)
                    return []
        if name == "ping" and b"thinking" not in data and b"\\u" not in data:
            return [ev]
        obj = ev.obj
        if not isinstance(obj, dict):
            raise RedactionFailed("unparsable Anthropic stream event")
        kind = obj.get("type")
        if kind == "content_block_delta":
            return self._delta(ev, obj)
        if kind == "content_block_start":
            return self._start(ev, obj)
        if kind == "content_block_stop":
            return self._stop(ev, obj)
        if kind == "message_start":
            msg = obj.get("message")
            changed = isinstance(msg, dict) and _redact_content(msg, self.ctx)
            if isinstance(msg, dict) and self.ctx.zero_usage:
                changed = zero_keys(msg.get("usage"), _USAGE_PATH) or changed
            if changed:
                ev.set_obj(obj)
            return [ev]
        if kind == "message_delta":
            if self.ctx.zero_usage and zero_keys(obj.get("usage"), _USAGE_PATH):
                ev.set_obj(obj)
            return [ev]
        if "index" in obj:  # an event type this module does not know, addressed to a block
            return self._renumbered(ev, obj) if self._keep(obj) else []
        return [ev]

    def on_end(self) -> list[Event]:
        return []

    # -- block events -------------------------------------------------------------------------------

    def _idx(self, obj: dict[str, Any]) -> int:
        i = obj.get("index")
        if not isinstance(i, int):
            raise RedactionFailed("Anthropic block event without an integer index")
        return i

    def _keep(self, obj: dict[str, Any]) -> bool:
        return self._idx(obj) in self.remap

    def _renumbered(self, ev: Event, obj: dict[str, Any]) -> list[Event]:
        i = self._idx(obj)
        j = self.remap.get(i)
        if j is None:
            raise RedactionFailed("Anthropic event for a block that never started")
        if j != i:
            obj["index"] = j
            ev.set_obj(obj)
        return [ev]

    def _start(self, ev: Event, obj: dict[str, Any]) -> list[Event]:
        i = self._idx(obj)
        block = obj.get("content_block")
        kind = block.get("type") if isinstance(block, dict) else None
        self.kinds[i] = str(kind)
        ctx = self.ctx
        if kind in _REASONING_BLOCKS:
            self.open_reasoning += 1
            self.open_idx = i
            self.td_head = _delta_head(i)
        elif kind == "text":
            self.tx_head = _text_head(i)
        if kind in _REASONING_BLOCKS and ctx.drop:
            self.dropped += 1
            return []
        self.remap[i] = self.next_index
        self.next_index += 1
        if kind != "thinking":
            return self._renumbered(ev, obj)
        assert isinstance(block, dict)
        text = block.get("thinking")
        if isinstance(text, str) and text:
            ctx.saw_reasoning(text)
            self.text.setdefault(i, []).append(json_body(text))
        sig = block.get("signature")
        if ctx.seal_mode:
            self.text.setdefault(i, [])
            self.sig[i] = [sig] if isinstance(sig, str) and sig else []
            block["signature"] = ""
        block["thinking"] = ""
        if self.remap[i] != i:
            obj["index"] = self.remap[i]
        ev.set_obj(obj)
        out = [ev]
        if ctx.placeholder:
            out.append(
                Event.from_obj(
                    {
                        "type": "content_block_delta",
                        "index": self.remap[i],
                        "delta": {"type": "thinking_delta", "thinking": ctx.placeholder},
                    },
                    name="content_block_delta",
                )
            )
        return out

    def _delta(self, ev: Event, obj: dict[str, Any]) -> list[Event]:
        i = self._idx(obj)
        kind = self.kinds.get(i)
        if kind is None:
            raise RedactionFailed("Anthropic delta for a block that never started")
        delta = obj.get("delta")
        dtype = delta.get("type") if isinstance(delta, dict) else None
        if kind in _REASONING_BLOCKS:
            assert isinstance(delta, dict)
            if dtype == "thinking_delta":
                t = delta.get("thinking")
                if isinstance(t, str):
                    self.ctx.saw_reasoning(t)
                    if self.ctx.seal_mode:
                        self.text[i].append(self.ctx.hold_raw(json_body(t)))
                return []
            if dtype == "signature_delta" and i in self.remap:
                if self.ctx.seal_mode:
                    s = delta.get("signature")
                    self.sig[i].append(s if isinstance(s, str) else "")
                    return []
                return self._renumbered(ev, obj)
            return []  # unknown content of a reasoning block: never forwarded
        if dtype in ("thinking_delta", "signature_delta"):
            return []  # reasoning addressed to a block that is not a reasoning block: never forwarded
        if dtype == "text_delta" and isinstance(delta, dict) and isinstance(delta.get("text"), str):
            self.ctx.saw_visible(delta["text"])
        return self._renumbered(ev, obj)

    def _stop(self, ev: Event, obj: dict[str, Any]) -> list[Event]:
        i = self._idx(obj)
        if self.kinds.get(i) in _REASONING_BLOCKS:
            self.open_reasoning = max(0, self.open_reasoning - 1)
        if i not in self.remap:
            return []
        out: list[Event] = []
        if self.ctx.seal_mode and self.kinds.get(i) == "thinking":
            text = decode_bodies(self.text.pop(i, []))
            token = self.ctx.seal({"t": text, "s": "".join(self.sig.pop(i, []))})
            out.append(
                Event.from_obj(
                    {
                        "type": "content_block_delta",
                        "index": self.remap[i],
                        "delta": {"type": "signature_delta", "signature": token},
                    },
                    name="content_block_delta",
                )
            )
        out.extend(self._renumbered(ev, obj))
        return out
