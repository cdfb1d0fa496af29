"""Read mode counts the events it reads and sends (``RedactFilter.on_read`` adds them to ``ex.events_in`` /
``ex.events_out``, so the relay does not count separators again): on every read, the counts equal the
separators in the read and in the bytes sent, on every fixture with a read path, split anywhere, on the
fake upstream's long streams in reads of any size, and on runs with an odd event in them."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.dialects import DIALECTS
from proxy.exchange import Event, Exchange
from proxy.forward import _merge_usage
from proxy.sse import SSEFramer

from .helpers import WIRE
from .test_bulk_runs import OTHER
from .test_reads import CHAT, MODES, Relay, _model
from .test_reads_anthropic import _fake_anthropic
from .test_reads_responses import RESPONSES, _fake
from .test_reads_runs import ODD_REASONING, ODD_VISIBLE, _hid, _shown, _stream


class Counted(Relay):
    """A ``Relay`` whose read hook is checked on every read it takes: the events it adds to the exchange's
    counters are the separators in the read and in what it returns."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        hook = self.hook
        assert hook is not None
        self.checked = 0

        def counted(ex: Any, data: bytes, sep: bytes, framer: Any) -> bytes | None:
            n_in, n_out = ex.events_in, ex.events_out
            sent: bytes | None = hook(ex, data, sep, framer)
            if sent is None:
                assert (ex.events_in, ex.events_out) == (n_in, n_out)
                _merge_usage(ex, ex.dialect.usage, _framed_events(data))  # (the relay frames it)
            else:
                assert ex.events_in - n_in == data.count(sep)
                assert ex.events_out - n_out == sent.count(sep)
                self.checked += 1
            return sent

        self.hook = counted

    def close(self) -> bytes:
        if self.cutter is not None and self.cutter.held:  # (the relay frames the last, unfinished event)
            _merge_usage(self.ex, self.ex.dialect.usage, _framed_events(self.cutter.held))
        return super().close()


def _framed_events(data: bytes) -> list[Event]:
    fr = SSEFramer()
    return fr.feed(data) + fr.close()


def _feed(data: bytes, mode: str, cuts: list[int], **kw: Any) -> Counted:
    r = Counted(mode, **kw)
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        if c > prev:
            r.feed(data[prev:c])
            prev = c
    r.close()
    return r


