"""The hot paths (``ChatStream.on_event``, ``GeminiStream.on_event``): the shape that matched last, checked
on bytes with a few memchr-level operations. Each test arms the hot path first (asserts it is armed),
then sends a chunk that one guard exists for: without that guard the test fails."""

from __future__ import annotations

import pytest

from proxy.exchange import Event
from proxy.redact import chat_stream, gemini
from proxy.redact.common import RedactionFailed, string_spans
from proxy.sse import SSEFramer

from .helpers import RING, TOKEN, make_ctx

SECRET = "SECRET reasoning that must never reach the client"
S = SECRET.encode()
HEAD = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'
TAIL = b'},"logprobs":null,"finish_reason":null}]}'
END = HEAD + b'"content":""},"logprobs":null,"finish_reason":"stop"}]}'
WARM = {
    "content": [b'"content":"Hello"', b'"content":" there"'],
    "reasoning_content": [b'"reasoning_content":"plan"', b'"reasoning_content":" more"'],
    "inline": [b'"content":"<think>"', b'"content":"plan"', b'"content":" more"'],
}


class _Parsed(chat_stream.ChatStream):
    """No shape ever usable: every chunk parsed (the reference the hot path must equal)."""

    def _update_fast(self) -> None:
        pass


def _chat(mode: str, warm: str, bodies: list[bytes], *, comment: bool = False, slow: bool = False) -> list[Event]:
    """A role chunk, ``WARM[warm]`` (after which the hot path must be armed for that shape), ``bodies``
    (as comments with ``comment``), the finishing chunk and ``[DONE]``: the client's events."""
    st = (_Parsed if slow else chat_stream.ChatStream)(make_ctx("openai_chat", mode, model="qwen3"))
    out = st.on_event(Event(HEAD + b'"role":"assistant","content":""' + TAIL))
    for b in WARM[warm]:
        out += st.on_event(Event(HEAD + b + TAIL))
    if not slow:
        kind = {"content": chat_stream._VISIBLE, "inline": chat_stream._INLINE}.get(warm, chat_stream._FIELD)
        assert st.hot[4] == kind  # armed
    for b in bodies:
        out += st.on_event(Event(HEAD + b + TAIL, comment=comment))
    out += st.on_event(Event(END)) + st.on_event(Event(b"[DONE]")) + st.on_end()
    return out


def _raw(events: list[Event]) -> bytes:
    fr = SSEFramer(b"\n")
    return TOKEN.sub(b"T", b"".join(fr.encode(e) for e in events))


def _visible(events: list[Event]) -> str:
    return "".join(
        e.obj["choices"][0]["delta"].get("content") or ""
        for e in events
        if not e.comment and isinstance(e.obj, dict) and e.obj.get("choices")
    )


def _no_secret(raw: bytes) -> None:
    assert b"SECRET" not in raw and b"\\u0053ECRET" not in raw


@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
@pytest.mark.parametrize(
    "bodies",
    [
        [b'"content":"x","reasoning_content":"' + S + b'"'],  # a quote in the string: it ends early
        [b'"content":"x\\\\","reasoning_content":"' + S + b'"'],  # the quote after an escaped backslash
        [b'"content":"<think>' + S + b'"'],  # a tag ("<")
        [b'"content":"<think>"', b'"content":"' + S + b'"'],
        [b'"content":"\\u003cthink>"', b'"content":"' + S + b'"'],  # an escaped tag ("\\u")
        [b'"content":"a\\u003Cthink>' + S + b'"'],
    ],
)
def test_chat_hot_content_never_relays_what_it_cannot_prove(mode: str, bodies: list[bytes]) -> None:
    _no_secret(_raw(_chat(mode, "content", bodies)))


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize(
    "warm,body",
    [
        ("reasoning_content", b'"reasoning_content":"x","content":"visible"'),  # a quote: content follows
        ("inline", b'"content":"</think>visible"'),  # "<": the block ends inside the chunk
        ("inline", b'"content":"\\u003c/think>visible"'),  # the same, escaped
        ("content", b'"content":""'),  # nothing to say: dropped, as the parsing path does
        ("content", b'"content":"say \\"hi\\" \\\\ ok"'),  # escapes: relayed as they came
    ],
)
def test_chat_hot_path_equals_parsing(mode: str, warm: str, body: bytes) -> None:
    fast = _chat(mode, warm, [body, b'"content":" tail"'])
    slow = _chat(mode, warm, [body, b'"content":" tail"'], slow=True)
    assert _raw(fast) == _raw(slow)
    if b"visible" in body:
        assert "visible tail" in _visible(fast)


@pytest.mark.parametrize("warm", ["reasoning_content", "content", "inline"])
def test_chat_hot_trailing_backslash_is_parsed_and_fails_closed(warm: str) -> None:
    # "x\" + suffix: the closing quote is escaped, the chunk is not valid JSON
    key = b"reasoning_content" if warm == "reasoning_content" else b"content"
    with pytest.raises(RedactionFailed):
        _chat("omit", warm, [b'"' + key + b'":"x\\"'])


