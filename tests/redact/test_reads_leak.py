"""Read mode with the leak check on (the production default, ``leak.action: flag``): the client gets exactly
what the framed, per-event path gives, the leak check is handed exactly the same reasoning and visible text,
and a copy of the reasoning in the answer is flagged or withheld as on the per-event path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.exchange import Exchange
from proxy.redact.common import RedactionFailed
from proxy.redact.leak import ReasoningIndex, StreamLeakCheck

from .helpers import WIRE
from .test_reads import Relay, _check, _norm

FIXTURES = sorted(p.name for p in WIRE.iterdir() if p.name.endswith(".sse") and ".error." not in p.name
                  and not p.name.startswith("gemini."))
DIALECT = {"chat": "openai_chat", "anthropic": "anthropic_messages", "responses": "openai_responses"}
MODEL = {"chat.think-no-open-tag.stream.sse": "deepseek-ai/deepseek-r1-distill-qwen-7b",
         "anthropic": "claude-x", "responses": "o4-mini"}


def _text(bodies: list[bytes]) -> str:
    text = orjson.loads(b'"' + b"".join(bodies) + b'"')
    assert isinstance(text, str)
    return text


class _Index(ReasoningIndex):
    """The reasoning index, recording the text it is given (whatever the call that gives it)."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.seen: list[str] = []

    def add(self, text: str) -> None:
        self.seen.append(text)
        super().add(text)

    def add_raw(self, body: bytes) -> None:
        self.seen.append(_text([body]))
        super().add_raw(body)

    def add_raw_many(self, bodies: list[bytes], size: int) -> None:
        self.seen.append(_text(bodies))
        super().add_raw_many(bodies, size)


class _Check(StreamLeakCheck):
    def __init__(self, index: ReasoningIndex) -> None:
        super().__init__(index)
        self.seen: list[str] = []

    def feed(self, text: str) -> Any:
        self.seen.append(text)
        return super().feed(text)

    def feed_raw(self, body: bytes) -> Any:
        self.seen.append(_text([body]))
        return super().feed_raw(body)

    def feed_raw_many(self, bodies: list[bytes], size: int) -> Any:
        self.seen.append(_text(bodies))
        return super().feed_raw_many(bodies, size)


def _relay(mode: str, name: str, *, framed: bool, leak: str = "flag") -> Relay:
    dialect = DIALECT[name.split(".")[0]]
    model = MODEL.get(name) or MODEL.get(name.split(".")[0], "")
    r = Relay(mode, model, framed=framed, leak=leak, dialect=dialect)
    ctx = r.ex.state["redact"]
    ctx.index = _Index(ctx.spec.leak.min_words)
    ctx.stream_check = _Check(ctx.index)
    return r


def _run(data: bytes, mode: str, name: str, cuts: list[int], *, framed: bool = False,
         leak: str = "flag") -> tuple[bytes, Relay]:
    r = _relay(mode, name, framed=framed, leak=leak)
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        if c > prev:
            r.feed(data[prev:c])
            prev = c
    return r.close(), r


