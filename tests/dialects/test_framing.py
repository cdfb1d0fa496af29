"""Framing of every wire fixture, cut anywhere, plus SSE and JSON-array edge cases."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.exchange import Event
from proxy.sse import Framer, JSONArrayFramer, SSEFramer


def _all_two_piece_splits(make: Any, data: bytes, wire: Any) -> None:
    whole = wire.keys(wire.frame(make(), data))
    for i in range(len(data) + 1):
        got = wire.keys(wire.frame(make(), data, [i]))
        assert got == whole, f"split at byte {i}"


# --------------------------------------------------------------------------- wire fixtures


def test_every_fixture_is_covered(wire: Any) -> None:
    names = set(wire.wire_files())
    covered = set(wire.stream_files()) | set(wire.nonstream_files())
    assert names - covered == {n for n in names if n.endswith(".request.json")}


def test_stream_fixture_events_and_round_trip(stream_file: str, wire: Any) -> None:
    data = wire.load(stream_file)
    framer = wire.framer_for(stream_file)
    events = wire.frame(framer, data)
    payloads = [e for e in events if not e.comment]
    assert len(payloads) >= 2
    for e in payloads:
        assert e.obj is not None or e.data == b"[DONE]", e
    assert wire.reencode(framer, events) == data


def test_stream_fixture_every_byte_split(stream_file: str, wire: Any) -> None:
    data = wire.load(stream_file)
    _all_two_piece_splits(lambda: wire.framer_for(stream_file), data, wire)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_stream_fixture_random_multi_split(stream_file: str, wire: Any, data: st.DataObject) -> None:
    raw = wire.load(stream_file)
    cuts = data.draw(st.lists(st.integers(0, len(raw)), max_size=40))
    whole = wire.frame(wire.framer_for(stream_file), raw)
    framer = wire.framer_for(stream_file)
    got = wire.frame(framer, raw, cuts)
    assert wire.keys(got) == wire.keys(whole)
    assert wire.reencode(framer, got) == raw


def test_nonstream_fixture_parses_and_is_buffered(nonstream_file: str, wire: Any) -> None:
    body = wire.load_json(nonstream_file)
    assert isinstance(body, dict)
    dialect = wire.dialect_for(nonstream_file)
    path = "/v1beta/models/gemini-2.5-flash:generateContent" if dialect.name == "gemini" else None
    ex = wire.make_ex(dialect, {}, path=path)
    assert dialect.framer(ex, "application/json") is None


def test_gemini_sse_reencodes_new_events_with_crlf_and_space(wire: Any) -> None:
    name = "gemini.thoughts.stream.sse"
    framer = wire.framer_for(name)
    events = wire.frame(framer, wire.load(name))
    ev = events[0]
    ev.set_obj({"candidates": []})
    assert framer.encode(ev) == b'data: {"candidates":[]}\r\n\r\n'
    # Before any upstream byte the Gemini framer already writes CRLF.
    fresh = wire.framer_for(name)
    assert fresh.encode(Event.from_obj({})) == b"data: {}\r\n\r\n"


def test_named_events_reencode_with_event_line(wire: Any) -> None:
    name = "anthropic.thinking.stream.sse"
    framer = wire.framer_for(name)
    events = wire.frame(framer, wire.load(name))
    ev = events[1]
    assert ev.name == "content_block_start"
    obj = ev.obj
    ev.set_obj(obj)
    assert framer.encode(ev) == b"event: content_block_start\ndata: " + orjson.dumps(obj) + b"\n\n"


def test_json_array_reencodes_changed_and_new_elements(wire: Any) -> None:
    name = "gemini.thoughts.stream-noalt.json"
    framer = wire.framer_for(name)
    assert isinstance(framer, JSONArrayFramer)
    events = wire.frame(framer, wire.load(name))
    assert len(events) == 4
    events[1].set_obj({"x": 1})
    out = wire.reencode(framer, [*events, Event.from_obj({"error": {"code": 403}})])
    decoded = orjson.loads(out)
    assert decoded[1] == {"x": 1} and decoded[-1] == {"error": {"code": 403}} and len(decoded) == 5


# --------------------------------------------------------------------------- SSE edge cases

SSE_CASES: list[tuple[str, bytes, list[tuple[str | None, bytes, bool]]]] = [
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [(None, b"a", False), (None, b"b", False)]),
    ("cr-alone", b"data: a\r\rdata: b\r\r", [(None, b"a", False), (None, b"b", False)]),
    ("lf", b"data: a\n\ndata: b\n\n", [(None, b"a", False), (None, b"b", False)]),
    ("comment", b": keepalive\n\ndata: x\n\n", [(None, b"keepalive", True), (None, b"x", False)]),
    ("comment-inside-event", b": c\ndata: x\n\n", [(None, b"x", False)]),
    ("multi-line-data", b"data: a\ndata: b\n\n", [(None, b"a\nb", False)]),
    ("named", b"event: ping\ndata: {}\n\n", [("ping", b"{}", False)]),
    ("no-space", b"data:x\n\ndata:  y\n\n", [(None, b"x", False), (None, b" y", False)]),
    ("eof-no-blank-line", b"data: a\n\ndata: b\n", [(None, b"a", False), (None, b"b", False)]),
    ("eof-no-newline", b"data: a\n\nevent: e\ndata: b", [(None, b"a", False), ("e", b"b", False)]),
    ("id-and-retry", b"id: 7\nretry: 10\ndata: z\n\n", [(None, b"z", False)]),
    ("mixed-endings", b"data: a\r\n\ndata: b\n\r\n", [(None, b"a", False), (None, b"b", False)]),
    ("done", b"data: [DONE]\n\n", [(None, b"[DONE]", False)]),
]


@pytest.mark.parametrize(("case", "data", "expected"), SSE_CASES, ids=[c[0] for c in SSE_CASES])
def test_sse_edge_cases(case: str, data: bytes, expected: list[Any], wire: Any) -> None:
    framer = SSEFramer()
    events = wire.frame(framer, data)
    got = [(e.name, e.data, e.comment) for e in events if e.data or not e.comment]
    assert got == expected
    assert wire.reencode(framer, events) == data
    _all_two_piece_splits(SSEFramer, data, wire)


def test_sse_trailing_whitespace_at_eof_is_kept_as_raw(wire: Any) -> None:
    data = b"data: a\n\n\n"
    framer = SSEFramer()
    events = wire.frame(framer, data)
    assert [e.data for e in events if not e.comment] == [b"a"]
    assert wire.reencode(framer, events) == data


def test_sse_eol_follows_upstream() -> None:
    framer = SSEFramer()
    framer.feed(b"data: a\r\n\r\n")
    assert framer.encode(Event.from_obj({"k": 1})) == b'data: {"k":1}\r\n\r\n'
    multi = Event(b"x\ny", name="n")
    assert framer.encode(multi) == b"event: n\r\ndata: x\r\ndata: y\r\n\r\n"
    comment = Event(b"ping", comment=True)
    assert framer.encode(comment) == b": ping\r\n\r\n"


def test_sse_pending_holds_partial_event() -> None:
    framer = SSEFramer()
    assert framer.feed(b"data: abc\n") == []
    assert framer.pending == len(b"data: abc\n")
    assert [e.data for e in framer.feed(b"\n")] == [b"abc"]
    assert framer.pending == 0


# --------------------------------------------------------------------------- JSON-array edge cases

ARRAY = b'[{"a": "x]}\\"{["},\r\n {"b": [1, {"c": "\\\\"}]} ,{"d":"\xc3\xa9"}\n]'


def test_json_array_strings_with_brackets_and_escapes(wire: Any) -> None:
    framer = JSONArrayFramer()
    events = wire.frame(framer, ARRAY)
    assert [e.obj for e in events] == [{"a": 'x]}"{['}, {"b": [1, {"c": "\\"}]}, {"d": "é"}]
    _all_two_piece_splits(JSONArrayFramer, ARRAY, wire)


def test_json_array_truncated_element_is_passed_on(wire: Any) -> None:
    events = wire.frame(JSONArrayFramer(), b'[{"a": 1},{"b": ')
    assert events[0].obj == {"a": 1}
    assert events[1].data == b'{"b": ' and events[1].obj is None


def test_json_array_empty() -> None:
    framer: Framer = JSONArrayFramer()
    assert framer.feed(b"[]") == [] and framer.close() == []
    assert framer.epilogue() == b"[]"


def test_sse_large_event_in_small_chunks(wire: Any) -> None:
    big = (
        b'event: response.completed\r\ndata: {"t":"' + b"x\\r\\n" * 50_000 + b'"}\r\n\r\ndata: [DONE]\r\n\r\n'
    )
    framer = SSEFramer()
    events = wire.frame(framer, big, range(0, len(big), 997))
    assert [e.name for e in events] == ["response.completed", None]
    assert wire.reencode(framer, events) == big
    assert framer.pending == 0


def _reference_block(block: bytes) -> tuple[str | None, bytes, bool]:
    """An SSE block parsed line by line with the general line-ending rule (what ``parse_block`` does for
    any block; LF-only blocks take its shortcuts)."""
    import re

    name, data, comments = None, [], []
    for line in re.split(rb"\r\n|\r|\n", block):
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
    if not data and name is None:
        return None, b"\n".join(comments), True
    return name, b"\n".join(data), False


LINE = st.sampled_from([b"data: ", b"data:", b"event: ", b"event:", b"event: a:b", b": c", b"id: 1", b"retry: 9",
                        b"x", b"{}", b" ", b"\xc3\xa9", b"data: {\"a\":1}", b":", b"event"])


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(st.lists(LINE, max_size=3).map(b"".join), min_size=1, max_size=4),
       eol=st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_parse_block_equals_the_line_by_line_reading(lines: list[bytes], eol: bytes) -> None:
    from proxy.sse import parse_block

    block = eol.join(lines)
    ev = parse_block(block, block + eol + eol)
    assert (ev.name, ev.data, ev.comment) == _reference_block(block)
    assert ev.raw == block + eol + eol


@pytest.mark.parametrize("block", [b"event: ping\ndata: {}", b"event: a:b\ndata: x", b"event:ping\ndata: {}",
                                   b"event: e\ndata:x", b"event: \ndata: ", b"data: x", b"data: x\nevent: e",
                                   b"event: e\ndata: x\ndata: y", b"event: e\n: c", b"id: 1\ndata: x"])
def test_parse_block_shortcuts(block: bytes) -> None:
    from proxy.sse import parse_block

    for eol in (b"\n", b"\r\n"):
        b = block.replace(b"\n", eol)
        ev = parse_block(b, b + eol + eol)
        assert (ev.name, ev.data, ev.comment) == _reference_block(b)
