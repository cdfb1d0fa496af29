"""Whole reads of a stream redacted at once (the relay's read mode, ``RedactFilter.on_read``).

In read mode the relay hands the redactor complete SSE events as the bytes that came, one upstream read
at a time, instead of one framed ``Event`` per call (Chat Completions, Anthropic Messages and OpenAI
Responses; Gemini is framed event by event). For Chat Completions, ``chat_read`` walks the events
of a read on their bytes with the very checks of ``ChatStream.on_event``'s hot path: a run of reasoning
chunks is dropped and a run of visible chunks goes out as one slice of the read, with no ``Event``
built, no per-event dispatch and no re-encoding. Any other event (the first chunks, the finishing
chunk, ``[DONE]``, comments, a chunk of another shape, one with a quote, ``<`` or backslash in the
wrong place) is parsed as the framer would parse it and goes through ``ChatStream._event``, the slow
path of ``on_event``; the hot shape is reloaded after it.

Fails closed, like the hot path: an event either matches the stream's own compact shape exactly (so its
bytes hold one delta string and nothing else) or is parsed (with the framer's own block parser, on the
framer's own blocks: see the line-ending checks in ``chat_read``). A read is refused (``None``: framed as
usual, nothing changed yet) when its blocks might not be the framer's. Only the lean (``omit``/``drop``,
no leak check) and quick (``seal``, no leak check) streams take this path (``RedactFilter.wants_reads``);
the others keep ``on_event`` per event.
"""

from __future__ import annotations

from typing import Any

from proxy.redact.anthropic import AnthropicStream
from proxy.redact.chat_stream import _FIELD, _VISIBLE, ChatStream
from proxy.redact.common import RedactionFailed, decode_bodies
from proxy.redact.responses import _FAST, ResponsesStream
from proxy.sse import parse_block

_DATA = b"data: "


def _framed(on_event: Any, block: bytes, data: bytes, pos: int, end: int, run: int, parts: list[bytes],
            framer: Any) -> int:
    """A block no walk's shortcut took (``data[pos:end]``): parsed as the framer would and given to the
    stream's ``on_event``. Relayed unchanged, its bytes stay in the current run (``run`` returned); otherwise
    the run so far and the encoded events go out and a new run starts after it (``end`` returned)."""
    ev = parse_block(block, data[pos:end])
    out = on_event(ev)
    if len(out) == 1 and out[0] is ev and ev.raw is not None:
        return run
    if run < pos:
        parts.append(data[run:pos])
    parts.extend([framer.encode(o) for o in out])
    return end


def _joined(data: bytes, parts: list[bytes], run: int, pos: int) -> bytes:
    """A walk's output: ``data`` itself when nothing was cut, else the kept parts and the last run."""
    if run == 0:
        return data
    if run < pos:
        parts.append(data[run:pos])
    return b"".join(parts)


