"""The Anthropic hot path (``AnthropicStream.on_event``) and the seal hot paths of every stream (string bodies
kept without calls). Each test arms the hot path first (asserts it is armed), then sends the event one guard
exists for: without that guard the test fails. The reference is the same stream with the hot path off."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from proxy.exchange import Event
from proxy.redact import anthropic, chat_stream, gemini
from proxy.redact.common import RedactionFailed
from proxy.redact.seal import b64url, unb64url
from proxy.redact.spec import LeakSpec, RedactionSpec

from .helpers import RING, TOKEN, make_ctx

SECRET = "SECRET reasoning that must never reach the client"
S = SECRET.encode()
NOW = 1_700_000_000
OFF = RedactionSpec(leak=LeakSpec(action="off"))  # the leak check off: the leanest hot paths


def _start(i: int, kind: bytes) -> Event:
    body = b'{"type":"thinking","thinking":""}' if kind == b"thinking" else b'{"type":"text","text":""}'
    data = b'{"type":"content_block_start","index":%d,"content_block":%s}' % (i, body)
    return Event(data, name="content_block_start")


def _think(text: bytes, i: int = 0) -> Event:
    return Event(anthropic._delta_head(i) + text + b'"}}', name="content_block_delta")


def _text(text: bytes, i: int = 1) -> Event:
    return Event(anthropic._text_head(i) + text + b'"}}', name="content_block_delta")


def _stop(i: int) -> Event:
    return Event(b'{"type":"content_block_stop","index":%d}' % i, name="content_block_stop")


class _Cold(anthropic.AnthropicStream):
    """The hot path never taken: the reference."""

    def on_event(self, ev: Event) -> list[Event]:
        return self._event(ev)


def _anthropic(mode: str, events: list[Event], *, cold: bool = False, spec: RedactionSpec = OFF) -> list[Event]:
    """A thinking block (``plan``, `` more``: armed after them), ``events``, then its stop and a text block."""
    st = (_Cold if cold else anthropic.AnthropicStream)(make_ctx("anthropic_messages", mode, spec=spec))
    out = st.on_event(_start(0, b"thinking"))
    out += st.on_event(_think(b"plan")) + st.on_event(_think(b" more"))
    if not cold:
        assert st.hot == anthropic._delta_head(0) and st.hot_thinking  # armed
    for ev in events:
        out += st.on_event(ev)
    out += st.on_event(_stop(0)) + st.on_event(_start(1, b"text")) + st.on_event(_text(b"Hi"))
    out += st.on_event(_text(b" there")) + st.on_event(_stop(1))
    return out


def _sealed(out: list[Event]) -> Any:
    (token,) = [e.obj["delta"]["signature"] for e in out if b"signature_delta" in e.data]
    return RING.open(token, context="anthropic_messages|alice", now=NOW)["t"]


def _wire(out: list[Event]) -> bytes:
    return TOKEN.sub(b"T", b"\n".join(e.data for e in out))


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_anthropic_hot_thinking_dropped_text_relayed(mode: str) -> None:
    out = _anthropic(mode, [_think(b" and " + S)])
    assert S not in _wire(out) and b'"text":" there"' in _wire(out)
    assert _wire(out) == _wire(_anthropic(mode, [_think(b" and " + S)], cold=True))
    if mode == "seal":
        assert _sealed(out) == "plan more and " + SECRET


def test_anthropic_hot_needs_the_prefix() -> None:
    with pytest.raises(RedactionFailed):  # no head: parsed, and not JSON
        _anthropic("omit", [Event(b'xyz"}}', name="content_block_delta")])


def test_anthropic_hot_needs_the_suffix() -> None:
    with pytest.raises(RedactionFailed):  # a truncated delta is parsed (and fails), never kept to seal
        _anthropic("seal", [Event(anthropic._delta_head(0) + b"abc", name="content_block_delta")])


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_anthropic_hot_empty_thinking(mode: str) -> None:
    out = _anthropic(mode, [_think(b"")])
    assert _wire(out) == _wire(_anthropic(mode, [_think(b"")], cold=True))


def test_anthropic_hot_quote_ends_the_string() -> None:
    """``x","extra":"y``: the thinking string ends at the quote; what follows is another key."""
    ev = _think(b'x","extra":"y')
    assert _sealed(_anthropic("seal", [ev])) == _sealed(_anthropic("seal", [ev], cold=True)) == "plan morex"


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_anthropic_hot_text_with_a_quote_is_not_relayed_unseen(mode: str) -> None:
    """A text delta whose string ends early and retypes the delta as thinking (the last key wins)."""
    hostile = _text(b'a","type":"thinking_delta","thinking":"' + S)
    st = anthropic.AnthropicStream(make_ctx("anthropic_messages", mode, spec=OFF))
    out = st.on_event(_start(1, b"text")) + st.on_event(_text(b"Hi")) + st.on_event(_text(b" there"))
    assert st.hot == anthropic._text_head(1) and not st.hot_thinking  # armed
    out += st.on_event(hostile) + st.on_event(_stop(1))
    assert S not in _wire(out)


def test_anthropic_hot_trailing_backslash_fails_closed_at_once() -> None:
    with pytest.raises(RedactionFailed):  # "x\" + "}}: the closing quote is escaped, not valid JSON
        _anthropic("seal", [_think(b"x\\"), _think(b"n")])


def test_anthropic_hot_comment_is_not_sealed() -> None:
    note = Event(anthropic._delta_head(0) + b'note"}}', comment=True)
    out = _anthropic("seal", [note])
    assert _sealed(out) == "plan more" and [e for e in out if e.comment]


def test_anthropic_hot_text_disarmed_by_any_parsed_event() -> None:
    """Armed on text block 1; block 1 then restarts as thinking: its text deltas are reasoning now."""
    st = anthropic.AnthropicStream(make_ctx("anthropic_messages", "omit", spec=OFF))
    out = st.on_event(_start(1, b"text")) + st.on_event(_text(b"Hi")) + st.on_event(_text(b" there"))
    assert st.hot == anthropic._text_head(1)  # armed
    out += st.on_event(_start(1, b"thinking")) + st.on_event(_text(S))
    assert S not in _wire(out)


@pytest.mark.parametrize(
    "stray",
    [
        _think(S),  # a thinking delta of the block that stopped
        _think(S, 1),  # a thinking delta addressed to the text block
        Event(anthropic._text_head(1).replace(b"text_delta", b"\\u0074hinking_delta") + S + b'"}}'),
    ],
)
@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_anthropic_reasoning_outside_a_reasoning_block_is_never_relayed(mode: str, stray: Event) -> None:
    st = anthropic.AnthropicStream(make_ctx("anthropic_messages", mode, spec=OFF))
    out: list[Event] = []
    for ev in [_start(0, b"thinking"), _think(b"plan"), _stop(0), _start(1, b"text"), _text(b"Hi")]:
        out += st.on_event(ev)
    stray.name = "content_block_delta"
    try:
        out += st.on_event(stray)
    except RedactionFailed:
        pass  # failing closed is fine too
    assert S not in _wire(out) and b"\\u0074hinking" not in _wire(out)


# ---------------------------------------------------------------- seal: the cap on what is kept


def _capped() -> RedactionSpec:
    return RedactionSpec(leak=LeakSpec(action="off"), seal_max_bytes=1024)


def test_anthropic_hot_seal_is_capped() -> None:
    """Memory stays bounded: the stream fails while the block is still open, not when it is sealed."""
    st = anthropic.AnthropicStream(make_ctx("anthropic_messages", "seal", spec=_capped()))
    for ev in (_start(0, b"thinking"), _think(b"plan"), _think(b" more")):
        st.on_event(ev)
    assert st.hot_thinking and st.quick  # armed
    with pytest.raises(RedactionFailed, match="max_bytes"):
        for _ in range(4):
            st.on_event(_think(b"x" * 300))


CHAT = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'
CHAT_TAIL = b'},"logprobs":null,"finish_reason":null}]}'


def _chat_seal(bodies: list[bytes], spec: RedactionSpec = OFF) -> chat_stream.ChatStream:
    st = chat_stream.ChatStream(make_ctx("openai_chat", "seal", spec=spec))
    for b in [b'"role":"assistant","content":""', *bodies]:
        st.on_event(Event(CHAT + b + CHAT_TAIL))
    return st


def test_chat_hot_seal_is_capped() -> None:
    st = _chat_seal([b'"reasoning_content":"a"', b'"reasoning_content":"b"'], _capped())
    assert st.quick and st.hot[4] == chat_stream._FIELD  # armed
    with pytest.raises(RedactionFailed, match="max_bytes"):
        for _ in range(4):
            st.on_event(Event(CHAT + b'"reasoning_content":"' + b"x" * 300 + b'"' + CHAT_TAIL))


def test_chat_hot_seal_inline_think_is_capped() -> None:
    st = _chat_seal([b'"content":"<think>"', b'"content":"a"', b'"content":"b"'], _capped())
    assert st.quick and st.hot[4] == chat_stream._INLINE  # armed
    with pytest.raises(RedactionFailed, match="max_bytes"):
        for _ in range(4):
            st.on_event(Event(CHAT + b'"content":"' + b"x" * 300 + b'"' + CHAT_TAIL))


def test_chat_hot_seal_counts_visible_characters_not_bytes() -> None:
    """Offsets of sealed <think> stretches are in characters: non-ASCII visible text on the hot path."""
    text = "héllo wörld ".encode()
    st = _chat_seal([b'"content":"' + text + b'"', b'"content":"' + text + b'"'])
    assert st.hot[4] == chat_stream._VISIBLE  # armed
    st.on_event(Event(CHAT + b'"content":"' + text + b'"' + CHAT_TAIL))
    assert st.c0.inline.visible == 3 * len(text.decode())


def test_gemini_hot_seal_is_capped() -> None:
    st = gemini.GeminiStream(make_ctx("gemini", "seal", spec=_capped()))
    head, tail = b'{"candidates":[{"content":{"parts":[{"text":"', b'","thought":true}],"role":"model"},"index":0}]}'
    for t in (b"one", b"two"):
        st.on_event(Event(head + t + tail))
    assert st.hot is not None and st.quick  # armed
    with pytest.raises(RedactionFailed, match="max_bytes"):
        for _ in range(4):
            st.on_event(Event(head + b"x" * 300 + tail))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 62, 63, 64, 1000, 15_701])
def test_b64url_is_urlsafe_b64encode_unpadded(n: int) -> None:
    raw = os.urandom(n) + bytes(range(256)) * (n > 100)  # every byte value, so "+" and "/" occur
    text = b64url(raw)
    assert text == base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert unb64url(text) == raw == base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_tokens_made_before_still_open() -> None:
    """A token encoded the way ``KeyRing.seal`` did before ``b64url`` (``urlsafe_b64encode``) opens."""
    kid, blob = RING.seal_blob({"t": SECRET}, context="c", now=NOW, ttl=60)
    old = "dgs1." + kid + "." + base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    assert RING.open(old, context="c", now=NOW) == {"t": SECRET}