def _fixture_kw(name: str) -> dict[str, Any]:
    if name in RESPONSES:
        return {"model": "o4-mini", "dialect": "openai_responses"}
    return {"model": _model(name)}


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [*CHAT, *RESPONSES])
def test_fixtures_count_their_events(name: str, mode: str, leak: str) -> None:
    data = (WIRE / name).read_bytes()
    checked = 0
    for cuts in ([], [len(data) // 3], list(range(7, len(data), 61))):
        checked += _feed(data, mode, cuts, leak=leak, **_fixture_kw(name)).checked
    assert checked > 0


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [97, 1024, 1 << 20])
def test_long_streams_count_their_events(size: int, mode: str, leak: str) -> None:
    for data, kw in (
        (_fake("o4-mini", 80), {"model": "o4-mini", "dialect": "openai_responses"}),
        (_fake("gpt-oss-20b", 80), {"model": "gpt-oss-20b", "dialect": "openai_responses"}),
        (_fake_anthropic(80), {"model": "claude-x", "dialect": "anthropic_messages"}),
    ):
        r = _feed(data, mode, list(range(size, len(data), size)), leak=leak, **kw)
        assert r.checked > 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("odd", sorted(ODD_REASONING) + sorted(ODD_VISIBLE))
def test_runs_with_an_odd_event_count_their_events(odd: str, mode: str) -> None:
    odd_delta = ODD_REASONING.get(odd) or ODD_VISIBLE[odd]
    hid = [_hid(i) for i in range(1, 40)]
    shown = [_shown(i) for i in range(1, 40)]
    for at in (0, 5, 30):
        blocks = _stream(_hid(0), _shown(0), *hid[:at], odd_delta, *hid[at:], *shown[:at], odd_delta,
                         *shown[at:])
        data = b"".join(blocks) + OTHER + b"data: [DONE]\n\n"
        r = _feed(data, mode, [sum(map(len, blocks[:3]))], leak="flag")
        assert r.checked == 2


def _usage(data: bytes, mode: str, cuts: list[int], **kw: Any) -> tuple[Any, ...]:
    u = _feed(data, mode, cuts, **kw).ex.usage
    return (u.input, u.output, u.reasoning)


def _upstream_usage(data: bytes, dialect: str) -> tuple[Any, ...]:
    """What the relay counts for ``data`` framed event by event (``forward._merge_usage``)."""
    ex = Exchange(path="/", body=b"{}", dialect=DIALECTS[dialect])
    _merge_usage(ex, DIALECTS[dialect].usage, _framed_events(data))
    return (ex.usage.input, ex.usage.output, ex.usage.reasoning)


def _with_usage_in_every_chunk(data: bytes) -> bytes:
    """A Chat stream whose every chunk carries a usage key (continuous usage stats), growing totals."""
    out = []
    for i, block in enumerate(b for b in data.split(b"\n\n") if b):
        if block.startswith(b"data: {") and block.endswith(b"}"):
            block = block[:-1] + b',"usage":{"prompt_tokens":7,"completion_tokens":%d}}' % (i + 1)
        out.append(block + b"\n\n")
    return b"".join(out)


@pytest.mark.parametrize("mode", MODES)
def test_read_mode_counts_the_usage_the_framed_path_counts(mode: str) -> None:
    cases: list[tuple[bytes, dict[str, Any]]] = [
        ((WIRE / name).read_bytes(), {"model": _model(name)}) for name in CHAT]
    cases += [((WIRE / name).read_bytes(), {"model": "o4-mini", "dialect": "openai_responses"})
              for name in RESPONSES]
    cases += [(_fake_anthropic(40), {"model": "claude-x", "dialect": "anthropic_messages"}),
              (_fake("o4-mini", 40), {"model": "o4-mini", "dialect": "openai_responses"})]
    cases += [(_with_usage_in_every_chunk(data), kw) for data, kw in cases[: len(CHAT)]]
    for data, kw in cases:
        upstream = _upstream_usage(data, kw.get("dialect", "openai_chat"))
        assert upstream != (None, None, None) or b"usage" not in data
        for cuts in ([], [len(data) // 2], list(range(5, len(data), 89))):
            assert _usage(data, mode, cuts, **kw) == upstream, (kw, cuts)


@pytest.mark.parametrize("mode", MODES)
def test_chunks_that_all_carry_usage_are_counted_in_order(mode: str) -> None:
    """Every chunk carries usage (the same totals, but for one odd chunk in the middle, which the walk
    parses): the last report wins, so chunks taken on their bytes would be missed. They are not taken."""

    def with_usage(block: bytes, n: int) -> bytes:
        assert block.endswith(b"}\n\n")
        return block[:-3] + b',"usage":{"prompt_tokens":7,"completion_tokens":%d}}\n\n' % n

    blocks = [with_usage(b, 3) for b in _stream(_hid(0), *(_hid(i) for i in range(1, 30)), _shown(0))]
    blocks += [with_usage(b, 99) for b in _stream(ODD_VISIBLE["quote"])[1:]]
    blocks += [with_usage(b, 3) for b in _stream(*(_shown(i) for i in range(1, 30)))[1:]]
    data = b"".join(blocks) + b"data: [DONE]\n\n"
    assert _upstream_usage(data, "openai_chat") == (7, 3, None)
    for cuts in ([], [len(blocks[0])], [sum(map(len, blocks[:5]))]):
        assert _usage(data, mode, cuts, leak="flag") == (7, 3, None), cuts