def chat_read(st: ChatStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """The bytes to send for ``data`` (complete events, each ending with ``sep``), or None when the read
    must be framed (line endings other than the separators; a stream that is neither lean nor quick)."""
    lean = st.lean
    quick = st.quick
    if not (lean or quick):
        return None
    blocks = data.split(sep)
    if blocks[-1]:
        return None
    blocks.pop()
    # LF stream: the relay leaves read mode at the first CR, and the framer cuts LF streams exactly at
    # "\n\n", as split does: the blocks are the framer's. A block recognised below holds no LF either
    # (checked in its body), so it is one "data:" line and its bytes after "data: " are the event's data.
    # CRLF stream: the framer cuts at any two line endings; the read is taken only if each of its CR and
    # LF belongs to a separator.
    if len(sep) == 4:
        if not (data.count(b"\r") == data.count(b"\n") == 2 * len(blocks)):
            return None
    elif sep != b"\n\n" or b"\r" in data:
        return None
    ctx = st.ctx
    cap = st.cap
    ls = len(sep)
    parts: list[bytes] = []
    run = pos = 0  # the events in data[run:pos] go out as they came
    pre, _, suf, _, kind, key = st.hot
    dpre = _DATA + pre
    for block in blocks:
        end = pos + len(block) + ls
        rest = block.removeprefix(dpre)
        body = rest.removesuffix(suf)
        # The checks of ChatStream.on_event (see there), on "data: " + the event's data
        if rest is not block and body is not rest and body and 34 not in body and 10 not in body:  # '"', LF
            if kind == _FIELD:
                if body[-1] != 92:  # 92: '\\'
                    ctx.reasoning_chars += len(body)
                    if quick:  # the body kept as it came, decoded once when sealed
                        ctx.held += len(body)
                        if ctx.held > cap:
                            raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                        fields = st.c0.fields
                        if key in fields:
                            fields[key].append(body)
                        else:
                            fields[key] = [body]
                    if run < pos:
                        parts.append(data[run:pos])
                    run = pos = end
                    continue
            elif 60 not in block and 92 not in block:  # 60: '<'
                if kind == _VISIBLE:
                    if quick:  # offsets of sealed <think> stretches are in characters
                        st.c0.inline.visible += len(body) if body.isascii() else len(decode_bodies([body]))
                    pos = end
                    continue
                ctx.reasoning_chars += len(body)
                if quick:
                    ctx.held += len(body)
                    if ctx.held > cap:
                        raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                    st.c0.inline.keep(body)
                if run < pos:
                    parts.append(data[run:pos])
                run = pos = end
                continue
        run = _framed(st._event, block, data, pos, end, run, parts, framer)
        pos = end
        pre, _, suf, _, kind, key = st.hot
        dpre = _DATA + pre
    return _joined(data, parts, run, pos)


_DELTA_EVENT = b"event: content_block_delta\ndata: "


def anthropic_read(st: AnthropicStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """``chat_read`` for Anthropic Messages streams: a ``content_block_delta`` event (its ``event:`` line,
    then the data line) of the compact delta ``AnthropicStream.on_event`` would take on its hot path is
    handled here on its bytes (a thinking delta dropped, its text counted or kept to seal; a text delta
    kept as it came); any other event is parsed and goes through ``on_event``. LF streams only: the
    blocks between separators are then the framer's, and a recognised block holds exactly two lines."""
    lean = st.lean
    quick = st.quick
    if not (lean or quick) or sep != b"\n\n" or b"\r" in data:
        return None
    blocks = data.split(sep)
    if blocks[-1]:
        return None
    blocks.pop()
    ctx = st.ctx
    cap = st.cap
    parts: list[bytes] = []
    run = pos = 0
    head = _DELTA_EVENT + st.hot
    thinking = st.hot_thinking
    for block in blocks:
        end = pos + len(block) + 2
        rest = block.removeprefix(head)
        body = rest.removesuffix(b'"}}')
        # The checks of AnthropicStream.on_event (see there), on the event line + "data: " + the data
        if rest is not block and body is not rest and body and 34 not in body and 10 not in body and body[-1] != 92:
            if not thinking:
                pos = end
                continue
            ctx.reasoning_chars += len(body)
            if quick:  # the body kept as it came, decoded once when sealed
                ctx.held += len(body)
                if ctx.held > cap:
                    raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                st.sink.append(body)
            if run < pos:
                parts.append(data[run:pos])
            run = pos = end
            continue
        run = _framed(st.on_event, block, data, pos, end, run, parts, framer)
        pos = end
        head = _DELTA_EVENT + st.hot
        thinking = st.hot_thinking
    return _joined(data, parts, run, pos)


_EVENT_LINE = b"event: response."  # what a line naming a Responses event starts with
_PASSED = frozenset(n.encode() for n in _FAST)  # names ResponsesStream.on_event relays unparsed
_HIDDEN = b"response.reasoning_"  # the prefix of the names it drops unparsed


def responses_read(st: ResponsesStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """``chat_read`` for OpenAI Responses streams, with the checks of ``ResponsesStream.on_event``'s fast
    path, which looks at the event's name only: a block of exactly two lines, ``event: <name>`` and a
    ``data: `` line, is that event; a ``response.reasoning_*`` one is dropped, a ``response.output_text``
    or ``function_call_arguments`` delta kept as it came while no reasoning item was dropped (``drop``
    renumbers ``output_index`` from the first one on: parsed then). Any other block is parsed and goes
    through ``on_event``. LF streams only, without placeholder or leak check (``wants_reads``)."""
    ctx = st.ctx
    if ctx.placeholder is not None or ctx.stream_check is not None or sep != b"\n\n" or b"\r" in data:
        return None
    blocks = data.split(sep)
    if blocks[-1]:
        return None
    blocks.pop()
    parts: list[bytes] = []
    run = pos = 0
    for block in blocks:
        end = pos + len(block) + 2
        # The name as the framer reads it: the value of the first line, the only "event" line of the block
        if block.startswith(_EVENT_LINE):
            nl = block.find(b"\n", 16)
            if block.startswith(b"data: ", nl + 1) and block.find(b"\n", nl + 7) < 0:  # (nl = -1: no)
                name = block[7:nl]
                if name in _PASSED:
                    if not st.dropped:
                        pos = end
                        continue
                elif name.startswith(_HIDDEN):
                    if run < pos:
                        parts.append(data[run:pos])
                    run = pos = end
                    continue
        run = _framed(st.on_event, block, data, pos, end, run, parts, framer)
        pos = end
    return _joined(data, parts, run, pos)
