"""Read mode for OpenAI Responses streams (``reads.responses_read``): whole reads redacted at once give
exactly what the framed, per-event path gives, with zero reasoning bytes; each guard of the walk."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.fake import responses as fake_responses
from proxy.fake.state import FakeState, Knobs
from proxy.redact import reads
from proxy.redact.common import Ctx
from proxy.redact.responses import ResponsesStream
from proxy.redact.spec import LeakSpec, RedactionSpec
from proxy.sse import SSEFramer

from .helpers import RING, WIRE
from .test_reads import MODES, SECRET, Relay, _check, _events, _norm, _run

S = (SECRET % 9).encode()
KW: dict[str, Any] = {"dialect": "openai_responses"}
RESPONSES = sorted(p.name for p in WIRE.iterdir() if p.name.startswith("responses.") and p.name.endswith(".sse")
                   and ".error." not in p.name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", RESPONSES)
def test_responses_every_byte_boundary_read_mode_equals_framed(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    framed, _ = _run(data, mode, [], "o4-mini", framed=True, **KW)
    whole, r = _run(data, mode, [], "o4-mini", **KW)
    assert r.hook is not None and r.reads > 0
    assert _norm(whole) == _norm(framed)
    _check(name, whole)
    for i in range(1, len(data)):
        raw, _ = _run(data, mode, [i], "o4-mini", **KW)
        assert _norm(raw) == _norm(framed), f"split at {i}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_responses_random_multi_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(RESPONSES))
    mode = data.draw(st.sampled_from(MODES))
    crlf = data.draw(st.booleans())
    blob = (WIRE / name).read_bytes()
    if crlf:  # refused by the read path (LF only): framed, read after read
        blob = blob.replace(b"\n", b"\r\n")
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=40))
    raw, r = _run(blob, mode, cuts, "o4-mini", **KW)
    framed, _ = _run(blob, mode, [], "o4-mini", framed=True, **KW)
    assert _norm(raw) == _norm(framed)
    _check(name, raw.replace(b"\r\n", b"\n"))
    if crlf:
        assert r.reads == 0


def _fake(model: str, chunks: int = 30) -> bytes:
    s, k = FakeState(), Knobs(chunks=chunks)
    body = {"model": model, "input": "Which is larger, 9.11 or 9.8?", "stream": True,
            "reasoning": {"effort": "medium", "summary": "auto"}}
    ev = fake_responses.render(fake_responses.parse(body, s, k), s)  # type: ignore[arg-type]
    assert isinstance(ev, list)
    return b"".join(ev)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", ["o4-mini", "gpt-oss-20b"])  # summary deltas / reasoning_text deltas
@pytest.mark.parametrize("size", [1, 97, 1024, 1 << 20])
def test_responses_fake_stream_in_reads_of_any_size(model: str, mode: str, size: int) -> None:
    data = _fake(model)
    framed, _ = _run(data, mode, [], model, framed=True, **KW)
    raw, r = _run(data, mode, list(range(size, len(data), size)), model, **KW)
    assert _norm(raw) == _norm(framed)
    assert r.reads > 0
    hidden = [e.obj["delta"] for e in _events(data) if e.obj and e.obj.get("type", "").startswith("response.reasoning_")
              and e.obj["type"].endswith(".delta")]
    assert len(hidden) >= 20
    for text in hidden:
        if len(text) >= 8:
            assert orjson.dumps(text)[1:-1] not in _norm(raw)
    visible = "".join(e.obj["delta"] for e in _events(data)
                      if e.obj and e.obj.get("type") == "response.output_text.delta")
    assert visible and "".join(e.obj["delta"] for e in _events(raw)
                               if e.obj and e.obj.get("type") == "response.output_text.delta") == visible


# ------------------------------------------------------------------ crafted reads


def _ev(typ: str, **fields: Any) -> bytes:
    return b"event: " + typ.encode() + b"\ndata: " + orjson.dumps({"type": typ, **fields}) + b"\n\n"


_RESP = {"id": "r1", "object": "response", "status": "in_progress", "output": []}
R_HEAD = _ev("response.created", response=_RESP) + _ev(
    "response.output_item.added", output_index=0, item={"id": "rs1", "type": "reasoning", "summary": []})
R_SUM = _ev("response.reasoning_summary_part.added", output_index=0, summary_index=0, item_id="rs1",
            part={"type": "summary_text", "text": ""})


def r_delta(text: bytes) -> bytes:
    return (b'event: response.reasoning_summary_text.delta\ndata: {"type":"response.reasoning_summary_text.delta",'
            b'"item_id":"rs1","output_index":0,"summary_index":0,"delta":"' + text + b'"}\n\n')


R_DONE = _ev("response.output_item.done", output_index=0,
             item={"id": "rs1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "plan"}]})
R_MSG = _ev("response.output_item.added", output_index=1,
            item={"id": "m1", "type": "message", "role": "assistant", "content": []})


def t_delta(text: bytes) -> bytes:
    return (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"m1",'
            b'"output_index":1,"content_index":0,"delta":"' + text + b'"}\n\n')


R_END = _ev("response.completed", response={**_RESP, "status": "completed"})


def _r_outcome(mode: str, middle: bytes, framed: bool, *, eol: bytes = b"\n") -> tuple[bytes, int]:
    """The client's bytes (or the error that ended the stream) for a reasoning item and an answer in three
    reads, ``middle`` in the second one, among answer deltas (the reasoning item is done by then)."""
    r = Relay(mode, "o4-mini", framed=framed, **KW)
    try:
        for chunk in (R_HEAD + R_SUM + r_delta(b"plan"),
                      r_delta(b" more") + R_DONE + R_MSG + t_delta(b"Hello") + middle + t_delta(b" there"),
                      t_delta(b" tail") + R_END):
            r.feed(chunk.replace(b"\n", eol))
        return _norm(r.close()), r.reads
    except Exception as e:
        return type(e).__name__.encode(), r.reads


_TEXT_DELTA = b'{"type":"response.output_text.delta","item_id":"m1","output_index":1,"content_index":0,"delta":"'
_HIDDEN_DELTA = b'{"type":"response.reasoning_text.delta","item_id":"rs1","output_index":0,"delta":"'


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "middle",
    [
        # startswith("event: response."): the bytes where the name would be are in another field
        b"id: 12 response.reasoning_text.delta\ndata: " + _TEXT_DELTA + b'visible"}\n\n',
        # the second line must be a data line: here it is another event line, which names the event
        b"event: response.output_text.delta\nevent: response.reasoning_text.delta data: " + S + b"\n\n",
        # no third line: a later event line renames the event, both ways
        b"event: response.output_text.delta\ndata: " + _HIDDEN_DELTA + S
        + b'"}\nevent: response.reasoning_text.delta\n\n',
        b"event: response.reasoning_text.delta\ndata: " + _TEXT_DELTA
        + b'visible"}\nevent: response.output_text.delta\n\n',
        # the name is the whole first line: a longer one is not in the passed set
        b"event: response.output_text.delta2\ndata: " + _HIDDEN_DELTA + S + b'"}\n\n',
        # a reasoning event without a data line, and one without a space after "data:" (parsed, dropped)
        b"event: response.reasoning_text.delta\n\n",
        b"event: response.reasoning_text.delta\ndata:" + _HIDDEN_DELTA + S + b'"}\n\n',
        # comments and unknown events are parsed
        b": keepalive\n\nevent: note\ndata: {\"type\":\"note\"}\n\n",
    ],
)
def test_responses_each_guard_read_path_equals_framed(mode: str, middle: bytes) -> None:
    got, taken = _r_outcome(mode, middle, framed=False)
    want, _ = _r_outcome(mode, middle, framed=True)
    assert taken >= 2
    assert got == want
    assert b"SECRET" not in got and b"plan" not in got and b" more" not in got


@pytest.mark.parametrize("mode", MODES)
def test_responses_lone_cr_in_a_crlf_stream_is_framed(mode: str) -> None:
    """CRLF reads are refused: a lone CR is a line ending for the framer (here it makes the event an
    answer delta), which a walk that splits lines at LF would read as a reasoning event."""
    cr = (b"event: response.reasoning_text.delta\r\ndata: " + _TEXT_DELTA + b'visible"}'
          + b"\revent: response.output_text.delta\r\n\r\n")
    for eol in (b"\n", b"\r\n"):
        plain, _ = _r_outcome(mode, b"", framed=True, eol=eol)
        assert b"visible" not in plain
    got, taken = _r_outcome(mode, b"", framed=False, eol=b"\r\n")
    assert taken == 0  # every read refused
    r, framed = Relay(mode, "o4-mini", **KW), Relay(mode, "o4-mini", framed=True, **KW)
    for x in (r, framed):
        x.feed((R_HEAD + R_SUM + R_DONE + R_MSG).replace(b"\n", b"\r\n") + cr)
    assert r.cutter is not None and r.cutter.sep == b"\r\n\r\n" and r.reads == 0
    raw = r.close()
    assert _norm(raw) == _norm(framed.close()) and b"visible" in raw
    assert got == _r_outcome(mode, b"", framed=True, eol=b"\r\n")[0]


def test_drop_renumbers_answers_after_a_dropped_item() -> None:
    """In ``drop`` the answer deltas after a dropped reasoning item are renumbered: never passed as they
    came (``st.dropped``), while the reasoning deltas still go in one go."""
    r = Relay("drop", "o4-mini", **KW)
    r.feed(R_HEAD + R_SUM + r_delta(b"plan") + R_DONE + R_MSG)
    st_ = r.ex.state["redact_stream_state"]
    assert st_.dropped == 1
    r.out.clear()
    r.feed(r_delta(S) + t_delta(b"Hello") + r_delta(S))
    assert r.reads == 2
    (out,) = r.out
    (ev,) = _events(out)
    assert ev.obj["output_index"] == 0 and ev.obj["delta"] == "Hello"
    for mode in ("omit", "seal"):  # nothing renumbered: the bytes as they came
        r = Relay(mode, "o4-mini", **KW)
        r.feed(R_HEAD + R_SUM + r_delta(b"plan") + R_DONE + R_MSG)
        r.out.clear()
        r.feed(r_delta(S) + t_delta(b"Hello") + t_delta(b" there") + r_delta(S))
        assert r.out == [t_delta(b"Hello") + t_delta(b" there")]


def test_a_run_of_reasoning_is_dropped_in_one_read() -> None:
    r = Relay("omit", "o4-mini", **KW)
    r.feed(R_HEAD + R_SUM + r_delta(b"plan"))
    r.out.clear()
    r.feed(b"".join(r_delta(S + b"%d" % i) for i in range(20)))
    assert r.out == [b""] and r.reads == 2


# ------------------------------------------------------------------ refusals (defence in depth)


def _stream(mode: str, leak: str = "off") -> tuple[ResponsesStream, SSEFramer]:
    spec = RedactionSpec(default_mode=mode, leak=LeakSpec(action=leak))
    st_ = ResponsesStream(Ctx(spec, mode, "openai_responses", RING, context="openai_responses|alice", now=time.time()))
    framer = SSEFramer()
    for ev in framer.feed(R_HEAD + R_SUM + R_DONE + R_MSG):
        st_.on_event(ev)
    return st_, framer


def test_refusals_change_nothing() -> None:
    """Reads ``wants_reads`` or the cutter never hand over are refused all the same: placeholder mode
    (which rewrites the first summary delta), an LF read holding a CR, a CRLF read, a read ending
    mid-event."""
    read = r_delta(S) + t_delta(b"Hello")
    st_, framer = _stream("placeholder")
    assert reads.responses_read(st_, read, b"\n\n", framer) is None
    st_, framer = _stream("omit")
    assert reads.responses_read(st_, read.replace(b"Hello", b"Hel\rlo"), b"\n\n", framer) is None
    assert reads.responses_read(st_, read.replace(b"\n", b"\r\n"), b"\r\n\r\n", framer) is None
    assert reads.responses_read(st_, read[:-1], b"\n\n", framer) is None
    assert reads.responses_read(st_, read, b"\n\n", framer) == t_delta(b"Hello")


def test_placeholder_keeps_the_per_event_path() -> None:
    assert Relay("omit", "o4-mini", **KW).hook is not None
    assert Relay("omit", "o4-mini", leak="flag", **KW).hook is not None
    assert Relay("placeholder", "o4-mini", **KW).hook is None


def test_leak_check_reads_answer_deltas_off_the_bytes() -> None:
    """With the leak check on, an answer delta's text is collected on its bytes when its string holds no
    backslash, and parsed (and decoded by ``on_event``) otherwise: the check gets the same text."""
    st_, framer = _stream("omit", "flag")
    check = st_.ctx.stream_check
    assert check is not None
    escaped = t_delta(b'say \\"hi\\"')  # an escaped quote: parsed
    read = r_delta(S) + t_delta(b"Hello") + escaped + t_delta(b" there")
    assert reads.responses_read(st_, read, b"\n\n", framer) == t_delta(b"Hello") + escaped + t_delta(b" there")
    raw = orjson.loads(b'"' + b"".join(check._raw) + b'"')  # (held for the next check window)
    assert check._buf + raw == 'Hellosay "hi" there'


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", MODES)
def test_reads_of_one_event_under_the_hot_head(mode: str, leak: str) -> None:
    """A read of one event under the head recognised last is taken whole only when its only other LF is
    the separator's; reads that hide more lines or events go to the walk, which parses them."""
    hidden = b"event: response.reasoning_summary_text.delta\ndata: " + S
    odd = [
        t_delta(b"Hi")[:-1] + hidden + b"\n\n",  # a second event line: the framer names the block by it
        t_delta(b"Hi")[:-2] + b"\ndata: more\n\n",  # a second data line (an answer event still: relayed)
        t_delta(b"Hi") + hidden.replace(b"data: ", b"data: {\"delta\":\"") + b"\"}\n\n",  # two events
    ]
    for x in odd:
        reads = [R_HEAD + R_SUM + r_delta(b"plan") + R_DONE + R_MSG, t_delta(b"Hello"), t_delta(b" there"), x,
                 t_delta(b" end"), R_END]
        outs = []
        for framed in (False, True):
            r = Relay(mode, "o4-mini", framed=framed, leak=leak, **KW)
            try:
                for piece in reads:
                    r.feed(piece)
                outs.append(_norm(r.close()))
            except Exception as e:
                outs.append(type(e).__name__.encode())
        assert outs[0] == outs[1]
        assert S not in outs[0]