def _seen(r: Relay) -> tuple[str, str, int]:
    ctx = r.ex.state["redact"]
    return "".join(ctx.index.seen), "".join(ctx.stream_check.seen), ctx.reasoning_chars


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("name", FIXTURES)
def test_every_byte_boundary_read_mode_with_leak_check_equals_framed(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    framed, f = _run(data, mode, name, [], framed=True)
    whole, r = _run(data, mode, name, [])
    assert r.hook is not None and r.reads > 0  # read mode, with the leak check on
    assert _norm(whole) == _norm(framed)
    _check(name, whole)
    want = _seen(f)
    assert want[1]  # the check did see the answer
    assert _seen(r) == want
    for i in range(1, len(data)):
        raw, r = _run(data, mode, name, [i])
        assert _norm(raw) == _norm(framed), f"split at {i}"
        assert _seen(r) == want, f"split at {i}"


# ------------------------------------------------------------------ a copy of the reasoning in the answer

WORDS = [f"w{(i * 7919) % 1000}q{i}" for i in range(60)]
HEAD = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'
TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'


def _chat_copy() -> bytes:
    parts = [HEAD + b'"role":"assistant","content":null,"reasoning_content":""' + TAIL]
    parts += [HEAD + b'"content":null,"reasoning_content":" %s"' % w.encode() + TAIL for w in WORDS]
    filler = [f"filler{i}" for i in range(150)]  # past the 1024-character window: checked mid-stream
    parts += [HEAD + b'"content":" %s"' % w.encode() + TAIL for w in WORDS[10:40] + filler]
    parts.append(HEAD + b'"content":""},"logprobs":null,"finish_reason":"stop"}]}\n\n')
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _anthropic_copy() -> bytes:
    def ev(name: str, obj: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"

    def delta(i: int, kind: str, key: str, text: str) -> bytes:
        return ev("content_block_delta", {"type": "content_block_delta", "index": i,
                                          "delta": {"type": kind, key: text}})

    parts = [ev("message_start", {"type": "message_start", "message": {
        "id": "m1", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
        "stop_reason": None, "usage": {"input_tokens": 3, "output_tokens": 1}}})]
    parts.append(ev("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
    parts += [delta(0, "thinking_delta", "thinking", " " + w) for w in WORDS]
    parts.append(delta(0, "signature_delta", "signature", "sig"))
    parts.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    parts.append(ev("content_block_start", {"type": "content_block_start", "index": 1,
                                            "content_block": {"type": "text", "text": ""}}))
    parts += [delta(1, "text_delta", "text", " " + w) for w in WORDS[10:40] + [f"filler{i}" for i in range(150)]]
    parts.append(ev("content_block_stop", {"type": "content_block_stop", "index": 1}))
    parts.append(ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                      "usage": {"output_tokens": 9}}))
    parts.append(ev("message_stop", {"type": "message_stop"}))
    return b"".join(parts)


COPIES = {"chat.copy": _chat_copy(), "anthropic.copy": _anthropic_copy()}


def _tags(ex: Exchange) -> tuple[bool, list[Any]]:
    return "reasoning_leak" in ex.tags, [d for d in ex.decisions if "leak" in d]


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("name", sorted(COPIES))
def test_a_copied_answer_is_flagged_in_read_mode_as_framed(name: str, mode: str) -> None:
    data = COPIES[name]
    framed, f = _run(data, mode, name, [], framed=True)
    assert _tags(f.ex)[0]
    for size in (1, 61, 700, 4096, 1 << 20):
        raw, r = _run(data, mode, name, list(range(size, len(data), size)))
        assert r.reads > 0
        assert _norm(raw) == _norm(framed)
        assert _tags(r.ex) == _tags(f.ex)
        assert _seen(r) == _seen(f)
        assert b"w" + WORDS[0][1:].encode() not in raw  # the reasoning itself is never sent


@pytest.mark.parametrize("name", sorted(COPIES))
def test_withhold_ends_the_stream_before_the_read_that_completes_the_copy_is_sent(name: str) -> None:
    data = COPIES[name]
    for framed in (True, False):
        r = _relay("omit", name, framed=framed, leak="withhold")
        with pytest.raises(RedactionFailed, match="withheld"):
            for i in range(0, len(data), 512):
                r.feed(data[i : i + 512])
        assert "reasoning_leak" in r.ex.tags
        if not framed:
            # Caught mid-stream, once a window's worth of answer arrived: the filler after it never went out
            assert r.reads > 0
            assert b"filler149" not in b"".join(r.out)


# ------------------------------------------------------------------ reads of one event, crafted


def _a_delta(i: int, kind: str, body: bytes) -> bytes:
    key = b"thinking" if kind == "thinking" else b"text"
    return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s_delta",'
            b'"%s":"' % (i, key, key) + body + b'"}}\n\n')


ODD = [b"x", b'x\\"' + b"SECRET", b"x\\", b"SECRET\nmore", b'x"}}\n\n', b"", b"a\\\\", b'x","y":"SECRET']


@pytest.mark.parametrize("leak", ["off", "flag"])
@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("odd", range(len(ODD)))
def test_anthropic_reads_of_one_event_equal_framed(odd: int, mode: str, leak: str) -> None:
    data = _anthropic_copy()
    cut = data.index(b"event: content_block_delta", data.index(b'"text_delta"') - 200)  # the first text delta
    think_at = data.index(b"event: content_block_delta")
    head, thinking, rest = data[:think_at], data[think_at:cut], data[cut:]
    extra_think = [_a_delta(0, "thinking", b"HIDDEN" + ODD[odd])]
    extra_text = [_a_delta(1, "text", ODD[odd])]
    stop0 = thinking.index(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                           b"\"delta\":{\"type\":\"signature_delta\"")
    later = [x + b"\n\n" for x in rest.split(b"\n\n") if x]
    reads = [head, *[x + b"\n\n" for x in thinking[:stop0].split(b"\n\n") if x], *extra_think, thinking[stop0:],
             *later[:3], *extra_text, *later[3:]]
    outs = []
    for framed in (False, True):
        r = _relay(mode, "anthropic.x", framed=framed, leak=leak)
        try:
            for x in reads:
                r.feed(x)
            outs.append(_norm(r.close()))
            assert framed or r.reads > len(reads) // 2  # (read mode, read after read)
        except RedactionFailed as e:
            outs.append(type(e).__name__.encode())
    assert outs[0] == outs[1]
    assert b"HIDDEN" not in outs[0] and b"w676q4" not in outs[0]  # no thinking text (its first word)
