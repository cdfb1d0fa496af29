"""Read mode (``RedactFilter.on_read``): whole upstream reads redacted at once give exactly what the framed,
per-event path gives, with zero reasoning bytes, on fixtures split anywhere and on crafted reads."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.dialects import DIALECTS
from proxy.exchange import Event, Exchange
from proxy.fake import chat as fake_chat
from proxy.fake.state import FakeState, Knobs
from proxy.filters.redact import RedactFilter
from proxy.pipeline import Chain
from proxy.redact import reads
from proxy.redact.spec import LeakSpec, RedactionSpec
from proxy.sse import EventCutter, SSEFramer

from .helpers import RING, TOKEN, WIRE, assert_no_reasoning, reasoning_and_visible, upstream_events, visible_of

MODES = ("omit", "drop", "seal")
CHAT = sorted(p.name for p in WIRE.iterdir() if p.name.startswith("chat.") and p.name.endswith(".sse")
              and ".error." not in p.name)
R1 = "deepseek-ai/deepseek-r1-distill-qwen-7b"


class _Acct:
    id = "alice"
    tier = "standard"


def _chain(mode: str, leak: str = "off") -> Chain:
    spec = RedactionSpec(default_mode=mode, tiers={"trusted": "pass", "standard": mode, "restricted": mode},
                         leak=LeakSpec(action=leak))
    return Chain([RedactFilter(spec, keyring=RING)])


def _exchange(chain: Chain, model: str, dialect: str = "openai_chat") -> Exchange:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 9}
    path = "/v1/chat/completions" if dialect == "openai_chat" else "/v1/messages"
    ex = Exchange(path=path, body=orjson.dumps(body), dialect=DIALECTS[dialect])
    ex.account = _Acct()  # type: ignore[assignment]
    asyncio.run(chain.run_request(ex))
    return ex


class Relay:
    """What ``forward.Relay._relay_stream`` does with a stream's reads, minus the sockets: read mode (cut at
    event boundaries, ``on_read``, framed fallback) or, with ``framed=True``, one event per hook call."""

    def __init__(self, mode: str, model: str = "", *, framed: bool = False, leak: str = "off",
                 dialect: str = "openai_chat") -> None:
        self.chain = _chain(mode, leak)
        self.ex = _exchange(self.chain, model or "deepseek-reasoner", dialect)
        self.framer = SSEFramer()
        self.hook = None if framed else self.chain.read_hook_for(self.ex)
        self.cutter: EventCutter | None = EventCutter(self.framer) if self.hook is not None else None
        self.out: list[bytes] = []
        self.reads = 0  # reads the hook handled itself

    def feed(self, chunk: bytes) -> None:
        if self.cutter is not None:
            data = self.cutter.cut(chunk)
            if self.cutter.off:
                self.cutter, chunk = None, data
            elif not data:
                return
            else:
                assert self.hook is not None and self.cutter.sep is not None
                sent = self.hook(self.ex, data, self.cutter.sep, self.framer)
                if sent is not None:
                    self.reads += 1
                    self.out.append(sent)
                    return
                chunk = data
        events = self.framer.feed(chunk)
        if events:
            self.out.extend(self.framer.encode(e) for e in self.chain.run_events(self.ex, events))

    def close(self) -> bytes:
        held = self.cutter.held if self.cutter is not None else b""
        tail = (self.framer.feed(held) if held else []) + self.framer.close()
        events = self.chain.run_events(self.ex, tail) + self.chain.run_end(self.ex)
        self.out.extend(self.framer.encode(e) for e in events)
        return b"".join(self.out)


def _run(data: bytes, mode: str, cuts: list[int], model: str = "", **kw: Any) -> tuple[bytes, Relay]:
    r = Relay(mode, model, **kw)
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        if c > prev:
            r.feed(data[prev:c])
            prev = c
    return r.close(), r


def _events(raw: bytes) -> list[Event]:
    fr = SSEFramer()
    return fr.feed(raw) + fr.close()


def _norm(raw: bytes) -> bytes:
    return TOKEN.sub(b"<token>", raw)


def _model(name: str) -> str:
    return R1 if "no-open-tag" in name else ""


def _check(name: str, raw: bytes) -> None:
    pieces, visible = reasoning_and_visible(name, upstream_events(name))
    events = _events(raw)
    assert_no_reasoning(pieces, visible, events, raw)
    assert visible_of(name, events) == visible  # byte-identical visible text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", CHAT)
def test_every_byte_boundary_read_mode_equals_framed(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    framed, _ = _run(data, mode, [], _model(name), framed=True)
    whole, r = _run(data, mode, [], _model(name))
    assert r.reads > 0  # the read path did run
    assert _norm(whole) == _norm(framed)
    _check(name, whole)
    for i in range(1, len(data)):
        raw, _ = _run(data, mode, [i], _model(name))
        assert _norm(raw) == _norm(framed), f"split at {i}"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_multi_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(CHAT))
    mode = data.draw(st.sampled_from(MODES))
    crlf = data.draw(st.booleans())
    blob = (WIRE / name).read_bytes()
    if crlf:
        blob = blob.replace(b"\n", b"\r\n")
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=40))
    raw, _ = _run(blob, mode, cuts, _model(name))
    framed, _ = _run(blob, mode, [], _model(name), framed=True)
    assert _norm(raw) == _norm(framed)
    _check(name, raw.replace(b"\r\n", b"\n"))


# ------------------------------------------------------------------ long fake streams, each flavour


def _fake(model: str, chunks: int = 30) -> bytes:
    s, k = FakeState(), Knobs(chunks=chunks)
    body = {"model": model, "messages": [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}],
            "stream": True, "stream_options": {"include_usage": True}}
    ev = fake_chat.render(fake_chat.parse(body, s, k), s)  # type: ignore[arg-type]
    assert isinstance(ev, list)
    return b"".join(ev)


FLAVOURS = ("deepseek-reasoner", "vllm-qwen3", "qwen3-think", "think-noopen-r1", "openrouter-x")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", FLAVOURS)
@pytest.mark.parametrize("size", [1, 97, 1024, 1 << 20])
def test_fake_streams_in_reads_of_any_size(model: str, mode: str, size: int) -> None:
    data = _fake(model)
    framed, _ = _run(data, mode, [], model, framed=True)
    raw, r = _run(data, mode, list(range(size, len(data), size)), model)
    assert _norm(raw) == _norm(framed)
    assert r.reads > 0
    reasoning = [e.obj["choices"][0]["delta"].get(k) for e in _events(data) if e.obj and e.obj.get("choices")
                 for k in ("reasoning_content", "reasoning")]
    for text in filter(None, reasoning):
        if len(text) >= 8:
            assert orjson.dumps(text)[1:-1] not in raw


def test_seal_token_opens_to_the_same_reasoning() -> None:
    data = _fake("deepseek-reasoner")
    framed, _ = _run(data, "seal", [], framed=True)
    raw, _ = _run(data, "seal", list(range(700, len(data), 700)))

    def opened(raw: bytes) -> Any:
        tokens = TOKEN.findall(raw)
        assert len(tokens) == 1
        return RING.open(tokens[0].decode(), context="openai_chat|alice", now=time.time())

    assert opened(raw) == opened(framed)


# ------------------------------------------------------------------ crafted reads


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(obj) + b"\n\n"


SECRET = "SECRET-REASONING-%d-xyzzy"


def _mixed(n: int = 6) -> bytes:
    parts = [_chunk({"role": "assistant", "content": None, "reasoning_content": ""})]
    parts += [_chunk({"content": None, "reasoning_content": " " + SECRET % i}) for i in range(n)]
    parts.append(b": keepalive\n\n")
    parts += [_chunk({"content": f" answer {i}."}) for i in range(n)]
    parts.append(b"event: note\ndata: {\"unknown\":true}\n\n")  # an event of no known shape: parsed
    parts += [_chunk({"content": None, "reasoning_content": " " + SECRET % (100 + i)}) for i in range(n)]
    parts += [_chunk({"content": f" more {i}."}) for i in range(n)]
    parts.append(_chunk({"content": ""}, "stop"))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _visible(raw: bytes) -> str:
    return "".join(c["delta"].get("content") or "" for e in _events(raw) if e.obj and "choices" in e.obj
                   for c in e.obj["choices"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_mixed_reads_every_split(mode: str, eol: bytes) -> None:
    data = _mixed().replace(b"\n", eol)
    framed, _ = _run(data, mode, [], framed=True)
    visible = "".join([f" answer {i}." for i in range(6)] + [f" more {i}." for i in range(6)])
    for cuts in ([], *([i] for i in range(1, len(data)))):
        raw, r = _run(data, mode, cuts)
        assert _norm(raw) == _norm(framed), cuts
        assert b"SECRET" not in _norm(raw) and b"xyzzy" not in _norm(raw)  # (not in a random seal token)
        assert _visible(raw) == visible
        assert b": keepalive" + eol + eol in raw and b"event: note" in raw
    assert r.reads > 0


def test_a_run_of_reasoning_is_dropped_and_answers_go_out_as_one_slice() -> None:
    r = Relay("omit")
    head = _chunk({"role": "assistant", "content": None, "reasoning_content": ""})
    r.feed(head + _chunk({"content": None, "reasoning_content": "warm up"}) + _chunk({"content": "a"}))
    r.out.clear()
    answers = b"".join(_chunk({"content": f" w{i}"}) for i in range(5))
    hidden = b"".join(_chunk({"content": None, "reasoning_content": SECRET % i}) for i in range(5))
    r.feed(hidden + answers + hidden)
    assert r.out == [answers]  # one slice of the read, the very bytes that came


def test_read_ending_mid_event_holds_it_until_complete() -> None:
    data = _mixed(2)
    secret_at = data.index(b"SECRET")
    r = Relay("omit")
    r.feed(data[: secret_at + 3])  # ends inside a reasoning chunk
    assert b"SEC" not in b"".join(r.out)
    assert r.cutter is not None and r.cutter.held.endswith(b"SEC")
    r.feed(data[secret_at + 3 :])
    raw = r.close()
    assert b"SECRET" not in raw and _visible(raw) == " answer 0. answer 1. more 0. more 1."


def test_stream_cut_off_mid_event_goes_through_the_filter_at_the_end() -> None:
    data = _mixed(2)
    last = data.index(b"\n\n", data.rindex(b"SECRET"))
    raw, _ = _run(data[:last], "omit", [])  # a whole reasoning chunk without its blank line
    assert b"SECRET" not in raw
    framed, _ = _run(data[:last], "omit", [], framed=True)
    assert raw == framed
    with pytest.raises(Exception, match="unparsable"):  # cut inside the JSON: fails closed
        _run(data[: last - 10], "omit", [])


@pytest.mark.parametrize("mode", MODES)
def test_line_endings_inside_events(mode: str) -> None:
    warm = _chunk({"role": "assistant", "content": None, "reasoning_content": ""})
    warm += _chunk({"content": None, "reasoning_content": "x"}) + _chunk({"content": "y"})
    # a data line split in two (the framer joins them with "\n"): the raw block is not the event's data
    two_lines = _chunk({"content": None, "reasoning_content": SECRET % 1}).replace(b"SECRET", b"SEC\ndata: RET")
    visible_two = _chunk({"content": "ab"}).replace(b"ab", b"a\ndata: b")
    r, framed = Relay(mode), Relay(mode, framed=True)
    for x in (r, framed):
        x.feed(warm)
    before = r.reads
    for x in (r, framed):
        x.feed(two_lines + visible_two)
    assert r.reads == before + 1  # taken: those blocks are parsed, by the framer's own parser
    if mode == "seal":  # the kept reasoning does not decode: both fail closed when sealing
        for x in (r, framed):
            with pytest.raises(Exception, match="malformed"):
                x.close()
    else:
        raw = r.close()
        assert _norm(raw) == _norm(framed.close())
        assert b"SEC" not in raw and b"RET" not in raw
    # a CR inside an LF stream turns the cutter off: framed from then on
    r = Relay(mode)
    r.feed(warm)
    with pytest.raises(Exception, match="unparsable"):  # the lone CR ends the data line: fails closed
        r.feed(_chunk({"content": None, "reasoning_content": SECRET % 2}).replace(b"xyzzy", b"xy\rzzy"))
    assert r.cutter is None
    assert b"SECRET" not in b"".join(r.out)


def test_refused_read_changes_nothing() -> None:
    r = Relay("seal")
    r.feed(_chunk({"role": "assistant", "content": None, "reasoning_content": ""}))
    assert r.hook is not None
    st = r.ex.state["redact_stream_state"]
    held = st.ctx.held
    odd = _chunk({"content": None, "reasoning_content": "abc"}).replace(b"\n\n", b"\n\n\n")
    assert reads.chat_read(st, odd, b"\n\n", r.framer) is None
    assert st.ctx.held == held


def test_other_filters_keep_the_per_event_path() -> None:
    r = Relay("omit", leak="flag")  # the leak check takes reads too (tests/redact/test_reads_leak.py)
    r.feed(_mixed(2))
    assert r.reads == 1
    assert b"SECRET" not in r.close()

    class Other:
        def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
            return [ev]

    chain = Chain([Other(), *_chain("omit").filters])
    ex = _exchange(chain, "deepseek-reasoner")
    assert chain.events_for(ex) and chain.read_hook_for(ex) is None
    assert Relay("placeholder").hook is None  # no byte-level hot path in placeholder mode
    chain = _chain("omit")  # other APIs have no whole-read path: framed, without the cutter
    ex = Exchange(path="/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
                  body=b'{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}', dialect=DIALECTS["gemini"])
    ex.account = _Acct()  # type: ignore[assignment]
    asyncio.run(chain.run_request(ex))
    assert chain.events_for(ex) and chain.read_hook_for(ex) is None


@pytest.mark.parametrize("mode", MODES)
def test_crlf_read_with_other_line_endings_is_refused(mode: str) -> None:
    warm = (_chunk({"role": "assistant", "content": None, "reasoning_content": ""})
            + _chunk({"content": None, "reasoning_content": "x"}) + _chunk({"content": "y"})).replace(b"\n", b"\r\n")
    # "\n\n" inside a CRLF event: the framer ends an event there, a split at "\r\n\r\n" would not
    odd = _chunk({"content": None, "reasoning_content": SECRET % 3}).replace(b"\n", b"\r\n")
    odd = odd.replace(b"SECRET", b"SEC\n\nRET")
    r, framed = Relay(mode), Relay(mode, framed=True)
    for x in (r, framed):
        x.feed(warm)
    before = r.reads
    outcomes = []
    for x in (r, framed):
        try:
            x.feed(odd + _chunk({"content": "z"}).replace(b"\n", b"\r\n"))
            outcomes.append(_norm(x.close()))
        except Exception as e:  # fails closed the same way in both
            outcomes.append(type(e).__name__.encode())
    assert r.reads == before  # refused: framed
    assert outcomes[0] == outcomes[1]
    assert b"SEC" not in outcomes[0] and b"RET" not in outcomes[0]


# ------------------------------------------------------------------ each guard of the read path

S = (SECRET % 9).encode()
HEAD = b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'
TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'
ROLE = HEAD + b'"role":"assistant","content":""' + TAIL
END = HEAD + b'"content":""},"logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
WARM = {
    "content": [b'"content":"Hello"', b'"content":" there"'],
    "reasoning_content": [b'"reasoning_content":"plan"', b'"reasoning_content":" more"'],
    "inline": [b'"content":"<think>"', b'"content":"plan"', b'"content":" more"'],
}


def _outcome(mode: str, warm: str, bodies: list[bytes], framed: bool, leak: str = "off",
             single: bool = False) -> tuple[bytes, int]:
    """The client's bytes (or the error that ended the stream) for a role chunk and ``WARM[warm]`` in one
    read (which arms the hot shape), then ``bodies``, a visible chunk and the end in a second read (with
    ``single``: each body in a read of its own, as a model streaming in real time delivers them)."""
    r = Relay(mode, "qwen3", framed=framed, leak=leak)
    try:
        r.feed(ROLE + b"".join(HEAD + b + TAIL for b in WARM[warm]))
        if not framed:
            st = r.ex.state["redact_stream_state"]
            kind = {"content": 0, "inline": 2}.get(warm, 1)
            assert st.hot[4] == kind  # armed
        if single:
            for b in bodies:
                r.feed(HEAD + b + TAIL)
            bodies = []
        r.feed(b"".join(HEAD + b + TAIL for b in bodies) + HEAD + b'"content":" tail"' + TAIL + END)
        return _norm(r.close()), r.reads
    except Exception as e:
        return type(e).__name__.encode(), r.reads


@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
@pytest.mark.parametrize(
    "warm,bodies",
    [
        ("content", [b'"content":"x","reasoning_content":"' + S + b'"']),  # a quote: the string ends early
        ("content", [b'"content":"x\\\\","reasoning_content":"' + S + b'"']),  # quote after escaped backslash
        ("content", [b'"content":"<think>' + S + b'"']),  # a tag
        ("content", [b'"content":"\\u003cthink>"', b'"content":"' + S + b'"']),  # an escaped tag
        ("content", [b'"content":"vis\nible"']),  # a line break: the framer sees two lines
        ("content", [b'"content":"x\\"']),  # a trailing backslash escapes the closing quote
        ("reasoning_content", [b'"reasoning_content":"x","content":"visible"']),  # a quote: content follows
        ("reasoning_content", [b'"reasoning_content":"' + S + b'\nmore"']),  # a line break
        ("reasoning_content", [b'"reasoning_content":"x\\"']),  # a trailing backslash
        ("inline", [b'"content":"</think>visible"']),  # "<": the block ends inside the chunk
        ("inline", [b'"content":"\\u003c/think>visible"']),  # the same, escaped
        ("inline", [b'"content":"' + S + b'\n</think>"']),  # a line break
    ],
)
def test_each_guard_read_path_equals_framed(mode: str, warm: str, bodies: list[bytes]) -> None:
    for leak in ("off", "flag"):
        for single in (False, True):  # the walk, and reads of one event (``chat_read``'s first check)
            got, reads_taken = _outcome(mode, warm, bodies, framed=False, leak=leak, single=single)
            want, _ = _outcome(mode, warm, bodies, framed=True, leak=leak)
            assert reads_taken >= 1
            assert got == want
            assert b"SECRET" not in got and b"\\u0053ECRET" not in got

