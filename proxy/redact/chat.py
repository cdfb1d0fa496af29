"""Redaction for OpenAI-compatible Chat Completions (DeepSeek, vLLM, SGLang, Ollama, OpenRouter, <think>).

Reasoning fields (``reasoning_content``, ``reasoning``, ``reasoning_details``) are deleted from ``message``
and ``delta``; reasoning inlined in ``content`` as ``<think>…</think>`` is cut out by ``ThinkSplitter``
(at most a tag's length of visible text is held back). ``seal`` puts one token where the API keeps the
reasoning the client must send back: ``reasoning_content`` / ``reasoning`` (same field as upstream) or,
for OpenRouter, one ``reasoning_details`` entry ``{"type": "reasoning.encrypted", "data": <token>}``. In
streams the token is sent once per choice, in the chunk that carries its ``finish_reason`` (or in a
synthetic chunk before ``[DONE]``), so the SDK accumulators see exactly one string. Inline ``<think>``
text is never sealed (templates drop earlier turns' reasoning anyway): ``seal`` acts as ``omit`` there.
``placeholder`` sets the reasoning field to the marker once. Chunks left with nothing to say are dropped,
but the first chunk with ``role`` always goes out (openai-node needs it). ``logprobs`` are nulled while
reasoning is hidden (they cover inline reasoning token by token).
"""

from __future__ import annotations

from typing import Any

import orjson

from proxy.dialects.think import ThinkSplitter
from proxy.exchange import TEXT, Event
from proxy.redact.common import Ctx, RedactionFailed, zero_keys
from proxy.redact.seal import KeyRing, is_token

_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")
_USAGE_PATH = ("completion_tokens_details", "reasoning_tokens")
SEAL_FORMAT = "distillguard-seal-v1"
# Compact chunk shapes recognised on bytes alone, after the stream's own prefix (id, model, ...) and
# suffix were learnt from its first chunk: (delta head, delta tail, reasoning field or None for content).
_SHAPES = (
    (b'"content":"', b'","reasoning_content":null},"logprobs":null,"finish_reason":null}]', None),
    (b'"content":"', b'"},"logprobs":null,"finish_reason":null}]', None),
    (
        b'"content":null,"reasoning_content":"',
        b'"},"logprobs":null,"finish_reason":null}]',
        "reasoning_content",
    ),
    (b'"reasoning_content":"', b'"},"logprobs":null,"finish_reason":null}]', "reasoning_content"),
    (b'"reasoning":"', b'"},"logprobs":null,"finish_reason":null}]', "reasoning"),
)
_CHOICE0 = b'"choices":[{"index":0,"delta":{'
_NULL_END = b'"finish_reason":null}]'


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
        if not isinstance(p, dict) or not p or not set(p) <= set(_FIELDS):
            raise RedactionFailed("sealed reasoning has an unexpected payload")
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
    return {"reasoning_content" if "reasoning_content" in fields else "reasoning": token}


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
        if isinstance(content, str) and content:
            sp = ThinkSplitter(prefilled(ctx))
            pieces = sp.feed(content) + sp.flush()
            visible = "".join(t for k, t in pieces if k == TEXT)
            for k, t in pieces:
                if k != TEXT:
                    ctx.saw_reasoning(t)
                    inline = True
            if visible != content:
                msg["content"] = visible
                changed = True
            ctx.saw_visible(visible)
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


# --------------------------------------------------------------------------- streams


class _Choice:
    __slots__ = ("details", "fields", "ph_sent", "role_sent", "splitter")

    def __init__(self) -> None:
        self.role_sent = False
        self.ph_sent = False
        self.splitter: ThinkSplitter | None = None
        self.fields: dict[str, Any] = {}  # seal: reasoning pieces per field (details: merged entries)
        self.details: list[dict[str, Any]] = []


