"""Chat Completions streams: per-chunk redaction with a byte-level fast path (see ``ChatStream``).

What each mode does to a chunk is described in ``proxy.redact.chat``, which also holds the request
rewrite, whole bodies and the seal payload helpers shared with this module.
"""

from __future__ import annotations

from typing import Any

from proxy.dialects.think import MARKUP, ThinkSplitter
from proxy.exchange import TEXT, Event
from proxy.redact.chat import (
    _FIELDS,
    _INLINE_KEY,
    _USAGE_PATH,
    _Inline,
    _is_token_value,
    _merge_details,
    _reasoning_text,
    _token_fields,
    prefilled,
)
from proxy.redact.common import Ctx, RedactionFailed, decode_bodies, json_body, string_spans, zero_keys

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
# What a chunk recognised on bytes alone carries: visible content, a reasoning field, or content inside
# an inline <think> block.
_VISIBLE, _FIELD, _INLINE = 0, 1, 2
# The hot shape while none is usable: no JSON text starts with a NUL byte.
_NO_SHAPE: tuple[bytes, int, bytes, int, int, str] = (b"\x00", 1, b"\x00", 1, -1, "")


def _ambiguous(data: bytes) -> bool:
    """Raw bytes that may say more than what was parsed: a reasoning key (a duplicate key: parsers
    disagree on which value counts) or a ``\\u`` escape (a key spelt with escapes). Re-serialised from
    the parsed object, so the client gets exactly what was checked."""
    return b"reasoning" in data or b"\\u" in data


class _Choice:
    __slots__ = ("details", "fields", "inline", "ph_sent", "role_sent", "splitter")

    def __init__(self) -> None:
        self.role_sent = False
        self.ph_sent = False
        self.splitter: ThinkSplitter | None = None
        self.inline = _Inline()  # seal only
        # seal: per field, the reasoning as JSON string bodies (details: the merged entries)
        self.fields: dict[str, Any] = {}
        self.details: list[dict[str, Any]] = []


