"""Redaction for OpenAI-compatible Chat Completions (DeepSeek, vLLM, SGLang, Ollama, OpenRouter, <think>).

Reasoning fields (``reasoning_content``, ``reasoning``, ``reasoning_details``) are deleted from ``message``
and ``delta``; reasoning inlined in ``content`` as ``<think>…</think>`` is cut out by ``ThinkSplitter``
(at most a tag's length of visible text is held back). ``seal`` puts one token where the API keeps the
reasoning the client must send back: ``reasoning_content`` / ``reasoning`` (same field as upstream) or,
for OpenRouter, one ``reasoning_details`` entry ``{"type": "reasoning.encrypted", "data": <token>}``. In
streams (``proxy.redact.chat_stream``) the token is sent once per choice, in the chunk that carries its
``finish_reason`` (or in a synthetic chunk before ``[DONE]``), so the SDK accumulators see exactly one
string. Inline ``<think>``
blocks are sealed too: the token (in ``reasoning_content`` unless the stream used ``reasoning``) holds
each removed stretch of ``content`` (tags, reasoning and the newlines dropped after ``</think>``) with its
offset in the visible text, and ``rewrite_request`` puts them back, so the upstream gets the assistant
``content`` exactly as it wrote it (most templates then drop earlier turns' reasoning themselves).
``placeholder`` sets the reasoning field to the marker once. Chunks left with nothing to say are dropped,
but the first chunk with ``role`` always goes out (openai-node needs it). ``logprobs`` are nulled while
reasoning is hidden (they cover inline reasoning token by token).
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.think import MARKUP, ThinkSplitter
from proxy.exchange import TEXT
from proxy.redact.common import Ctx, RedactionFailed, decode_bodies, json_body, zero_keys
from proxy.redact.seal import KeyRing, is_token

_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
_INLINE_KEY = "inline"  # seal payload key of inline <think> stretches: [[offset, text], ...]
_PAYLOAD_KEYS = frozenset((*_FIELDS, _INLINE_KEY))
_USAGE_PATH = ("completion_tokens_details", "reasoning_tokens")
SEAL_FORMAT = "distillguard-seal-v1"


# --------------------------------------------------------------------------- requests


def rewrite_request(
    body: dict[str, Any], ctx: Ctx | None, keyring: KeyRing, context: str, now: float, suppress: bool
) -> list[str]:
    changes: list[str] = []
    restored = 0
    for m in body.get("messages") or ():
        if not isinstance(m, dict) or m.get("role") != "assistant":
            continue
        token = None
        for key in ("reasoning_content", "reasoning"):
            if is_token(m.get(key)):
                token = m.pop(key)
        details = m.get("reasoning_details")
        if isinstance(details, list):
            for d in details:
                if isinstance(d, dict) and d.get("format") == SEAL_FORMAT and is_token(d.get("data")):
                    token = d["data"]
                    del m["reasoning_details"]
                    break
        if token is None:
            continue
        p = keyring.open(token, context=context, now=now)
        if not isinstance(p, dict) or not p or not set(p) <= _PAYLOAD_KEYS:
            raise RedactionFailed("sealed reasoning has an unexpected payload")
        inline = p.pop(_INLINE_KEY, None)
        if inline is not None:
            m["content"] = _restore_inline(m.get("content"), inline)
        m.update(p)
        restored += 1
    if restored:
        changes.append(f"restored sealed reasoning in {restored} message(s)")
    if suppress:
        # Only knobs the client already uses: strict OpenAI-compatible servers reject unknown fields.
        if body.get("include_reasoning") is True:
            body["include_reasoning"] = False
            changes.append("include_reasoning=false")
        r = body.get("reasoning")
        if isinstance(r, dict) and r.get("exclude") is not True:
            r["exclude"] = True
            changes.append("reasoning.exclude=true")
    return changes


def _token_fields(fields: dict[str, Any], token: str) -> dict[str, Any]:
    if "reasoning_details" in fields:
        return {
            "reasoning_details": [
                {"type": "reasoning.encrypted", "data": token, "id": None, "format": SEAL_FORMAT, "index": 0}
            ]
        }
    return {"reasoning" if "reasoning" in fields and "reasoning_content" not in fields else "reasoning_content": token}


def _restore_inline(content: Any, stretches: Any) -> str:
    """The original ``content``: each removed stretch put back at its offset in the visible text."""
    if content is None:
        content = ""
    if not isinstance(content, str) or not isinstance(stretches, list):
        raise RedactionFailed("sealed <think> reasoning needs the assistant content as a string")
    for item in reversed(stretches):
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], int) and isinstance(item[1], str)):
            raise RedactionFailed("sealed reasoning has an unexpected payload")
        off = min(max(item[0], 0), len(content))
        content = content[:off] + item[1] + content[off:]
    return content


class _Inline:
    """Seal of inline <think> reasoning: the removed stretches of ``content`` (JSON string bodies), each at
    its offset in the visible text, and the visible length so far (in characters)."""

    __slots__ = ("stretches", "visible")

    def __init__(self) -> None:
        self.visible = 0
        self.stretches: list[tuple[int, list[bytes]]] = []

    def removed(self, ctx: Ctx, body: bytes) -> None:
        ctx.hold_raw(body)
        self.keep(body)

    def keep(self, body: bytes) -> None:
        """A removed stretch's body, at the current visible offset (already counted by the caller)."""
        st = self.stretches
        if st and st[-1][0] == self.visible:
            st[-1][1].append(body)
        else:
            st.append((self.visible, [body]))

    def payload(self) -> list[list[Any]]:
        out = [[off, decode_bodies(bodies)] for off, bodies in self.stretches]
        self.stretches = []
        return out


