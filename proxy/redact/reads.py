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
usual, nothing changed yet) when its blocks might not be the framer's. Every hiding mode but
``placeholder`` takes this path (``RedactFilter.wants_reads``). With the leak check on, the reasoning and
visible string bodies of a stretch of shortcut events are handed to it together, in stream order (before
the next parsed event, and at the end of the read); the filter acts on a finding before the read is sent.

Each read path leaves in its stream's ``counts`` how many events it read and sent (what counting the
separators of the read and of its output would give: the walks cut the read where the framer does);
``RedactFilter.on_read`` adds them to the exchange, so the relay does not count them again (a count of
``\n\n`` costs about as much as the walk's split of the read). The Chat Completions and Anthropic walks
also read the usage of the events they parse (``usage``: the usage key cannot be in an event they take on
its bytes, a string between a prefix and a suffix without that key), so the relay does not search the
read for it either; the Responses walk, which passes events on their name alone, leaves usage to a
search of the read (``RedactFilter.on_read``).
"""

from __future__ import annotations

from typing import Any

from proxy.forward import USAGE_KEY  # what an event carrying usage holds
from proxy.redact.anthropic import AnthropicStream
from proxy.redact.chat_stream import _FIELD, _VISIBLE, ChatStream
from proxy.redact.common import Ctx, RedactionFailed, decode_bodies
from proxy.redact.responses import _FAST, ResponsesStream
from proxy.redact.runs import named_run, whole_events
from proxy.sse import parse_block

_DATA = b"data: "
# What a read path leaves in its stream's ``counts`` (events read, events sent): for a read of one event
ONE_KEPT = (1, 1)
ONE_DROPPED = (1, 0)


def _framed(on_event: Any, block: bytes, data: bytes, pos: int, end: int, run: int, parts: list[bytes],
            framer: Any, usage: Any = None) -> tuple[int, int]:
    """A block no walk's shortcut took (``data[pos:end]``): parsed as the framer would and given to the
    stream's ``on_event``. Relayed unchanged, its bytes stay in the current run (``run`` returned); otherwise
    the run so far and the encoded events go out and a new run starts after it (``end`` returned). Also
    returns how many events it sent. ``usage``: the stream's ``(usage_of, usages)`` when the walk reads
    usage itself: the usage of a block holding the usage key, as the upstream sent it (before ``on_event``
    may zero some of it), is kept for ``RedactFilter.on_read`` to count once the read is through."""
    ev = parse_block(block, data[pos:end])
    if usage is not None and USAGE_KEY in block:
        u = usage[0](ev.obj)
        if u is not None:
            usage[1].append(u)
    out = on_event(ev)
    if len(out) == 1 and out[0] is ev and ev.raw is not None:
        return run, 1
    if run < pos:
        parts.append(data[run:pos])
    parts.extend([framer.encode(o) for o in out])
    return end, len(out)


def _joined(data: bytes, parts: list[bytes], run: int, pos: int) -> bytes:
    """A walk's output: ``data`` itself when nothing was cut, else the kept parts and the last run."""
    if run == 0:
        return data
    if run < pos:
        parts.append(data[run:pos])
    return b"".join(parts)


def _seen(ctx: Ctx, seen: list[bytes], nseen: int, shown: list[bytes], nshown: int) -> None:
    """The leak check's share of a stretch of fast-path events: the reasoning bodies indexed, then the
    visible ones checked (one call each per stretch, not one per event; ``n*``: their total lengths)."""
    if nseen:
        ctx.saw_reasoning_bodies(seen, nseen)
    if nshown:
        ctx.saw_visible_bodies(shown, nshown)


def _one_shape(hot: tuple[bytes, int, bytes, int, int, str], sep: bytes) -> tuple[Any, bytes, bytes, bytes]:
    """(the hot shape, ``sep``, ``data: `` + its prefix, its suffix + ``sep``): what a read of exactly one
    event of that shape starts and ends with. A shape with a line ending in its prefix or suffix (an
    upstream that split its first chunk's data over lines) is never matched whole."""
    pre, _, suf, _, _, _ = hot
    if 10 in pre or 13 in pre or 10 in suf or 13 in suf:
        pre = b"\x00"
    return hot, sep, _DATA + pre, suf + sep


def _one_hidden(st: ChatStream, body: bytes, key: str, inline: bool) -> None:
    """A read of one hidden event of the hot shape (``chat_read``), outside ``lean``: seal, leak check."""
    ctx = st.ctx
    if st.watch:
        ctx.saw_reasoning_raw(body)
    else:
        ctx.reasoning_chars += len(body)
    if st.seal:
        ctx.held += len(body)
        if ctx.held > st.cap:
            raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
        if inline:
            st.c0.inline.keep(body)
        else:
            st.c0.fields.setdefault(key, []).append(body)


def _one_shown(st: ChatStream, body: bytes) -> None:
    if st.seal:  # offsets of sealed <think> stretches are in characters
        st.c0.inline.visible += len(body) if body.isascii() else len(decode_bodies([body]))
    if st.watch:
        st.ctx.saw_visible_raw(body)


def chat_read(st: ChatStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """The bytes to send for ``data`` (complete events, each ending with ``sep``), or None when the read
    must be framed (line endings other than the separators; a stream with none of the fast paths).

    A read of exactly one event of the hot shape (a model streaming in real time: one event per read)
    is taken first, with the checks of the walk below on the read itself: the prefix, a string body
    with no quote and no line ending, the suffix and the separator; nothing else has a line ending, so
    the read is one framer block."""
    lean = st.lean
    if not (lean or st.quick or st.watch):
        return None
    hot = st.hot
    one = st.one
    if one[0] is not hot or one[1] != sep:
        one = st.one = _one_shape(hot, sep)
    rest = data.removeprefix(one[2])
    body = rest.removesuffix(one[3])
    if rest is not data and body is not rest and body and 34 not in body and 10 not in body and 13 not in body:
        kind = hot[4]
        if kind == _FIELD:
            if body[-1] != 92:  # 92: '\\'
                if lean:
                    st.ctx.reasoning_chars += len(body)
                else:
                    _one_hidden(st, body, hot[5], False)
                st.counts = ONE_DROPPED
                return b""
        elif 60 not in data and 92 not in data:  # 60: '<'
            if kind == _VISIBLE:
                if not lean:
                    _one_shown(st, body)
                st.counts = ONE_KEPT
                return data
            if lean:
                st.ctx.reasoning_chars += len(body)
            else:
                _one_hidden(st, body, hot[5], True)
            st.counts = ONE_DROPPED
            return b""
    seal = st.seal
    watch = st.watch
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
    usage = st.usage
    parts: list[bytes] = []
    run = pos = 0  # the events in data[run:pos] go out as they came
    gone = 0  # events read but not sent, less the extra ones sent (see ``counts``)
    # leak check: the reasoning and visible bodies of the fast-path events since the last parsed one
    seen: list[bytes] = []
    shown: list[bytes] = []
    nseen = nshown = 0
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
                    if watch:
                        seen.append(body)
                        nseen += len(body)
                    else:
                        ctx.reasoning_chars += len(body)
                    if seal:  # the body kept as it came, decoded once when sealed
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
                    gone += 1
                    continue
            elif 60 not in block and 92 not in block:  # 60: '<'
                if kind == _VISIBLE:
                    if seal:  # offsets of sealed <think> stretches are in characters
                        st.c0.inline.visible += len(body) if body.isascii() else len(decode_bodies([body]))
                    if watch:
                        shown.append(body)
                        nshown += len(body)
                    pos = end
                    continue
                if watch:
                    seen.append(body)
                    nseen += len(body)
                else:
                    ctx.reasoning_chars += len(body)
                if seal:
                    ctx.held += len(body)
                    if ctx.held > cap:
                        raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                    st.c0.inline.keep(body)
                if run < pos:
                    parts.append(data[run:pos])
                run = pos = end
                gone += 1
                continue
        if watch and (nseen or nshown):  # in stream order, before the parsed event
            _seen(ctx, seen, nseen, shown, nshown)
            seen, shown, nseen, nshown = [], [], 0, 0
        run, sent = _framed(st._event, block, data, pos, end, run, parts, framer, usage)
        gone += 1 - sent
        pos = end
        pre, _, suf, _, kind, key = st.hot
        dpre = _DATA + pre
    if watch and (nseen or nshown):
        _seen(ctx, seen, nseen, shown, nshown)
    st.counts = (len(blocks), len(blocks) - gone)
    return _joined(data, parts, run, pos)


_DELTA_EVENT = b"event: content_block_delta\ndata: "


def anthropic_read(st: AnthropicStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """``chat_read`` for Anthropic Messages streams: a ``content_block_delta`` event (its ``event:`` line,
    then the data line) of the compact delta ``AnthropicStream.on_event`` would take on its hot path is
    handled here on its bytes (a thinking delta dropped, its text counted or kept to seal; a text delta
    kept as it came; with the leak check, both texts collected for it); any other event is parsed and
    goes through ``on_event``. LF streams only: the blocks between separators are then the framer's, and
    a recognised block holds exactly two lines."""
    lean = st.lean
    seal = st.ctx.seal_mode
    watch = st.watch
    if not (lean or st.quick or watch) or sep != b"\n\n" or b"\r" in data:
        return None
    # A read of exactly one compact delta of the hot block (see ``chat_read``): its head holds one LF, in
    # front of "data: ", and the body none, so the read is one framer block of two lines.
    hot = st.hot
    if st.one[0] is not hot:
        st.one = (hot, _DELTA_EVENT + hot)
    rest = data.removeprefix(st.one[1])
    body = rest.removesuffix(b'"}}\n\n')
    if rest is not data and body is not rest and body and 34 not in body and 10 not in body and body[-1] != 92:
        ctx = st.ctx
        if not st.hot_thinking:
            if watch:
                ctx.saw_visible_raw(body)
            st.counts = ONE_KEPT
            return data
        if watch:
            ctx.saw_reasoning_raw(body)
        else:
            ctx.reasoning_chars += len(body)
        if seal:
            ctx.held += len(body)
            if ctx.held > st.cap:
                raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
            st.sink.append(body)
        st.counts = ONE_DROPPED
        return b""
    blocks = data.split(sep)
    if blocks[-1]:
        return None
    blocks.pop()
    ctx = st.ctx
    cap = st.cap
    usage = st.usage
    parts: list[bytes] = []
    run = pos = 0
    gone = 0  # events read but not sent, less the extra ones sent
    seen: list[bytes] = []
    shown: list[bytes] = []
    nseen = nshown = 0
    head = _DELTA_EVENT + st.hot
    thinking = st.hot_thinking
    for block in blocks:
        end = pos + len(block) + 2
        rest = block.removeprefix(head)
        body = rest.removesuffix(b'"}}')
        # The checks of AnthropicStream.on_event (see there), on the event line + "data: " + the data
        if rest is not block and body is not rest and body and 34 not in body and 10 not in body and body[-1] != 92:
            if not thinking:
                if watch:
                    shown.append(body)
                    nshown += len(body)
                pos = end
                continue
            if watch:
                seen.append(body)
                nseen += len(body)
            else:
                ctx.reasoning_chars += len(body)
            if seal:  # the body kept as it came, decoded once when sealed
                ctx.held += len(body)
                if ctx.held > cap:
                    raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                st.sink.append(body)
            if run < pos:
                parts.append(data[run:pos])
            run = pos = end
            gone += 1
            continue
        if watch and (nseen or nshown):  # in stream order, before the parsed event
            _seen(ctx, seen, nseen, shown, nshown)
            seen, shown, nseen, nshown = [], [], 0, 0
        run, sent = _framed(st.on_event, block, data, pos, end, run, parts, framer, usage)
        gone += 1 - sent
        pos = end
        head = _DELTA_EVENT + st.hot
        thinking = st.hot_thinking
    if watch and (nseen or nshown):
        _seen(ctx, seen, nseen, shown, nshown)
    st.counts = (len(blocks), len(blocks) - gone)
    return _joined(data, parts, run, pos)


_EVENT_LINE = b"event: response."  # what a line naming a Responses event starts with
_PASSED = frozenset(n.encode() for n in _FAST)  # names ResponsesStream.on_event relays unparsed
_HIDDEN = b"response.reasoning_"  # the prefix of the names it drops unparsed
_TEXT_DELTA = b"response.output_text.delta"
# What a block of two lines, ``event: <name>`` and ``data: ...``, is to ``responses_read``: not one it
# knows (parsed), a reasoning event (dropped), a delta relayed as it came, the answer's text delta.
_OTHER, _DROP, _PASS, _SHOWN = 0, 1, 2, 3


def responses_read(st: ResponsesStream, data: bytes, sep: bytes, framer: Any) -> bytes | None:
    """``chat_read`` for OpenAI Responses streams, with the checks of ``ResponsesStream.on_event``'s fast
    path, which looks at the event's name only: a block of exactly two lines, ``event: <name>`` and a
    ``data: `` line, is that event; a ``response.reasoning_*`` one is dropped, a ``response.output_text``
    or ``function_call_arguments`` delta kept as it came while no reasoning item was dropped (``drop``
    renumbers ``output_index`` from the first one on: parsed then); with the leak check, the text of an
    ``output_text`` delta is collected for it (its first ``"delta":"`` string, as ``on_event`` reads it,
    when it holds no backslash; parsed otherwise). Any other block is parsed and goes through
    ``on_event``. A run of events under one head that is dropped or kept whole is found in bulk
    (``runs.named_run``), with the same checks. LF streams only, without placeholder (``wants_reads``)."""
    ctx = st.ctx
    if ctx.placeholder is not None or sep != b"\n\n" or b"\r" in data:
        return None
    if not whole_events(data, sep):
        return None
    watch = ctx.stream_check is not None
    # The head (event line and "data: ") of the last block recognised below, its length and its kind
    hot, lh, hot_kind = st.read_head
    if (hot_kind != _OTHER and data.startswith(hot) and data.find(b"\n", lh) == len(data) - 2
            and data.endswith(b"\n\n")):
        # A read of exactly one event under that head (its only other LF is the separator's): one block
        if hot_kind == _DROP:
            st.counts = ONE_DROPPED
            return b""
        if not st.dropped and (hot_kind == _PASS or not watch):
            st.counts = ONE_KEPT
            return data
    parts: list[bytes] = []
    run = pos = 0
    read = gone = 0  # events read; read but not sent, less the extra ones sent
    shown: list[bytes] = []
    nshown = 0
    size = len(data)
    while pos < size:
        # (kept whole: a kind relayed as it came while nothing was dropped, the answer's text only without
        # the leak check)
        whole = hot_kind == _DROP or ((hot_kind == _PASS or (hot_kind == _SHOWN and not watch)) and not st.dropped)
        if whole and data.startswith(hot, pos):
            # a run of events under the same head: dropped or kept whole, see ``runs.named_run``
            at, taken = named_run(data, pos, hot, sep)
            if at > pos:
                read += taken
                if hot_kind == _DROP:
                    gone += taken
                    if run < pos:
                        parts.append(data[run:pos])
                    run = at
                pos = at
                continue
        cut = data.find(sep, pos)
        end = cut + 2
        block = data[pos:cut]
        read += 1
        if block.startswith(hot) and block.find(b"\n", lh) < 0:
            kind = hot_kind
        else:
            # The name as the framer reads it: the value of the first line, the only "event" line of the block
            kind = _OTHER
            if block.startswith(_EVENT_LINE):
                nl = block.find(b"\n", 16)
                if block.startswith(b"data: ", nl + 1) and block.find(b"\n", nl + 7) < 0:  # (nl = -1: no)
                    name = block[7:nl]
                    if name in _PASSED:
                        kind = _SHOWN if name == _TEXT_DELTA else _PASS
                    elif name.startswith(_HIDDEN):
                        kind = _DROP
                    if kind != _OTHER:
                        lh = nl + 7
                        hot, hot_kind = block[:lh], kind
        if kind == _DROP:
            if run < pos:
                parts.append(data[run:pos])
            run = pos = end
            gone += 1
            continue
        if kind != _OTHER and not st.dropped:
            if not watch or kind == _PASS:
                pos = end
                continue
            k = block.find(b'"delta":"', lh) + 9
            j = block.find(b'"', k) if k >= 9 else -1
            if j >= 0 and 92 not in block[k:j]:  # 92: '\\'; (k = 8: not found)
                shown.append(block[k:j])
                nshown += j - k
                pos = end
                continue
        if nshown:  # in stream order, before the parsed event
            ctx.saw_visible_bodies(shown, nshown)
            shown, nshown = [], 0
        run, sent = _framed(st.on_event, block, data, pos, end, run, parts, framer)
        gone += 1 - sent
        pos = end
    if nshown:
        ctx.saw_visible_bodies(shown, nshown)
    st.read_head = (hot, lh, hot_kind)
    st.counts = (read, read - gone)
    return _joined(data, parts, run, pos)