class ChatStream:
    """Per-stream state: one ``_Choice`` per choice index, and a chunk template for synthetic chunks.

    Fast path: once the first chunk was parsed, later chunks of the compact shapes in ``_SHAPES`` (this
    stream's own prefix and suffix around a single delta string) are handled on their bytes: a visible
    ``content`` free of ``<`` is relayed as it came, a reasoning field (or ``content`` inside an idle
    ``<think>`` block) is dropped. The string must end where the suffix starts (every quote in it
    escaped, so nothing else hides in the delta) and, where tags matter, hold no ``<`` and no ``\\u``
    escape (an escaped ``<``). Anything else is parsed. ``on_event`` tries the shape seen last first, with
    stricter and cheaper checks (see there). Seal and the leak check keep the raw string bodies and decode
    them in batches.
    """

    __slots__ = (
        "c0",
        "cap",
        "choices",
        "content",
        "counts",
        "ctx",
        "done",
        "fast",
        "head",
        "hot",
        "lean",
        "one",
        "prefilled",
        "quick",
        "seal",
        "shapes",
        "template",
        "usage",
        "watch",
    )

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.choices: dict[int, _Choice] = {}
        self.template: dict[str, Any] | None = None
        self.prefilled = prefilled(ctx)
        self.done = False
        # nothing to keep from fast-path chunks but a count: no seal, no leak check
        self.lean = not ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        self.seal = ctx.seal_mode
        # seal without the leak check: the hot path keeps string bodies itself (no calls, see ``on_event``)
        self.quick = ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        # the leak check is on: the read path collects the fast-path bodies for it (``reads.chat_read``)
        self.watch = ctx.index is not None and ctx.stream_check is not None
        self.cap = ctx.spec.seal_max_bytes
        self.counts = (0, 0)  # ``reads.chat_read``: (events read, events sent) of the last read it took
        # ``reads.chat_read`` reads usage itself when set (``RedactFilter``): (the dialect's reader, usages)
        self.usage: tuple[Any, list[Any]] | None = None
        self.c0 = _Choice()  # choice 0's state once it exists (the hot path is armed only then)
        self.head: bytes | None = None  # this stream's bytes before the first delta key
        # (prefix, its length, suffix, its length, reasoning field or None) with this stream's own bytes
        self.shapes: list[tuple[bytes, int, bytes, int, str | None]] = []
        # The shapes usable now, each with what it carries (_VISIBLE, _FIELD, _INLINE); most recent first
        self.fast: list[tuple[bytes, int, bytes, int, int, str]] = []
        self.hot = _NO_SHAPE  # the shape tried first, by ``on_event`` (fast[0], or none)
        self.content: int | None = -1  # what a ``content`` shape carries in ``fast`` (-1: not built yet)
        # ``reads.chat_read``: the hot shape as a whole read of one event (built for ``one[0]``, ``one[1]``)
        self.one: tuple[Any, bytes, bytes, bytes] = (None, b"", b"\x00", b"\x00")

    def _update_fast(self) -> None:
        """Which shapes may skip parsing now: none in placeholder mode, with a prefilled template whose
        splitter does not exist yet, or while the <think> splitter holds text back or is dropping the
        newlines after ``</think>``."""
        ctx = self.ctx
        st = self.choices.get(0)
        if self.head is None or st is None or ctx.placeholder or not ctx.hiding:
            self.fast = []
            self.hot = _NO_SHAPE
            return
        self.c0 = st
        sp = st.splitter
        if sp is None:
            content: int | None = None if self.prefilled else _VISIBLE
        else:
            idle = sp.idle
            content = None if idle is None else (_VISIBLE if idle == TEXT else _INLINE)
        if content == self.content and self.fast:
            return  # the same shapes as after the last parsed chunk, in the order learnt since
        self.content = content
        fast = []
        for pre, lp, suf, ls, key in self.shapes:
            if key is not None:
                fast.append((pre, lp, suf, ls, _FIELD, key))
            elif content is not None:
                fast.append((pre, lp, suf, ls, content, "content"))
        # the shape seen last is tried first
        hot = next((f for f in fast if f[0] == self.hot[0]), None)
        if hot is not None:
            fast.remove(hot)
            fast.insert(0, hot)
        self.fast = fast
        self.hot = fast[0] if fast else _NO_SHAPE

    def _learn(self, data: bytes) -> None:
        """This stream's prefix and suffix around the first choice's delta, from its first chunk. Not when
        they hold the usage key (chunks that all carry usage: each is parsed, ``reads.chat_read`` reads the
        usage of the chunks it parses only)."""
        k = data.find(_CHOICE0)
        m = data.rfind(_NULL_END)
        if k > 0 and m > k and data.count(_CHOICE0) == 1 and b"usage" not in data[:k] and b"usage" not in data[m:]:
            head = data[: k + len(_CHOICE0)]
            tail = data[m + len(_NULL_END) :]
            self.shapes = [
                (head + dh, len(head + dh), dt + tail, len(dt + tail), key) for dh, dt, key in _SHAPES
            ]
            self.head = head

    def on_event(self, ev: Event) -> list[Event]:
        """The hot path: the shape that matched last, proved with as few byte operations as possible (each
        costs ~0.1 µs in CPython: ``int in bytes`` is a bare memchr). ``data`` is the shape's prefix, a
        string body, the suffix: the body holds no quote (so the string ends where the suffix starts) and,
        for a reasoning field, does not end in a backslash (which would escape that quote). For ``content``
        the whole chunk holds no ``<`` and no backslash at all (no tag, no escaped ``<``). Anything else,
        and every chunk while no shape is usable (``_NO_SHAPE``), goes to ``_event``. In seal mode without
        the leak check (``quick``) the kept bodies are counted against ``seal.max_bytes`` here, inline:
        each call saved is ~0.05 µs per event."""
        data = ev.data
        pre, _, suf, _, kind, key = self.hot
        # removeprefix / removesuffix return their input itself when it does not match
        rest = data.removeprefix(pre)
        body = rest.removesuffix(suf)
        if rest is not data and body is not rest and body and 34 not in body and not ev.comment:  # 34: '"'
            if kind == _FIELD:
                if body[-1] != 92:  # 92: '\\'
                    if self.lean:
                        self.ctx.reasoning_chars += len(body)
                        return []
                    if self.quick:  # the body kept as it came, decoded once when sealed
                        ctx = self.ctx
                        ctx.reasoning_chars += len(body)
                        ctx.held += len(body)
                        if ctx.held > self.cap:
                            raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                        fields = self.c0.fields
                        if key in fields:
                            fields[key].append(body)
                        else:
                            fields[key] = [body]
                        return []
                    self._held_field(key, body)
                    return []
            elif 60 not in data and 92 not in data:  # 60: '<'
                if self.lean:
                    if kind == _VISIBLE:
                        return [ev]
                    self.ctx.reasoning_chars += len(body)
                    return []
                if self.quick:
                    inline = self.c0.inline
                    if kind == _VISIBLE:  # offsets of sealed <think> stretches are in characters
                        inline.visible += len(body) if body.isascii() else len(decode_bodies([body]))
                        return [ev]
                    ctx = self.ctx
                    ctx.reasoning_chars += len(body)
                    ctx.held += len(body)
                    if ctx.held > self.cap:
                        raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                    inline.keep(body)
                    return []
                return self._held_content(ev, kind, body)
        return self._event(ev)

    def _held_field(self, key: str, body: bytes) -> None:
        """A reasoning field's string body read off the bytes (seal or the leak check)."""
        ctx = self.ctx
        if ctx.index is None:
            ctx.reasoning_chars += len(body)
        else:
            ctx.saw_reasoning_raw(body)
        if self.seal:
            fields = self.choices[0].fields
            if key in fields:
                fields[key].append(ctx.hold_raw(body))
            else:
                fields[key] = [ctx.hold_raw(body)]

    def _held_content(self, ev: Event, kind: int, body: bytes) -> list[Event]:
        """``content`` read off the bytes (seal or the leak check): visible, or inside a <think> block."""
        ctx = self.ctx
        if kind == _VISIBLE:
            if ctx.stream_check is not None:
                ctx.stream_check.feed_raw(body)
            if self.seal:  # offsets of sealed <think> stretches are in visible characters
                n = len(body) if 92 not in body and body.isascii() else len(decode_bodies([body]))
                self.choices[0].inline.visible += n
            return [ev]
        ctx.saw_reasoning_raw(body)
        if self.seal:
            self.choices[0].inline.removed(ctx, body)
        return []

    def _event(self, ev: Event) -> list[Event]:
        if ev.comment:
            return [ev]
        data = ev.data
        fast = self.fast
        for shape in fast:
            pre, a, suf, ls, kind, key = shape
            if data.startswith(pre) and data.endswith(suf):
                b = len(data) - ls
                # The string must end where the suffix starts (every quote inside escaped, so nothing
                # else hides in the delta); where tags matter, no "<" and no "\\u" (an escaped "<").
                if not string_spans(data, a, b):
                    break
                if kind != _FIELD and (data.find(b"<", a, b) >= 0 or data.find(b"\\u", a, b) >= 0):
                    break
                if shape is not fast[0]:
                    fast.remove(shape)
                    fast.insert(0, shape)
                self.hot = shape
                if self.lean:
                    if kind == _VISIBLE:
                        return [ev]
                    self.ctx.reasoning_chars += b - a
                    return []
                if kind == _FIELD:
                    self._held_field(key, data[a:b])
                    return []
                return self._held_content(ev, kind, data[a:b])
        if data.startswith(b"[DONE]"):
            out = self._flush_all()
            self.done = True
            out.append(ev)
            return out
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
        if changed or _ambiguous(data):
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
                    st.fields.setdefault(key, []).append(ctx.hold_raw(json_body(v)))
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
        seal = self.ctx.seal_mode
        if sp is None:
            if not self.prefilled and "<" not in content:
                if seal:
                    st.inline.visible += len(content)
                return content
            sp = st.splitter = ThinkSplitter(True if self.prefilled else False, markup=seal)
        return "".join(self._pieces(st, delta, sp.feed(content)))

    def _pieces(self, st: _Choice, delta: dict[str, Any], pieces: list[tuple[str, str]]) -> list[str]:
        """The visible texts of splitter pieces; reasoning seen (and kept to seal, with the markup)."""
        ctx = self.ctx
        visible: list[str] = []
        for kind, text in pieces:
            if kind == TEXT:
                visible.append(text)
                if ctx.seal_mode:
                    st.inline.visible += len(text)
                continue
            if kind != MARKUP:
                ctx.saw_reasoning(text)
                self._placeholder(st, delta, "reasoning_content")
            if ctx.seal_mode:
                st.inline.removed(ctx, json_body(text))
        return visible

    def _finish(self, st: _Choice, delta: dict[str, Any]) -> bool:
        """End of a choice: release held visible text, and send the seal token if reasoning was seen."""
        changed = False
        if st.splitter is not None:
            tail = "".join(self._pieces(st, delta, st.splitter.flush()))
            if tail:
                c = delta.get("content")
                delta["content"] = (c if isinstance(c, str) else "") + tail
                self.ctx.saw_visible(tail)
                changed = True
        if st.fields or st.inline.stretches:
            fields = {k: (decode_bodies(v) if k != "reasoning_details" else v) for k, v in st.fields.items()}
            st.fields.clear()  # the same dict: the hot path holds it
            if st.inline.stretches:
                fields[_INLINE_KEY] = st.inline.payload()
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
