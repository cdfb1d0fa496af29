"""Incremental stream framing: SSE (any line ending, comments, multi-line data) and JSON-array streams.

A framer turns arbitrarily chunked bytes into ``Event``s that keep their exact raw bytes, and turns
events back into bytes: raw bytes when unchanged, a fresh encoding in the upstream's own style when a
filter replaced the payload.
"""

from __future__ import annotations

import re

from proxy.exchange import Event

# A blank line ends an SSE event. CR alone is a line ending only when not followed by LF.
_EVENT_END = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_LINE = re.compile(rb"\r\n|\r|\n")


class Framer:
    """Base of the framers: ``feed`` chunks, ``close`` at EOF, ``encode`` events, ``epilogue`` at the end."""

    def feed(self, chunk: bytes) -> list[Event]:
        raise NotImplementedError

    def close(self) -> list[Event]:
        raise NotImplementedError

    def encode(self, ev: Event) -> bytes:
        raise NotImplementedError

    def epilogue(self) -> bytes:
        return b""


class SSEFramer(Framer):
    """Server-sent events. Keeps partial events across chunks; remembers the upstream's line ending."""

    __slots__ = ("_buf", "_cr", "_eol_known", "_scan", "eol")

    def __init__(self, eol: bytes = b"\n") -> None:
        self._buf = b""
        self.eol = eol
        self._eol_known = False
        # Where the search for the end of the held event resumes: a large event arriving in many small
        # chunks is then scanned once, not once per chunk.
        self._scan = 0
        self._cr = False  # a CR was seen: line endings may be CRLF or CR, use the general search

    def feed(self, chunk: bytes) -> list[Event]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[Event] = []
        start = 0
        n = len(buf)
        if not self._cr and b"\r" not in chunk:
            # Fast path for LF-only streams (OpenAI, Anthropic): a plain substring search.
            find = buf.find
            pos = self._scan
            while True:
                i = find(b"\n\n", pos)
                if i < 0:
                    break
                end = i + 2
                if not self._eol_known:
                    self._eol_known = True
                events.append(_parse_block(buf[start:i], buf[start:end]))
                start = pos = end
            self._buf = buf[start:] if start < n else b""
            self._scan = max(0, len(self._buf) - 1)
            return events
        self._cr = True
        while start < n:
            m = _EVENT_END.search(buf, max(start, self._scan))
            if m is None:
                break
            end = m.end()
            # A trailing lone CR at the very end of the buffer may be the first half of CRLF.
            if end == n and buf[end - 1 : end] == b"\r":
                break
            if not self._eol_known:
                self.eol = b"\r\n" if m.group(0).startswith(b"\r\n") else b"\n"
                self._eol_known = True
            events.append(_parse_block(buf[start : m.start()], buf[start:end]))
            start = end
        self._buf = buf[start:] if start < n else b""
        # An event end is at most 4 bytes (CRLF CRLF) and may begin just before the held bytes' end.
        self._scan = max(0, len(self._buf) - 4)
        return events

    def close(self) -> list[Event]:
        rest, self._buf = self._buf, b""
        self._scan = 0
        if not rest.strip():
            return [Event(b"", raw=rest, comment=True)] if rest else []
        return [_parse_block(rest.rstrip(b"\r\n"), rest)]

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the end of an event."""
        return len(self._buf)

    def encode(self, ev: Event) -> bytes:
        if ev.raw is not None:
            return ev.raw
        eol = self.eol
        if ev.comment:
            return b":" + (b" " + ev.data if ev.data else b"") + eol + eol
        head = b"event: " + ev.name.encode() + eol if ev.name else b""
        if b"\n" in ev.data or b"\r" in ev.data:
            body = b"".join(b"data: " + line + eol for line in _LINE.split(ev.data))
        else:
            body = b"data: " + ev.data + eol
        return head + body + eol


class EventCutter:
    """Cuts an SSE byte stream at event boundaries without parsing it (the relay's plain and read modes).

    ``cut(chunk)`` returns the complete events at the front of what was held plus ``chunk``, as the bytes
    that came (``b""`` while no event is complete); the rest is held. A partial event is never returned.
    The separator is learnt from the stream (``sep``: ``\\n\\n`` or ``\\r\\n\\r\\n``; the framer's ``eol``
    follows it). Once line endings look mixed (a CR in an LF stream, a CR before any CRLF separator),
    ``off`` turns True and ``cut`` returns everything held plus the chunk: the caller frames the stream
    from there on (the framer holds nothing then, since only complete events were cut before).
    """

    __slots__ = ("framer", "held", "off", "sep")

    def __init__(self, framer: SSEFramer) -> None:
        self.framer = framer
        self.held = b""
        self.sep: bytes | None = None
        self.off = False

    def cut(self, chunk: bytes) -> bytes:
        if self.held:
            chunk, self.held = self.held + chunk, b""
        sep = self.sep
        if sep is None:
            if b"\r\n\r\n" in chunk:
                sep = self.sep = b"\r\n\r\n"
                self.framer.eol = b"\r\n"
            elif b"\r" in chunk:
                self.off = True
                return chunk
            elif b"\n\n" in chunk:
                sep = self.sep = b"\n\n"
            else:
                self.held = chunk
                return b""
        elif b"\r" in chunk and sep == b"\n\n":
            self.off = True
            return chunk
        cut = chunk.rfind(sep)
        if cut < 0:
            self.held = chunk
            return b""
        cut += len(sep)
        if cut == len(chunk):
            return chunk
        self.held = chunk[cut:]
        return chunk[:cut]


def parse_block(block: bytes, raw: bytes) -> Event:
    """The event of one SSE block (``block``: without its blank line; ``raw``: with it), as the framer
    parses it."""
    return _parse_block(block, raw)


def _parse_block(block: bytes, raw: bytes) -> Event:
    # Fast path: one "data: ..." line, the common case for every API.
    if b"\r" in block:
        lines = _LINE.split(block)
    else:
        if block[:6] == b"data: " and b"\n" not in block:
            return Event(block[6:], raw=raw)
        # LF only: a plain split, in C (the regex costs ~25 ns per byte, ~0.5 ms on a 20 KB event).
        lines = block.split(b"\n")
        if len(lines) == 2 and lines[0][:7] == b"event: " and lines[1][:6] == b"data: ":
            # Fast path: "event: <name>" then one data line (Anthropic, Responses)
            return Event(lines[1][6:], name=lines[0][7:].decode("utf-8", "replace"), raw=raw)
    name: str | None = None
    data: list[bytes] = []
    comments: list[bytes] = []
    for line in lines:
        if not line:
            continue
        if line[:1] == b":":
            comments.append(line[1:].lstrip(b" "))
            continue
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
        # id / retry / unknown fields stay in raw only.
    if not data and name is None:
        return Event(b"\n".join(comments), raw=raw, comment=True)
    return Event(b"\n".join(data), name=name, raw=raw)


class JSONArrayFramer(Framer):
    """A JSON array streamed element by element (Gemini ``streamGenerateContent`` without ``alt=sse``).

    Each top-level element is one event; its ``raw`` is the element's own bytes. Encoding writes
    ``[`` before the first element sent, ``,\\r\\n`` between elements and ``]`` in ``epilogue``.
    """

    __slots__ = ("_buf", "_depth", "_elem_start", "_esc", "_in_str", "_opened", "_scan", "_sent_any")

    _INTERESTING = re.compile(rb'[\[\]{}"\\]')
    _IN_STRING = re.compile(rb'["\\]')

    def __init__(self) -> None:
        self._buf = b""
        self._scan = 0
        self._depth = 0
        self._in_str = False
        self._esc = False
        self._elem_start = -1
        self._opened = False
        self._sent_any = False

    def feed(self, chunk: bytes) -> list[Event]:
        self._buf += chunk
        buf = self._buf
        events: list[Event] = []
        i = self._scan
        n = len(buf)
        while i < n:
            if self._esc:
                self._esc = False
                i += 1
                continue
            if self._in_str:
                m = self._IN_STRING.search(buf, i)
                if m is None:
                    i = n
                    break
                i = m.start()
                if buf[i] == 0x5C:  # backslash
                    self._esc = True
                else:
                    self._in_str = False
                i += 1
                continue
            m = self._INTERESTING.search(buf, i)
            if m is None:
                i = n
                break
            i = m.start()
            c = buf[i]
            if c == 0x22:  # quote
                self._in_str = True
                if self._depth == 1 and self._elem_start < 0:
                    self._elem_start = i
            elif c in (0x7B, 0x5B):  # { [
                if not self._opened:
                    if c == 0x5B:
                        self._opened = True
                        self._depth = 1
                        i += 1
                        continue
                if self._depth == 1 and self._elem_start < 0:
                    self._elem_start = i
                self._depth += 1
            elif c in (0x7D, 0x5D):  # } ]
                self._depth -= 1
                if self._depth == 1 and self._elem_start >= 0:
                    elem = buf[self._elem_start : i + 1]
                    events.append(Event(elem, raw=elem))
                    self._elem_start = -1
                elif self._depth == 0:
                    pass  # closing bracket of the array
            i += 1
        # Drop consumed bytes so the buffer holds at most the element in progress.
        keep = self._elem_start if self._elem_start >= 0 else i
        if keep > 0:
            self._buf = buf[keep:]
            if self._elem_start >= 0:
                self._elem_start = 0
            i -= keep
        self._scan = i
        return events

    def close(self) -> list[Event]:
        rest = self._buf[self._elem_start :] if self._elem_start >= 0 else b""
        self._buf = b""
        if rest.strip():
            # A truncated element: pass it on (as data that does not parse) so filters can fail closed.
            return [Event(rest, raw=rest)]
        return []

    def encode(self, ev: Event) -> bytes:
        body = ev.raw if ev.raw is not None else ev.data
        if ev.comment:
            return b""
        if not self._sent_any:
            self._sent_any = True
            return b"[" + body
        return b",\r\n" + body

    def epilogue(self) -> bytes:
        return b"]" if self._sent_any else b"[]"
