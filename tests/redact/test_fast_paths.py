"""The unparsed fast paths give exactly what the parsing path gives, on the fake upstream's streams."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.fake import chat, gemini, messages, reasoning_for, responses
from proxy.fake.state import FakeState, Knobs
from proxy.redact import anthropic as ranthropic
from proxy.redact import chat_stream as rchat
from proxy.redact import gemini as rgemini

from .helpers import HIDING, STREAMS, TOKEN, framer_for, make_ctx

PROMPT = "Which is larger, 9.11 or 9.8? Say why."


def _render(api: str, model: str) -> bytes:
    st, k = FakeState(), Knobs(chunks=12)
    msgs = [{"role": "user", "content": PROMPT}]
    if api == "openai_chat":
        ev = chat.render(
            chat.parse(
                {"model": model, "messages": msgs, "stream": True, "stream_options": {"include_usage": True}},
                st,
                k,
            ),
            st,
        )
    elif api == "openai_responses":
        ev = responses.render(responses.parse({"model": model, "input": PROMPT, "stream": True}, st, k), st)
    elif api == "anthropic_messages":
        ev = messages.render(
            messages.parse(
                {
                    "model": model,
                    "max_tokens": 9000,
                    "messages": msgs,
                    "stream": True,
                    "thinking": {"type": "enabled", "budget_tokens": 2000},
                },
                st,
                k,
            ),
            st,
        )
    else:
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
        }
        ev = gemini.render(gemini.parse(body, st, k, model, True, True), st)
    assert isinstance(ev, list)
    return b"".join(ev)


CASES = [
    ("openai_chat", "deepseek-reasoner"),
    ("openai_chat", "vllm-qwen3"),
    ("openai_chat", "openrouter-x"),
    ("openai_chat", "qwen3-think"),
    ("openai_responses", "o4-mini"),
    ("openai_responses", "gpt-oss-1"),
    ("anthropic_messages", "claude-x"),
    ("gemini", "gemini-2.5-flash"),
]


def _run(api: str, data: bytes, mode: str, slow: bool, monkeypatch: Any) -> bytes:
    if slow:
        monkeypatch.setattr(rchat.ChatStream, "_update_fast", lambda self: setattr(self, "fast", []))
        monkeypatch.setattr(rgemini.GeminiStream, "_compact", lambda self, ev, d: None)
        monkeypatch.setattr(ranthropic, "_thinking_text", lambda d, i: None)
        monkeypatch.setattr(ranthropic.AnthropicStream, "on_event", ranthropic.AnthropicStream._event)
    st = STREAMS[api](make_ctx(api, mode))
    name = "gemini.x.sse" if api == "gemini" else "x.sse"
    fr = framer_for(name)
    out = []
    for i in range(0, len(data), 97):
        for ev in fr.feed(data[i : i + 97]):
            out += st.on_event(ev)
    out += st.on_end()
    monkeypatch.undo()
    raw = b"".join(fr.encode(e) for e in out)
    if api == "anthropic_messages":  # the slow path would also parse unchanged events: compare payloads
        raw = b"\n".join(orjson.dumps(e.obj) for e in out if e.obj is not None)
    return raw


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("api,model", CASES)
def test_fast_equals_slow(api: str, model: str, mode: str, monkeypatch: Any) -> None:
    data = _render(api, model)
    fast = _run(api, data, mode, False, monkeypatch)
    slow = _run(api, data, mode, True, monkeypatch)
    assert TOKEN.sub(b"T", fast) == TOKEN.sub(b"T", slow)
    reasoning = reasoning_for(PROMPT, 12)
    blob = fast.decode()
    for sentence in reasoning.split(". ")[1:-1]:
        if len(sentence) > 12:
            assert sentence not in blob
