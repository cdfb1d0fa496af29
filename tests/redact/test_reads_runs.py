"""Read mode on reads cut at event boundaries: runs of hot-shape events of any length (what an upstream
writing back to back hands the relay) give exactly what the framed, per-event path gives, with zero
reasoning bytes out, on every Chat flavour, Anthropic Messages and OpenAI Responses; so do crafted runs
with one odd event (a quote, a line break, a trailing backslash, an empty body, a blank line, a ``<``, a
reasoning field riding on an answer chunk)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.fake import messages as fake_messages
from proxy.fake import responses as fake_responses
from proxy.fake.state import FakeState, Knobs

from .test_reads import FLAVOURS, SECRET, Relay, _chunk, _events, _fake, _norm

MODES = ("omit", "drop", "seal")


def _blocks(data: bytes) -> list[bytes]:
    return [b + b"\n\n" for b in data.split(b"\n\n") if b]


def _feed(mode: str, model: str, reads_of: list[list[bytes]], leak: str) -> Relay:
    r = Relay(mode, model, leak=leak)
    for blocks in reads_of:
        r.feed(b"".join(blocks))
    return r


def _framed(data: bytes, mode: str, model: str, leak: str) -> tuple[bytes, Relay]:
    r = Relay(mode, model, framed=True, leak=leak)
    r.feed(data)
    return r.close(), r


def _hidden(data: bytes) -> list[bytes]:
    """The reasoning fields of a fake Chat stream, as JSON bodies (inline <think> text is covered by the
    comparison with the framed path, which tests/redact/test_streams.py checks for reasoning bytes)."""
    out = []
    for e in _events(data):
        if e.obj and e.obj.get("choices"):
            d = e.obj["choices"][0]["delta"]
            for k in ("reasoning_content", "reasoning"):
                if isinstance(d.get(k), str) and len(d[k]) >= 8:
                    out.append(orjson.dumps(d[k])[1:-1])
    return out


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", FLAVOURS)
def test_runs_of_any_length_equal_framed(model: str, mode: str, leak: str) -> None:
    data = _fake(model, chunks=40)
    framed, f = _framed(data, mode, model, leak)
    blocks = _blocks(data)
    for k in (2, 3, 7, 40):
        for phase in range(0, k, max(1, k // 3)):
            groups = [blocks[:phase]] if phase else []
            groups += [blocks[i : i + k] for i in range(phase, len(blocks), k)]
            r = _feed(mode, model, groups, leak)
            raw = r.close()
            assert _norm(raw) == _norm(framed), (k, phase)
            assert r.ex.decisions == f.ex.decisions
            for text in _hidden(data):
                assert text not in raw


def _stream(*deltas: dict[str, Any]) -> list[bytes]:
    first = _chunk({"role": "assistant", "content": None, "reasoning_content": ""})
    return [first, *(_chunk(d) for d in deltas)]


def _hid(i: int) -> dict[str, Any]:
    return {"content": None, "reasoning_content": " " + SECRET % i}


def _shown(i: int) -> dict[str, Any]:
    return {"content": f" answer {i}."}


ODD_REASONING = {
    "quote": {"content": None, "reasoning_content": ' say "' + SECRET % 90 + '"'},
    "backslash_end": {"content": None, "reasoning_content": SECRET % 91 + "\\"},
    "empty": {"content": None, "reasoning_content": ""},
    "lt": {"content": None, "reasoning_content": "<" + SECRET % 92},
    "newline": {"content": None, "reasoning_content": "a\n" + SECRET % 93},
}
ODD_VISIBLE = {
    "quote": {"content": ' a "quoted" answer'},
    "lt": {"content": " 1 < 2"},
    "backslash": {"content": " a \\ b"},
    "empty": {"content": ""},
}


def _check_run(blocks: list[bytes], mode: str, at: int, warm: int = 3) -> None:
    """``blocks`` fed as: the first ``warm`` (the hot shape learnt), then the rest in two reads cut before
    block ``at`` (each a run when it holds only hot-shape events), then ``[DONE]``; as framed."""
    done = b"data: [DONE]\n\n"
    framed, _ = _framed(b"".join(blocks) + done, mode, "", "flag")
    r = Relay(mode, leak="flag")
    for part in (blocks[:warm], blocks[warm:at], blocks[at:], [done]):
        if part:
            r.feed(b"".join(part))
    raw = r.close()
    assert _norm(raw) == _norm(framed)
    assert b"SECRET" not in _norm(raw)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("odd", sorted(ODD_REASONING))
def test_a_run_of_reasoning_with_one_odd_event(odd: str, mode: str) -> None:
    blocks = _stream(_hid(0), _shown(0), *(_hid(i) for i in range(1, 4)), ODD_REASONING[odd],
                     *(_hid(i) for i in range(4, 7)), _shown(1))
    for at in range(3, len(blocks)):
        _check_run(blocks, mode, at, warm=3)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("odd", sorted(ODD_VISIBLE))
def test_a_run_of_answers_with_one_odd_event(odd: str, mode: str) -> None:
    blocks = _stream(_hid(0), _shown(0), *(_shown(i) for i in range(1, 4)), ODD_VISIBLE[odd],
                     *(_shown(i) for i in range(4, 7)))
    for at in range(4, len(blocks)):
        _check_run(blocks, mode, at, warm=4)


@pytest.mark.parametrize("mode", MODES)
def test_a_blank_line_or_a_split_data_line_inside_a_run_is_walked(mode: str) -> None:
    head = _stream(_hid(0), _shown(0))
    run = [_chunk(_hid(i)) for i in range(1, 5)]
    blank = [*run[:2], b"\n\n", *run[2:]]
    split_line = [*run[:2], run[2].replace(b"SECRET", b"SEC\ndata: RET"), *run[3:]]
    for odd in (blank, split_line):
        r, framed = Relay(mode), Relay(mode, framed=True)
        for x in (r, framed):
            x.feed(b"".join(head))
            x.feed(b"".join(odd))
        assert r.out == framed.out or _norm(b"".join(r.out)) == _norm(b"".join(framed.out))
        assert b"SEC" not in b"".join(r.out) and b"RET" not in b"".join(r.out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_event_boundary_reads(data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(FLAVOURS))
    mode = data.draw(st.sampled_from(MODES))
    blob = _fake(model, chunks=12)
    blocks = _blocks(blob)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(blocks) - 1), max_size=12))))
    groups = [blocks[a:b] for a, b in zip([0, *cuts], [*cuts, len(blocks)], strict=True)]
    framed, _ = _framed(blob, mode, model, "off")
    raw = _feed(mode, model, groups, "off").close()
    assert _norm(raw) == _norm(framed)


@pytest.mark.parametrize("mode", MODES)
def test_a_reasoning_field_hidden_in_a_run_of_answers_is_not_relayed(mode: str) -> None:
    """An answer chunk that also carries a reasoning field has the answers' head and tail, with a body that
    spans both fields: its quotes refuse the run, and the walk drops the reasoning."""
    sneaky = {"content": " x", "reasoning_content": SECRET % 77}
    blocks = _stream(_hid(0), _shown(0), _shown(1), sneaky, _shown(2), _shown(3))
    for at in range(4, len(blocks)):
        _check_run(blocks, mode, at, warm=4)


# ------------------------------------------------------------------ Anthropic Messages and OpenAI Responses


def _fake_other(dialect: str, chunks: int = 30) -> bytes:
    state, knobs = FakeState(), Knobs(chunks=chunks)
    if dialect == "anthropic_messages":
        body: dict[str, Any] = {"model": "claude-x", "max_tokens": 8000, "stream": True,
                                "messages": [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}],
                                "thinking": {"type": "enabled", "budget_tokens": 4000}}
        ev = fake_messages.render(fake_messages.parse(body, state, knobs), state)  # type: ignore[arg-type]
    else:
        body = {"model": "o4-mini", "input": "Which is larger, 9.11 or 9.8?", "stream": True,
                "reasoning": {"summary": "auto"}}
        ev = fake_responses.render(fake_responses.parse(body, state, knobs), state)  # type: ignore[arg-type]
    assert isinstance(ev, list)
    return b"".join(ev)


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dialect", ["anthropic_messages", "openai_responses"])
def test_other_dialects_runs_of_any_length_equal_framed(dialect: str, mode: str, leak: str) -> None:
    data = _fake_other(dialect)
    model = "claude-x" if dialect == "anthropic_messages" else "o4-mini"
    framed = Relay(mode, model, framed=True, leak=leak, dialect=dialect)
    framed.feed(data)
    want = framed.close()
    hidden = [e.obj["delta"].get("thinking") if dialect == "anthropic_messages" else e.obj.get("delta")
              for e in _events(data)
              if e.obj and (b"thinking_delta" in e.data or (e.name or "").startswith("response.reasoning"))]
    blocks = _blocks(data)
    for k in (2, 5, 30):
        for phase in range(0, k, max(1, k // 3)):
            r = Relay(mode, model, leak=leak, dialect=dialect)
            groups = [blocks[:phase]] if phase else []
            groups += [blocks[i : i + k] for i in range(phase, len(blocks), k)]
            for group in groups:
                r.feed(b"".join(group))
            raw = r.close()
            assert _norm(raw) == _norm(want), (k, phase)
            assert r.ex.decisions == framed.ex.decisions
            for text in hidden:
                if isinstance(text, str) and len(text) >= 8:
                    assert orjson.dumps(text)[1:-1] not in raw
    assert hidden  # (the stream has reasoning to hide)
