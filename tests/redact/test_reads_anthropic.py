"""Read mode for Anthropic Messages streams (``reads.anthropic_read``): whole reads redacted at once give
exactly what the framed, per-event path gives, with zero reasoning bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.fake.state import FakeState, Knobs

from .helpers import WIRE
from .test_reads import MODES, SECRET, Relay, _check, _events, _norm, _run

S = (SECRET % 9).encode()

ANTHROPIC = sorted(p.name for p in WIRE.iterdir() if p.name.startswith("anthropic.") and p.name.endswith(".sse")
                   and ".error." not in p.name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ANTHROPIC)
def test_anthropic_every_byte_boundary_read_mode_equals_framed(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    kw: dict[str, Any] = {"dialect": "anthropic_messages"}
    framed, _ = _run(data, mode, [], "claude-x", framed=True, **kw)
    whole, r = _run(data, mode, [], "claude-x", **kw)
    assert r.reads > 0
    assert _norm(whole) == _norm(framed)
    _check(name, whole)
    for i in range(1, len(data)):
        raw, _ = _run(data, mode, [i], "claude-x", **kw)
        assert _norm(raw) == _norm(framed), f"split at {i}"


def _fake_anthropic(chunks: int = 30) -> bytes:
    from proxy.fake import messages

    s, k = FakeState(), Knobs(chunks=chunks)
    body = {"model": "claude-x", "max_tokens": 9000, "stream": True,
            "messages": [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}],
            "thinking": {"type": "enabled", "budget_tokens": 4000}}
    ev = messages.render(messages.parse(body, s, k), s)  # type: ignore[arg-type]
    assert isinstance(ev, list)
    return b"".join(ev)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [1, 97, 1024, 1 << 20])
def test_anthropic_fake_stream_in_reads_of_any_size(mode: str, size: int) -> None:
    data = _fake_anthropic()
    kw: dict[str, Any] = {"dialect": "anthropic_messages"}
    framed, _ = _run(data, mode, [], "claude-x", framed=True, **kw)
    raw, r = _run(data, mode, list(range(size, len(data), size)), "claude-x", **kw)
    assert _norm(raw) == _norm(framed)
    assert r.reads > 0
    thinking = [e.obj["delta"]["thinking"] for e in _events(data)
                if e.obj and e.obj.get("type") == "content_block_delta" and "thinking" in e.obj["delta"]]
    assert thinking
    for text in thinking:
        if len(text) >= 8:
            assert orjson.dumps(text)[1:-1] not in _norm(raw)


A_ROLE = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m1","type":"message",'
          b'"role":"assistant","content":[],"model":"c","usage":{"input_tokens":1,"output_tokens":1}}}\n\n')
_START = b'event: content_block_start\ndata: {"type":"content_block_start","index":'
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
A_THINK = _START + b'0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
A_TD = _DELTA + b'0,"delta":{"type":"thinking_delta","thinking":"%s"}}\n\n'
A_SIG = _DELTA + b'0,"delta":{"type":"signature_delta","signature":"c2ln"}}\n\n'
A_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'
A_TEXT = _START + b'1,"content_block":{"type":"text","text":""}}\n\n'
A_XD = _DELTA + b'1,"delta":{"type":"text_delta","text":"%s"}}\n\n'
A_END = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
         b'"usage":{"output_tokens":9}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')


def _a_outcome(mode: str, thinking: list[bytes], texts: list[bytes], framed: bool) -> tuple[bytes, int]:
    r = Relay(mode, "claude-x", framed=framed, dialect="anthropic_messages")
    try:
        r.feed(A_ROLE + A_THINK + A_TD % b"plan" + A_TD % b" more")  # arms the thinking hot path
        if not framed:
            assert r.ex.state["redact_stream_state"].hot_thinking
        r.feed(b"".join(A_TD % t for t in thinking) + A_TD % S + A_SIG + A_STOP % 0 + A_TEXT
               + A_XD % b"Hello" + A_XD % b" there")
        r.feed(b"".join(A_XD % t for t in texts) + A_XD % b" tail" + A_STOP % 1 + A_END)
        return _norm(r.close()), r.reads
    except Exception as e:
        return type(e).__name__.encode(), r.reads


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "thinking,texts",
    [
        ([b'x","thinking":"y'], []),  # a quote: the string ends early
        ([b"x\n" + S], []),  # a line break: the framer sees another line
        ([b"x\\"], []),  # a trailing backslash escapes the closing quote
        ([], [b'x","text":"other']),  # a quote in a text delta (a duplicate key: parsed)
        ([], [b"vis\nible"]),  # a line break in a text delta
        ([], [b"x\\"]),  # a trailing backslash in a text delta
        ([], [b"say \\\"hi\\\" ok"]),  # escapes: relayed as they came
    ],
)
def test_anthropic_each_guard_read_path_equals_framed(mode: str, thinking: list[bytes], texts: list[bytes]) -> None:
    got, taken = _a_outcome(mode, thinking, texts, framed=False)
    want, _ = _a_outcome(mode, thinking, texts, framed=True)
    assert taken >= 1
    assert got == want
    assert b"SECRET" not in got


def test_anthropic_a_run_of_thinking_is_dropped_in_one_read() -> None:
    r = Relay("omit", "claude-x", dialect="anthropic_messages")
    r.feed(A_ROLE + A_THINK + A_TD % b"plan")
    r.out.clear()
    r.feed(b"".join(A_TD % (S + b"%d" % i) for i in range(20)))
    assert r.out == [b""] and r.reads == 2