def _merge_details(acc: list[dict[str, Any]], items: list[Any]) -> None:
    """Accumulate streamed ``reasoning_details`` entries by ``index`` (text concatenated)."""
    for d in items:
        if not isinstance(d, dict):
            continue
        i = d.get("index", 0)
        cur = next((a for a in acc if a.get("index", 0) == i), None)
        if cur is None:
            acc.append(dict(d))
            continue
        for k, v in d.items():
            if k in ("text", "summary", "data") and isinstance(v, str) and isinstance(cur.get(k), str):
                cur[k] += v
            elif v is not None:
                cur[k] = v


def _is_token_value(v: Any) -> bool:
    return (isinstance(v, str) and v != "") or (isinstance(v, list) and bool(v))


def _reasoning_text(key: str, v: Any) -> str:
    if isinstance(v, str):
        return v
    if key == "reasoning_details" and isinstance(v, list):
        return "".join(str(d.get("text") or d.get("summary") or "") for d in v if isinstance(d, dict))
    return ""


def prefilled(ctx: Ctx) -> bool:
    return any(p in ctx.model for p in ctx.spec.prefilled_models)


# --------------------------------------------------------------------------- whole bodies


def redact_body(obj: Any, ctx: Ctx) -> bool:
    if not isinstance(obj, dict) or "error" in obj:
        return False
    changed = False
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if ctx.spec.strip_logprobs and choice.get("logprobs") is not None:
            choice["logprobs"] = None
            changed = True
        msg = choice.get("message")
        if not isinstance(msg, dict):
            continue
        fields: dict[str, Any] = {}
        for key in _FIELDS:
            if _is_token_value(msg.get(key)):
                fields[key] = msg.pop(key)
                ctx.saw_reasoning(_reasoning_text(key, fields[key]))
        inline = False
        content = msg.get("content")
        sealed = _Inline()
        if isinstance(content, str) and content:
            sp = ThinkSplitter(prefilled(ctx), markup=ctx.seal_mode)
            pieces = sp.feed(content) + sp.flush()
            visible = "".join(t for k, t in pieces if k == TEXT)
            for k, t in pieces:
                if k == TEXT:
                    sealed.visible += len(t)
                    continue
                inline = True
                if k != MARKUP:
                    ctx.saw_reasoning(t)
                if ctx.seal_mode:
                    sealed.removed(ctx, json_body(t))
            if visible != content:
                msg["content"] = visible
                changed = True
            ctx.saw_visible(visible)
        if sealed.stretches:
            fields[_INLINE_KEY] = sealed.payload()
        if fields:
            changed = True
            if ctx.seal_mode:
                msg.update(_token_fields(fields, ctx.seal(fields)))
        if ctx.placeholder and (fields or inline):
            key = next((k for k in ("reasoning_content", "reasoning") if k in fields), "reasoning_content")
            msg[key] = ctx.placeholder
            changed = True
    if ctx.zero_usage and zero_keys(obj.get("usage"), _USAGE_PATH):
        changed = True
    return changed
