"""The byte-level fast paths under hostile input (escaped keys, duplicate keys, split keys, escaped tags,
trailing backslashes), and Gemini's seal: bodies, streams, and the restore on the way back in."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from proxy.exchange import Event
from proxy.redact import chat_stream, gemini
from proxy.redact.common import RedactionFailed
from proxy.redact.seal import SealError
from proxy.sse import SSEFramer

from .helpers import RING, make_ctx

SECRET = "SECRET reasoning that must never reach the client"
HEAD = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{'
TAIL = b'},"logprobs":null,"finish_reason":null}]}'


def _chat_stream(mode: str, bodies: list[bytes], model: str = "") -> bytes:
    """Chat chunks (delta bodies) after a role chunk and a few plain chunks that arm the fast path."""
    st = chat_stream.ChatStream(make_ctx("openai_chat", mode, model=model))
    fr = SSEFramer(b"\n")
    warm = [b'"role":"assistant","content":""', b'"content":"Hello"', b'"reasoning_content":"plan"']
    end = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,'
    end += b'"delta":{"content":""},"logprobs":null,"finish_reason":"stop"}]}'
    out: list[Event] = []
    for b in [*warm, *bodies]:
        out += st.on_event(Event(HEAD + b + TAIL))
    out += st.on_event(Event(end))
    out += st.on_event(Event(b"[DONE]"))
    out += st.on_end()
    return b"".join(fr.encode(e) for e in out)


def _no_secret(raw: bytes) -> None:
    assert b"SECRET" not in raw
    assert b"\\u0053ECRET" not in raw  # nor escaped


@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
@pytest.mark.parametrize(
    "body",
    [
        # a key spelt with escapes: JSON allows them, the bytes do not say "reasoning"
        b'"\\u0072easoning_content":"' + SECRET.encode() + b'"',
        b'"content":null,"reasoning_\\u0063ontent":"' + SECRET.encode() + b'"',
        # a duplicate key: orjson keeps the last value, a first-wins parser the first
        b'"content":"x","reasoning_content":"' + SECRET.encode() + b'","reasoning_content":null',
        # the visible string closes early and smuggles a reasoning key inside the compact shape
        b'"content":"x","reasoning_content":"' + SECRET.encode() + b'"},"logprobs":null,"finish_reason":null}],'
        b'"y":[{"delta":{"content":"z"',
    ],
)
def test_chat_hostile_keys_never_leak(mode: str, body: bytes) -> None:
    try:
        raw = _chat_stream(mode, [body])
    except RedactionFailed:
        return  # failing closed is fine: nothing was relayed
    _no_secret(raw)


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_chat_escaped_think_tag_is_seen(mode: str) -> None:
    """``\\u003cthink>`` is ``<think>``: the content fast path must not relay it (nor what follows)."""
    raw = _chat_stream(mode, [b'"content":"\\u003cthink>"', b'"content":"' + SECRET.encode() + b'"'])
    _no_secret(raw)
    raw = _chat_stream(mode, [b'"content":"a\\u003Cthink>' + SECRET.encode() + b'"'])
    _no_secret(raw)


def test_chat_trailing_backslash_takes_the_slow_path() -> None:
    # "x\" + suffix is not the compact shape (the closing quote would be escaped): parsed, and invalid
    with pytest.raises(RedactionFailed):
        _chat_stream("omit", [b'"reasoning_content":"x\\'])
    raw = _chat_stream("omit", [b'"content":"a \\\\"'])  # an escaped backslash at the end is visible text
    assert b'"a \\\\"' in raw


def test_chat_key_split_across_events_fails_closed() -> None:
    st = chat_stream.ChatStream(make_ctx("openai_chat", "omit"))
    st.on_event(Event(HEAD + b'"role":"assistant","content":""' + TAIL))
    chunk = HEAD + b'"reasoning_content":"' + SECRET.encode() + b'"' + TAIL
    cut = chunk.index(b"reasoning") + 4
    with pytest.raises(RedactionFailed):
        st.on_event(Event(chunk[:cut]))  # what a framer makes of "rea" \n\n "soning...": two bad events


@pytest.mark.parametrize("mode", ["omit", "seal"])
def test_inline_think_fast_path_equals_splitter(mode: str) -> None:
    """Inside an idle <think> block, content chunks are dropped unparsed; the visible text after it is
    byte-identical, and a tag split over chunks is still found."""
    pieces = [b"<think>", b"\\n", SECRET.encode(), b" more", b"</th", b"ink>", b"\\n\\n", b"Answer", b" <b>ok</b>"]
    raw = _chat_stream(mode, [b'"content":"' + p + b'"' for p in pieces], model="qwen3")
    _no_secret(raw)
    visible = b"".join(
        orjson.loads(line[6:])["choices"][0]["delta"].get("content", "").encode()
        for line in raw.split(b"\n\n")
        if line.startswith(b"data: {") and b'"choices":[{' in line
    )
    assert visible == b"HelloAnswer <b>ok</b>"


# ---------------------------------------------------------------- Gemini


@pytest.mark.parametrize("mode", ["omit", "seal", "drop"])
@pytest.mark.parametrize(
    "part",
    [
        b'{"text":"' + SECRET.encode() + b'","\\u0074hought":true}',
        b'{"text":"' + SECRET.encode() + b'","thought":true,"thought":false}',
    ],
)
def test_gemini_hostile_thought_keys(mode: str, part: bytes) -> None:
    st = gemini.GeminiStream(make_ctx("gemini", mode))
    data = b'{"candidates":[{"content":{"parts":[' + part + b'],"role":"model"},"index":0}]}'
    out = st.on_event(Event(data)) + st.on_end()
    raw = b"".join(e.data for e in out)
    if b"\\u0074hought" in part:
        _no_secret(raw)
    else:  # orjson keeps the last "thought" (false): the client must get exactly that, once
        assert all(orjson.loads(e.data) == orjson.loads(raw) for e in out) and raw.count(b'"thought"') == 1


def _gemini_body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"candidates": [{"content": {"parts": list(parts), "role": "model"}, "finishReason": "STOP", "index": 0}]}


def _restore(parts: list[dict[str, Any]], alphabet: str = "std") -> dict[str, Any]:
    if alphabet == "url":  # what google-genai sends back: the bytes it decoded, encoded URL-safe
        parts = [
            {**p, "thoughtSignature": base64.urlsafe_b64encode(base64.b64decode(p["thoughtSignature"])).decode()}
            if "thoughtSignature" in p
            else p
            for p in parts
        ]
    req = {"contents": [{"role": "user", "parts": [{"text": "q"}]}, {"role": "model", "parts": parts}]}
    gemini.rewrite_request(req, None, RING, "gemini|alice", 1_700_000_000, False)
    return req


@pytest.mark.parametrize("alphabet", ["std", "url"])
def test_gemini_seal_body_round_trip(alphabet: str) -> None:
    body = _gemini_body(
        {"text": SECRET, "thought": True},
        {"text": "second thought", "thought": True, "thoughtSignature": "R29vZ2xlU2ln"},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "Q2FsbFNpZw=="},
    )
    original = orjson.loads(orjson.dumps(body))
    assert gemini.redact_body(body, make_ctx("gemini", "seal"))
    parts = body["candidates"][0]["content"]["parts"]
    _no_secret(orjson.dumps(body))
    assert [p.get("thought") for p in parts] == [True, None]  # one sealed part for the run, then the call
    assert parts[0]["text"] == "" and base64.b64decode(parts[0]["thoughtSignature"]).startswith(b"dgs1.")
    assert parts[1] == original["candidates"][0]["content"]["parts"][2]  # Google's signature untouched
    req = _restore(parts, alphabet)
    assert req["contents"][1]["parts"] == [
        {"text": SECRET + "second thought", "thought": True, "thoughtSignature": "R29vZ2xlU2ln"},
        original["candidates"][0]["content"]["parts"][2],
    ]


def test_gemini_seal_rejects_tampered_and_foreign_tokens() -> None:
    body = _gemini_body({"text": SECRET, "thought": True}, {"text": "answer"})
    gemini.redact_body(body, make_ctx("gemini", "seal"))
    sealed = body["candidates"][0]["content"]["parts"][0]
    token = base64.b64decode(sealed["thoughtSignature"])
    assert token.startswith(b"dgs1.t1.\x00")  # the binary form: the ciphertext is not base64 twice
    for bad in (token[:-1] + bytes([token[-1] ^ 1]), token[:-20], token.replace(b".t1.", b".zz.")):
        with pytest.raises(SealError):
            _restore([{**sealed, "thoughtSignature": base64.b64encode(bad).decode()}])
    req = {"contents": [{"role": "model", "parts": [dict(sealed)]}]}
    with pytest.raises(SealError):  # bound to the account and the API
        gemini.rewrite_request(req, None, RING, "gemini|mallory", 1_700_000_000, False)


def test_gemini_text_form_tokens_still_open() -> None:
    """Parts sealed before the binary form (base64 of the text token) are restored as before."""
    text_token = RING.seal({"t": SECRET}, context="gemini|alice", now=1_700_000_000, ttl=60)
    part = {"text": "", "thought": True, "thoughtSignature": base64.b64encode(text_token.encode()).decode()}
    for alphabet in ("std", "url"):
        assert _restore([dict(part)], alphabet)["contents"][1]["parts"] == [{"text": SECRET, "thought": True}]
    broken = {**part, "thoughtSignature": base64.b64encode(text_token[:-4].encode() + b"!!!!").decode()}
    with pytest.raises(SealError):
        _restore([broken])


def test_gemini_seal_stream_places_the_sealed_part() -> None:
    st = gemini.GeminiStream(make_ctx("gemini", "seal"))

    def chunk(parts: list[dict[str, Any]], finish: bool = False) -> Event:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            cand["finishReason"] = "STOP"
        return Event(orjson.dumps({"candidates": [cand], "modelVersion": "g"}))

    out = st.on_event(chunk([{"text": SECRET, "thought": True}]))
    assert out == []  # held until the run ends
    out = st.on_event(chunk([{"text": " again", "thought": True}, {"text": "Answer"}]))
    parts = out[0].obj["candidates"][0]["content"]["parts"]
    assert [p.get("thought") for p in parts] == [True, None] and parts[1] == {"text": "Answer"}
    assert _restore(parts)["contents"][1]["parts"][0] == {"text": SECRET + " again", "thought": True}
    # a run still open when the stream ends: one more chunk carries it
    out = st.on_event(chunk([{"text": "late thought", "thought": True}])) + st.on_end()
    assert len(out) == 1 and _restore(out[0].obj["candidates"][0]["content"]["parts"])["contents"][1][
        "parts"
    ] == [{"text": "late thought", "thought": True}]
    # a run closed by the chunk that finishes the candidate
    st2 = gemini.GeminiStream(make_ctx("gemini", "seal"))
    st2.on_event(chunk([{"text": "t1", "thought": True}]))
    out = st2.on_event(chunk([{"text": "t2", "thought": True}], finish=True)) + st2.on_end()
    assert len(out) == 1 and out[0].obj["candidates"][0]["finishReason"] == "STOP"
    _no_secret(b"".join(e.data for e in out))


# ---------------------------------------------------------------- Anthropic


@pytest.mark.parametrize(
    "pieces",
    [
        ['say \\"hi\\" ', "a \\\\ b ", "tail"],  # escaped quotes and backslashes inside the thinking text
        ["ends with a backslash \\\\", "next"],
    ],
)
def test_anthropic_thinking_bytes_sealed_exactly(pieces: list[str]) -> None:
    from proxy.redact import anthropic

    st = anthropic.AnthropicStream(make_ctx("anthropic_messages", "seal"))
    start = b'{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}'
    delta = b'{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"%s"}}'
    sig = b'{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"c2ln"}}'
    evs = [
        (b"content_block_start", start),
        *[(b"content_block_delta", delta % p.encode()) for p in pieces],
        (b"content_block_delta", sig),
        (b"content_block_stop", b'{"type":"content_block_stop","index":0}'),
    ]
    out: list[Event] = []
    for name, data in evs:
        out += st.on_event(Event(data, name=name.decode()))
    tokens = [e.obj["delta"]["signature"] for e in out if (e.obj.get("delta") or {}).get("type") == "signature_delta"]
    assert len(tokens) == 1
    payload = RING.open(tokens[0], context="anthropic_messages|alice", now=1_700_000_000)
    assert payload == {"t": "".join(orjson.loads(b'"' + p.encode() + b'"') for p in pieces), "s": "c2ln"}
    assert all(b"thinking_delta" not in e.data for e in out)