@pytest.mark.parametrize("warm", ["reasoning_content", "content"])
def test_chat_hot_needs_the_prefix(warm: str) -> None:
    """Only the shape's own prefix and suffix around the string: anything else is parsed (and here fails)."""
    st = chat_stream.ChatStream(make_ctx("openai_chat", "omit"))
    for b in [b'"role":"assistant","content":""', *WARM[warm]]:
        st.on_event(Event(HEAD + b + TAIL))
    with pytest.raises(RedactionFailed):
        st.on_event(Event(b"[1,{" + TAIL.replace(b"}", b'"}', 1)))


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_chat_hot_leaves_comments_alone(mode: str) -> None:
    out = _chat(mode, "reasoning_content", [b'"reasoning_content":"note"'], comment=True)
    assert [e for e in out if e.comment and b"note" in e.data]


def test_chat_hot_seal_keeps_every_byte() -> None:
    """Seal reads reasoning off the hot path as raw string bodies: the token holds all of it."""
    out = _chat("seal", "reasoning_content", [b'"reasoning_content":" and ' + S + b'"'])
    deltas = [e.obj["choices"][0]["delta"] for e in out if isinstance(e.obj, dict) and e.obj.get("choices")]
    (token,) = [d["reasoning_content"] for d in deltas if "reasoning_content" in d]
    payload = RING.open(token, context="openai_chat|alice", now=1_700_000_000)
    assert payload == {"reasoning_content": "plan more and " + SECRET}


@pytest.mark.parametrize(
    "body,ok",
    [
        (b"plain", True),
        (b'say \\"hi\\"', True),
        (b"a \\\\", True),  # an escaped backslash at the end
        (b'a \\\\\\"', True),  # an escaped backslash, then an escaped quote
        (b'a \\\\"', False),  # an escaped backslash, then a quote that ends the string
        (b'a"b', False),
        (b"x\\", False),  # escapes the closing quote
        (b"", False),
    ],
)
def test_string_spans(body: bytes, ok: bool) -> None:
    data = b'{"k":"' + body + b'"}'
    assert string_spans(data, 6, len(data) - 2) is ok


# ---------------------------------------------------------------- Gemini

G_HEAD = b'{"candidates":[{"content":{"parts":[{"text":"'
G_VIS = b'"}],"role":"model"},"index":0}],"modelVersion":"g"}'
G_THO = b'","thought":true}],"role":"model"},"index":0}],"modelVersion":"g"}'


def _gemini(mode: str, warm: bytes, chunks: list[bytes], *, comment: bool = False) -> list[Event]:
    st = gemini.GeminiStream(make_ctx("gemini", mode))
    out: list[Event] = []
    for text in (b"one", b"two"):
        out += st.on_event(Event(G_HEAD + text + warm))
    assert st.hot == (warm, warm == G_THO)  # armed
    for c in chunks:
        out += st.on_event(Event(c, comment=comment))
    return out + st.on_end()


@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
def test_gemini_hot_visible_quote_never_relays_a_thought(mode: str) -> None:
    hostile = G_HEAD + b'x"},{"text":"' + S + b'","thought":true,"y":"' + G_VIS
    _no_secret(b"".join(e.data for e in _gemini(mode, G_VIS, [hostile])))


def test_gemini_hot_trailing_backslash_fails_closed() -> None:
    with pytest.raises(RedactionFailed):  # "x\" + tail: the closing quote is escaped, not valid JSON
        _gemini("omit", G_THO, [G_HEAD + b"x\\" + G_THO])


@pytest.mark.parametrize("warm", [G_VIS, G_THO])
def test_gemini_hot_needs_the_prefix(warm: bytes) -> None:
    with pytest.raises(RedactionFailed):
        _gemini("omit", warm, [b"[1," + warm])


def test_gemini_hot_thought_quote_keeps_the_answer() -> None:
    mixed = G_HEAD + b'visible"},{"text":"' + S + G_THO  # an answer part, then a thought
    out = _gemini("omit", G_THO, [mixed])
    _no_secret(b"".join(e.data for e in out))
    assert b"visible" in b"".join(e.data for e in out)


def test_gemini_hot_visible_closes_a_sealed_run() -> None:
    """A run of thoughts held from a parsed chunk ends at the next answer chunk, even a compact one."""
    two = b'{"candidates":[{"content":{"parts":[{"text":"t1","thought":true},{"text":"t2","thought":true}],'
    two += b'"role":"model"},"index":0}],"modelVersion":"g"}'
    out = _gemini("seal", G_VIS, [two, G_HEAD + b"answer" + G_VIS])
    parts = out[-1].obj["candidates"][0]["content"]["parts"]
    assert [p.get("thought") for p in parts] == [True, None] and parts[1] == {"text": "answer"}


@pytest.mark.parametrize("warm", [G_VIS, G_THO])
def test_gemini_hot_empty_text(warm: bytes) -> None:
    out = _gemini("omit", warm, [G_HEAD + warm])
    relayed = [G_HEAD + b"one" + warm, G_HEAD + b"two" + warm, G_HEAD + warm] if warm == G_VIS else []
    assert [e.data for e in out] == relayed


def test_gemini_hot_leaves_comments_alone() -> None:
    out = _gemini("seal", G_THO, [G_HEAD + b"note" + G_THO], comment=True)
    assert [e for e in out if e.comment]