class ChatStream:
    """Per-stream state: one ``_Choice`` per choice index, and a chunk template for synthetic chunks."""

    __slots__ = ("choices", "ctx", "done", "fast_ok", "head", "prefilled", "shapes", "template")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.choices: dict[int, _Choice] = {}
        self.template: dict[str, Any] | None = None
        self.prefilled = prefilled(ctx)
        self.done = False
        self.fast_ok = False
        self.head: bytes | None = None  # this stream's bytes before the first delta key
        # (prefix, suffix, reasoning field or None) of the compact chunk shapes, with this stream's bytes
        self.shapes: list[tuple[bytes, bytes, str | None]] = []

    def _update_fast(self) -> None:
        """Chunks may skip parsing once the stream's shape is known, unless every chunk must be read (a
        prefilled <think> template, a <think> block in progress, placeholder mode)."""
        self.fast_ok = (
            self.head is not None
            and not self.prefilled
            and not self.ctx.placeholder
            and 0 in self.choices
            # once a "<" was seen the tag splitter owns the content (it may also be dropping the
            # newlines after </think>): every later chunk is parsed
            and all(c.splitter is None for c in self.choices.values())
        )

    def _learn(self, data: bytes) -> None:
        k = data.find(_CHOICE0)
        m = data.rfind(_NULL_END)
        if k > 0 and m > k and data.count(_CHOICE0) == 1:
            head = data[: k + len(_CHOICE0)]
            tail = data[m + len(_NULL_END) :]
            self.shapes = [(head + dh, dt + tail, key) for dh, dt, key in _SHAPES]
            self.head = head

    def _fast(self, data: bytes) -> bool | None:
        """On bytes alone: True = relay unchanged, False = drop, None = parse and look.

        Only the compact shapes in ``_SHAPES`` qualify, with this stream's own prefix and suffix, and a
        string value free of quotes (so nothing else can hide in the delta) and of ``<`` (no tags)."""
        for pre, suf, key in self.shapes:
            if data.startswith(pre) and data.endswith(suf):
                value = data[len(pre) : len(data) - len(suf)]
                if b'"' in value:
                    return None
                ctx = self.ctx
                if key is None:
                    if b"<" in value or b"\\u003" in value:
                        return None
                    if ctx.stream_check is not None:
                        ctx.saw_visible(orjson.loads(b'"' + value + b'"'))
                    return True
                if not (ctx.omit or ctx.drop or ctx.seal_mode):
                    return None
                if ctx.seal_mode or ctx.index is not None:
                    text = orjson.loads(b'"' + value + b'"')
                    ctx.saw_reasoning(text)
                    if ctx.seal_mode:
                        self.choices[0].fields.setdefault(key, []).append(ctx.hold(text))
                return False
        return None

    def on_event(self, ev: Event) -> list[Event]:
        if ev.comment:
            return [ev]
        data = ev.data
        if data.startswith(b"[DONE]"):
            out = self._flush_all()
            self.done = True
            out.append(ev)
            return out
        if self.fast_ok:
            fast = self._fast(data)
            if fast is not None:
                return [ev] if fast else []
        obj = ev.obj
        if not isinstance(obj, dict):
            raise RedactionFailed("unparsable Chat Completions chunk")
        if "error" in obj and "choices" not in obj:
            return [ev]
        if self.template is None:
            self.template = {k: v for k, v in obj.items() if k not in ("choices", "usage")}
            self._learn(data)
        changed = False
        keep = not obj.get("choices")  # the include_usage chunk, or another choiceless chunk
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            c_changed, c_keep = self._choice(choice)
            changed = changed or c_changed
            keep = keep or c_keep
        if self.ctx.zero_usage and zero_keys(obj.get("usage"), _USAGE_PATH):
            changed = True
        if obj.get("usage"):
            keep = True
        self._update_fast()
        if not keep:
            return []
        if changed:
            ev.set_obj(obj)
        return [ev]

    def on_end(self) -> list[Event]:
        return [] if self.done else self._flush_all()

    # -- one choice of one chunk ---------------------------------------------------------------------

    def _choice(self, choice: dict[str, Any]) -> tuple[bool, bool]:
        ctx = self.ctx
        idx = choice.get("index", 0)
        st = self.choices.get(idx)
        if st is None:
            st = self.choices[idx] = _Choice()
        changed = False
        if ctx.spec.strip_logprobs and choice.get("logprobs") is not None:
            choice["logprobs"] = None
            changed = True
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = choice["delta"] = {}
        for key in _FIELDS:
            if key not in delta:
                continue
            v = delta[key]
            if not _is_token_value(v):
                continue  # null / "" / []: nothing to hide, left as the upstream sent it
            del delta[key]
            changed = True
            ctx.saw_reasoning(_reasoning_text(key, v))
            if ctx.seal_mode:
                if key == "reasoning_details":
                    ctx.hold(_reasoning_text(key, v))
                    _merge_details(st.details, v)
                    st.fields[key] = st.details
                elif isinstance(v, str):
                    st.fields.setdefault(key, []).append(ctx.hold(v))
            self._placeholder(st, delta, key)
        content = delta.get("content")
        if isinstance(content, str) and content:
            visible = self._split(st, delta, content)
            if visible != content:
                delta["content"] = visible
                changed = True
            ctx.saw_visible(visible)
        finished = choice.get("finish_reason") is not None
        if finished:
            changed = self._finish(st, delta) or changed
        keep = finished or any(
            (k == "role" and not st.role_sent) or (k != "role" and v not in (None, "", [], {}))
            for k, v in delta.items()
        )
        if "role" in delta and keep:
            st.role_sent = True
        return changed, keep

    def _placeholder(self, st: _Choice, delta: dict[str, Any], key: str) -> None:
        ph = self.ctx.placeholder
        if ph and not st.ph_sent:
            st.ph_sent = True
            delta["reasoning" if key == "reasoning" else "reasoning_content"] = ph

    def _split(self, st: _Choice, delta: dict[str, Any], content: str) -> str:
        sp = st.splitter
        if sp is None:
            if not self.prefilled and "<" not in content:
                return content
            sp = st.splitter = ThinkSplitter(True if self.prefilled else False)
        visible: list[str] = []
        for kind, text in sp.feed(content):
            if kind == TEXT:
                visible.append(text)
            else:
                self.ctx.saw_reasoning(text)
                self._placeholder(st, delta, "reasoning_content")
        return "".join(visible)

    def _finish(self, st: _Choice, delta: dict[str, Any]) -> bool:
        """End of a choice: release held visible text, and send the seal token if reasoning was seen."""
        changed = False
        if st.splitter is not None:
            tail = "".join(t for k, t in st.splitter.flush() if k == TEXT)
            for k, t in st.splitter.flush():
                if k != TEXT:
                    self.ctx.saw_reasoning(t)
            if tail:
                c = delta.get("content")
                delta["content"] = (c if isinstance(c, str) else "") + tail
                self.ctx.saw_visible(tail)
                changed = True
        if st.fields:
            fields = {k: ("".join(v) if k != "reasoning_details" else v) for k, v in st.fields.items()}
            st.fields = {}
            for k in _FIELDS:
                if k in delta and not _is_token_value(delta[k]):
                    del delta[k]
            delta.update(_token_fields(fields, self.ctx.seal(fields)))
            changed = True
        return changed

    def _flush_all(self) -> list[Event]:
        """Synthetic chunks for choices that never finished (no ``finish_reason`` before the end)."""
        out: list[Event] = []
        for idx, st in self.choices.items():
            delta: dict[str, Any] = {}
            if self._finish(st, delta) and delta:
                obj = dict(self.template or {"object": "chat.completion.chunk"})
                obj["choices"] = [{"index": idx, "delta": delta, "logprobs": None, "finish_reason": None}]
                out.append(Event.from_obj(obj))
        return out
