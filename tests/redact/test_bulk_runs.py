"""Long reads in the relay's read mode: Responses runs taken in bulk (``proxy.redact.runs.named_run``) end
exactly where the per-event walk would stop, over runs longer than several windows; and long reads of every
dialect with a read path equal the framed path, with one odd event anywhere in a long run."""

from __future__ import annotations

import pytest

from proxy.redact import reads
from proxy.redact.runs import named_run

from .test_reads import Relay, _norm
from .test_reads_runs import ODD_REASONING, ODD_VISIBLE, _check_run, _fake_other, _hid, _shown, _stream

OTHER = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("odd", sorted(ODD_REASONING))
def test_a_long_read_of_reasoning_with_one_odd_event_equals_framed(odd: str, mode: str) -> None:
    n = 60  # one read of the run: several windows
    for at in (4, 20, 45):
        hid = [_hid(i) for i in range(1, n)]
        hid.insert(at, ODD_REASONING[odd])
        blocks = _stream(_hid(0), _shown(0), *hid, _shown(1))
        _check_run(blocks, mode, 3, warm=3)


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("odd", sorted(ODD_VISIBLE))
def test_a_long_read_of_answers_with_one_odd_event_equals_framed(odd: str, mode: str) -> None:
    n = 60
    for at in (4, 20, 45):
        shown = [_shown(i) for i in range(1, n)]
        shown.insert(at, ODD_VISIBLE[odd])
        blocks = _stream(_hid(0), _shown(0), *shown)
        _check_run(blocks, mode, 4, warm=4)


def test_a_read_with_a_line_break_left_over_is_refused_before_any_change() -> None:
    r = Relay("seal")
    r.feed(_stream(_hid(0))[0])
    st = r.ex.state["redact_stream_state"]
    held = st.ctx.held
    blob = b"".join(_stream(_hid(1), _hid(2), _hid(3))[1:])
    for odd in (b"\n", b"\n\n\n"):  # (the separators are taken from the left: one line break is left over)
        assert reads.chat_read(st, blob + odd, b"\n\n", r.framer) is None
        assert st.ctx.held == held
    assert reads.chat_read(st, blob, b"\n\n", r.framer) == b""
    assert st.ctx.held > held


# ------------------------------------------------------------------ runs under one event name (Responses)

NAME = b"event: response.reasoning_summary_text.delta\ndata: "


def _named(i: int) -> bytes:
    return NAME + b'{"type":"response.reasoning_summary_text.delta","sequence_number":%d,"delta":"x %d"}\n\n' % (i, i)


@pytest.mark.parametrize("odd", [b'{"a":1}\ndata: {"b":2}', b'{"a":1}\nid: 7', b"{}\n"])
def test_a_named_run_stops_before_an_event_of_more_lines(odd: bytes) -> None:
    for at in [0, 1, 2, 9, 10, 40, 78]:
        events = [_named(i) for i in range(80)]
        events[at] = NAME + odd + b"\n\n"
        data = OTHER + b"".join(events) + OTHER
        end, taken = named_run(data, len(OTHER), NAME, b"\n\n")
        assert end == len(OTHER) + sum(map(len, events[:at])), at
        assert taken == at == data.count(b"\n\n", len(OTHER), end)


def test_a_named_run_ends_at_the_last_event_followed_by_another_of_the_name() -> None:
    events = [_named(i) for i in range(100)]
    data = b"".join(events) + OTHER + b"".join(events[:5])
    end, taken = named_run(data, 0, NAME, b"\n\n")
    assert end == sum(map(len, events[:-1]))  # (the last one is left to the per-event walk)
    assert taken == 99
    assert named_run(events[0] + OTHER, 0, NAME, b"\n\n") == (0, 0)


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
@pytest.mark.parametrize("dialect", ["anthropic_messages", "openai_responses"])
def test_long_streams_of_other_dialects_in_one_read_equal_framed(dialect: str, mode: str, leak: str) -> None:
    data = _fake_other(dialect, chunks=150)
    model = "claude-x" if dialect == "anthropic_messages" else "o4-mini"
    framed = Relay(mode, model, framed=True, leak=leak, dialect=dialect)
    framed.feed(data)
    want = framed.close()
    for size in (len(data), 5000):
        r = Relay(mode, model, leak=leak, dialect=dialect)
        for i in range(0, len(data), size):
            r.feed(data[i : i + size])
        raw = r.close()
        assert _norm(raw) == _norm(want), size
        assert r.ex.decisions == framed.ex.decisions
        assert b"step by step" not in raw  # proxy.fake.content.REASONING_MARKER


def test_a_responses_run_with_an_event_of_more_lines_equals_framed() -> None:
    data = _fake_other("openai_responses", chunks=60)
    blocks = [b + b"\n\n" for b in data.split(b"\n\n") if b]
    at = next(i for i, b in enumerate(blocks) if b.startswith(b"event: response.reasoning_summary_text.delta")) + 20
    odd = blocks[at].replace(b'"delta":', b'"obfuscation":"x",\ndata: "delta":')
    blocks[at] = odd
    for mode in ("omit", "seal"):
        framed = Relay(mode, "o4-mini", framed=True, dialect="openai_responses")
        framed.feed(b"".join(blocks))
        r = Relay(mode, "o4-mini", dialect="openai_responses")
        r.feed(b"".join(blocks))
        assert _norm(r.close()) == _norm(framed.close())


def test_a_responses_read_with_a_line_break_left_over_is_refused() -> None:
    data = _fake_other("openai_responses", chunks=20)
    for odd in (b"\n", b"\n\n\n"):
        r = Relay("omit", "o4-mini", dialect="openai_responses")
        st = r.ex.state.get("redact_stream_state")
        if st is None:
            r.chain.filters[0].on_read(r.ex, b"", b"\n\n", r.framer)
            st = r.ex.state["redact_stream_state"]
        assert reads.responses_read(st, data + odd, b"\n\n", r.framer) is None
        assert reads.responses_read(st, data + odd + b"\n", b"\n\n", r.framer) is not None
