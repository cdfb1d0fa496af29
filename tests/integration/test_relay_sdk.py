"""The proxy relays every API, streaming and not, to the official SDKs; identity and errors in each shape."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest
from google.genai import errors as genai_errors
from google.genai import types as gt

from proxy.fake import answer_for, reasoning_for

from .conftest import GENAI_WARNING, UPSTREAM_KEY, GenaiClient, anthropic_client, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

PROMPT = "Which is larger, 9.11 or 9.8?"


def _user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- OpenAI Chat Completions


@pytest.mark.parametrize("model,field", [
    ("deepseek-reasoner", "reasoning_content"), ("vllm-qwen3", "reasoning"), ("openrouter-claude", "reasoning"),
])
async def test_chat_nonstream_all_flavours(start_proxy, fake, model, field):
    run = await start_proxy()
    async with openai_client(run, key=run.keys["tina"]) as c:  # trusted: reasoning passes
        r = await c.chat.completions.create(model=model, messages=_user())
    msg = r.choices[0].message
    assert msg.content == answer_for(PROMPT)
    assert msg.model_extra[field] == reasoning_for(PROMPT)
    assert r.usage.completion_tokens_details.reasoning_tokens > 0


async def test_chat_stream_accumulates(start_proxy):
    run = await start_proxy()
    async with openai_client(run) as c:
        async with c.chat.completions.stream(
            model="deepseek-reasoner", messages=_user(), stream_options={"include_usage": True}
        ) as s:
            final = await s.get_final_completion()
    assert final.choices[0].message.content == answer_for(PROMPT)
    assert final.choices[0].message.role == "assistant"
    assert final.usage is not None and final.usage.completion_tokens > 0


async def test_chat_raw_stream_and_usage_in_access_log(start_proxy):
    run = await start_proxy()
    async with openai_client(run) as c:
        stream = await c.chat.completions.create(
            model="vllm-qwen3", messages=_user(), stream=True, stream_options={"include_usage": True}
        )
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
    assert text == answer_for(PROMPT)
    await run.server.stop(drain_timeout=1)  # flushes the access log
    rec = orjson.loads(run.access_log.read_text().splitlines()[-1])
    assert rec["account"] == "alice" and rec["tier"] == "standard" and rec["stream"] is True
    assert rec["usage"]["output"] > 0 and rec["usage"]["reasoning"] > 0
    assert rec["status"] == 200 and rec["dialect"] == "openai_chat"
    assert rec["request_id"].startswith("dg-")


# ---------------------------------------------------------------- OpenAI Responses


async def test_responses_nonstream_and_stream(start_proxy):
    run = await start_proxy()
    async with openai_client(run) as c:
        r = await c.responses.create(model="o4-mini", input=PROMPT, reasoning={"effort": "low", "summary": "auto"})
        assert r.output_text == answer_for(PROMPT)
        async with c.responses.stream(model="o4-mini", input=PROMPT, reasoning={"summary": "auto"}) as s:
            final = await s.get_final_response()
    assert final.output_text == answer_for(PROMPT)
    assert any(item.type == "reasoning" for item in final.output)
    assert final.usage.output_tokens_details.reasoning_tokens > 0


# ---------------------------------------------------------------- Anthropic Messages

THINK = {"type": "enabled", "budget_tokens": 2048}


async def test_anthropic_nonstream_and_stream(start_proxy):
    run = await start_proxy()
    async with anthropic_client(run, key=run.keys["tina"]) as c:
        m = await c.messages.create(model="claude-test-model", max_tokens=4096, thinking=THINK, messages=_user())
        assert [b.type for b in m.content] == ["thinking", "text"]
        assert m.content[0].thinking == reasoning_for(PROMPT) and m.content[0].signature
        async with c.messages.stream(model="claude-test-model", max_tokens=4096, thinking=THINK,
                                     messages=_user()) as s:
            final = await s.get_final_message()
    assert final.content[-1].text == answer_for(PROMPT)
    assert final.usage.output_tokens > 0


# ---------------------------------------------------------------- Gemini


async def test_gemini_nonstream_and_stream(start_proxy):
    run = await start_proxy()
    cfg = gt.GenerateContentConfig(thinking_config=gt.ThinkingConfig(include_thoughts=True))
    async with GenaiClient(run, key=run.keys["tina"]) as g:
        r = await g.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=cfg)
        assert r.text == answer_for(PROMPT)
        thoughts = [p.text for p in r.candidates[0].content.parts if p.thought]
        assert "".join(thoughts) == reasoning_for(PROMPT)
        text = ""
        async for chunk in await g.models.generate_content_stream(model="gemini-2.5-flash", contents=PROMPT,
                                                                   config=cfg):
            text += chunk.text or ""
    assert text == answer_for(PROMPT)


async def test_gemini_json_array_stream_relayed(start_proxy):
    """Without alt=sse Gemini streams one JSON array; the proxy frames it element by element."""
    import aiohttp

    run = await start_proxy()
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
                          json=body, headers={"x-goog-api-key": run.key}) as r:
            assert r.status == 200
            data = orjson.loads(await r.read())
    assert isinstance(data, list) and len(data) > 1
    text = "".join(p.get("text", "") for el in data for c in el["candidates"] for p in c["content"]["parts"]
                   if not p.get("thought"))
    assert text == answer_for(PROMPT)


# ---------------------------------------------------------------- identity and key handling


async def test_upstream_key_injected_and_client_key_never_forwarded(start_proxy, fake):
    run = await start_proxy()
    async with openai_client(run) as c:
        await c.chat.completions.create(model="deepseek-reasoner", messages=_user())
    async with anthropic_client(run) as c:
        await c.messages.create(model="claude-test-model", max_tokens=1024, messages=_user())
    async with GenaiClient(run) as g:
        await g.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    chat, msgs, gem = list(fake.requests)[-3:]
    assert chat.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert msgs.headers["x-api-key"] == UPSTREAM_KEY and "authorization" not in msgs.headers
    assert gem.headers["x-goog-api-key"] == UPSTREAM_KEY
    for rec in (chat, msgs, gem):
        flat = repr(rec.headers) + rec.path + repr(rec.query)
        assert run.key not in flat
        assert rec.headers["x-forwarded-for"] == "127.0.0.1"
        assert rec.headers["x-forwarded-proto"] == "http"


async def test_key_in_query_string_is_accepted_and_stripped(start_proxy, fake):
    import aiohttp

    run = await start_proxy()
    body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + f"/v1beta/models/gemini-2.5-flash:generateContent?key={run.key}&x=1",
                          json=body) as r:
            assert r.status == 200
    rec = fake.requests[-1]
    assert "key" not in rec.query and rec.query.get("x") == "1"


async def test_unauthenticated_in_each_dialect_shape(start_proxy):
    run = await start_proxy()
    async with openai_client(run, key="dg-wrong") as c:
        with pytest.raises(openai.AuthenticationError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=_user())
    assert e.value.status_code == 401 and e.value.code == "unauthenticated"
    async with openai_client(run, key="dg-wrong") as c:
        with pytest.raises(openai.AuthenticationError):
            await c.responses.create(model="o4-mini", input=PROMPT)
    async with anthropic_client(run, key="dg-wrong") as c:
        with pytest.raises(anthropic.AuthenticationError) as ea:
            await c.messages.create(model="claude-test-model", max_tokens=1024, messages=_user())
    assert ea.value.body["error"]["type"] == "authentication_error"
    async with GenaiClient(run, key="dg-wrong") as g:
        with pytest.raises(genai_errors.ClientError) as eg:
            await g.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    assert eg.value.code == 401 and eg.value.status == "UNAUTHENTICATED"


async def test_missing_key_is_401(start_proxy):
    import aiohttp

    run = await start_proxy()
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/messages", json={"model": "m", "messages": []}) as r:
            assert r.status == 401
            body = await r.json()
            assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
            assert r.headers["x-request-id"].startswith("dg-")
            assert r.headers["x-distillguard-error"] == "unauthenticated"
            assert r.headers["Server"] == "distillguard"  # no framework version announced
