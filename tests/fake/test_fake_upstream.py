"""The fake reasoning upstream, driven by the official SDKs (openai, anthropic, google-genai)."""

from __future__ import annotations

import asyncio
import gzip
import json

import aiohttp
import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as gt

from proxy.fake import REASONING_MARKER, answer_for, reasoning_for, start_fake_upstream

# google-genai subclasses aiohttp.ClientSession when aiohttp is installed (a DeprecationWarning in aiohttp).
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

PROMPT = "Which is larger, 9.11 or 9.8? Explain briefly."
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def fake():
    f = await start_fake_upstream()
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
async def oai(fake):
    async with openai.AsyncOpenAI(base_url=fake.url + "/v1", api_key="sk-dummy", max_retries=0) as c:
        yield c


@pytest.fixture
async def ant(fake):
    async with anthropic.AsyncAnthropic(base_url=fake.url, api_key="dummy", max_retries=0) as c:
        yield c


@pytest.fixture
async def gem(fake):
    c = genai.Client(api_key="dummy", http_options=gt.HttpOptions(base_url=fake.url))
    try:
        yield c.aio
    finally:
        await c.aio.aclose()
        c.close()


def _user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


# ------------------------------------------------------------------ Chat Completions


async def test_chat_nonstream_deepseek(oai, fake):
    r = await oai.chat.completions.create(model="deepseek-reasoner", messages=_user())
    msg = r.choices[0].message
    assert msg.content == answer_for(PROMPT)
    assert msg.model_extra["reasoning_content"] == reasoning_for(PROMPT)
    assert REASONING_MARKER in reasoning_for(PROMPT) and REASONING_MARKER not in answer_for(PROMPT)
    u = r.usage
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert 0 < u.completion_tokens_details.reasoning_tokens < u.completion_tokens
    rec = fake.requests[-1]
    assert rec.path == "/v1/chat/completions" and rec.headers["authorization"] == "Bearer sk-dummy"
    assert rec.json()["model"] == "deepseek-reasoner"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("deepseek-reasoner", "reasoning_content"),
        ("gpt-fake", "reasoning_content"),
        ("vllm/qwen3", "reasoning"),
        ("ollama/qwen3", "reasoning"),
        ("openrouter/anthropic/claude", "reasoning"),
        ("qwen3-think", None),
        ("r1-think-noopen", None),
    ],
)
async def test_chat_stream_helper_flavours(oai, model, field):
    async with oai.chat.completions.stream(
        model=model, messages=_user(), stream_options={"include_usage": True}
    ) as s:
        final = await s.get_final_completion()
    msg = final.choices[0].message
    reasoning = reasoning_for(PROMPT)
    if field:
        assert msg.content == answer_for(PROMPT)
        assert msg.model_extra[field] == reasoning
    elif "noopen" in model:
        assert msg.content == reasoning + "\n</think>\n\n" + answer_for(PROMPT)
    else:
        assert msg.content == "<think>\n" + reasoning + "\n</think>\n\n" + answer_for(PROMPT)
    assert final.usage.total_tokens == final.usage.prompt_tokens + final.usage.completion_tokens
    assert final.usage.completion_tokens_details.reasoning_tokens > 0


async def test_chat_stream_raw_openrouter_details(oai):
    stream = await oai.chat.completions.create(model="openrouter/x", messages=_user(), stream=True)
    reasoning, content, sigs = "", "", []
    async for chunk in stream:
        if chunk.choices:
            d = chunk.choices[0].delta
            reasoning += d.model_extra.get("reasoning") or ""
            content += d.content or ""
            sigs += [x["signature"] for x in d.model_extra.get("reasoning_details") or [] if "signature" in x]
    assert reasoning == reasoning_for(PROMPT) and content == answer_for(PROMPT) and len(sigs) == 1


async def test_chat_logprobs_and_n(oai):
    r = await oai.chat.completions.create(
        model="qwen3-think", messages=_user(), logprobs=True, top_logprobs=2, n=2
    )
    assert [c.index for c in r.choices] == [0, 1]
    for c in r.choices:
        toks = c.logprobs.content
        assert "".join(t.token for t in toks) == c.message.content
        assert "<think>" in c.message.content and all(len(t.top_logprobs) == 2 for t in toks)
    async with oai.chat.completions.stream(model="deepseek-r1", messages=_user(), logprobs=True) as s:
        final = await s.get_final_completion()
    assert "".join(t.token for t in final.choices[0].logprobs.content) == answer_for(PROMPT)


async def test_chat_tool_loop_roundtrip_and_strict(oai, fake):
    r = await oai.chat.completions.create(
        model="deepseek-chat", messages=_user("Weather in Paris?"), tools=[WEATHER_TOOL]
    )
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    call = msg.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    async with oai.chat.completions.stream(
        model="deepseek-chat", messages=_user("Weather in Paris?"), tools=[WEATHER_TOOL]
    ) as s:
        sfinal = await s.get_final_completion()
    assert json.loads(sfinal.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}

    assistant = {
        "role": "assistant",
        "content": None,
        "reasoning_content": msg.model_extra["reasoning_content"],
        "tool_calls": [call.model_dump()],
    }
    history = [
        *_user("Weather in Paris?"),
        assistant,
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    r2 = await oai.chat.completions.create(model="deepseek-chat", messages=history, tools=[WEATHER_TOOL])
    assert "sunny" in r2.choices[0].message.content and r2.choices[0].finish_reason == "stop"
    assert [c.ok for c in fake.roundtrip_checks] == [True]

    bad = [*history]
    bad[1] = {k: v for k, v in assistant.items() if k != "reasoning_content"}
    await oai.chat.completions.create(model="deepseek-chat", messages=bad)  # lenient by default
    assert fake.roundtrip_checks[-1].ok is False
    with pytest.raises(openai.BadRequestError, match="reasoning_content"):
        await oai.chat.completions.create(
            model="deepseek-chat", messages=bad, extra_headers={"x-fake-strict": "1"}
        )


# ------------------------------------------------------------------ Responses


async def test_responses_nonstream_and_stream(oai):
    r = await oai.responses.create(model="o4-mini", input=PROMPT)
    rs, _msg = r.output
    assert rs.type == "reasoning" and rs.encrypted_content.startswith("gAAAAA")
    summary = "".join(p.text for p in rs.summary)
    assert REASONING_MARKER in summary and "First I restate" in summary
    assert r.output_text == answer_for(PROMPT)
    assert r.usage.output_tokens_details.reasoning_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens

    types_seen = []
    async with oai.responses.stream(model="o4-mini", input=PROMPT) as s:
        async for ev in s:
            types_seen.append(ev.type)
        final = await s.get_final_response()
    assert final.output_text == answer_for(PROMPT)
    assert final.output[0].encrypted_content == rs.encrypted_content
    assert types_seen[0] == "response.created" and types_seen[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in types_seen


async def test_responses_oss_reasoning_text_and_no_summary(oai):
    async with oai.responses.stream(model="gpt-oss-20b", input=PROMPT) as s:
        final = await s.get_final_response()
    assert final.output[0].content[0].text == reasoning_for(PROMPT) and final.output[0].summary == []
    r = await oai.responses.create(model="o4-mini", input=PROMPT, reasoning={"effort": "low"})
    assert r.output[0].summary == []


async def test_responses_tools_roundtrip_strict(oai, fake):
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
    async with oai.responses.stream(model="o4-mini", input="Weather in Paris?", tools=[tool]) as s:
        final = await s.get_final_response()
    rs, fc = final.output
    assert fc.type == "function_call" and json.loads(fc.arguments) == {"city": "Paris"}
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        rs.model_dump(exclude_none=True),
        fc.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"},
    ]
    r2 = await oai.responses.create(model="o4-mini", input=items, tools=[tool])
    assert "sunny" in r2.output_text
    assert [c.ok for c in fake.roundtrip_checks] == [True]
    with pytest.raises(openai.BadRequestError, match="without its required 'reasoning' item"):
        await oai.responses.create(
            model="o4-mini", input=[items[0], *items[2:]], tools=[tool], extra_headers={"x-fake-strict": "1"}
        )


# ------------------------------------------------------------------ Anthropic


async def test_anthropic_nonstream_and_stream(ant):
    kw = dict(
        model="claude-fake-thinker",
        max_tokens=2048,
        messages=_user(),
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    m = await ant.messages.create(**kw)
    th, tx = m.content
    assert th.type == "thinking" and th.thinking == reasoning_for(PROMPT) and th.signature
    assert tx.text == answer_for(PROMPT) and m.stop_reason == "end_turn"
    async with ant.messages.stream(**kw) as s:
        final = await s.get_final_message()
    assert final.content[0].thinking == th.thinking and final.content[0].signature == th.signature
    assert final.content[1].text == tx.text and final.usage.output_tokens == m.usage.output_tokens

    plain = await ant.messages.create(model="claude", max_tokens=100, messages=_user())
    assert [b.type for b in plain.content] == ["text"]


async def test_anthropic_display_omitted(ant):
    async with ant.messages.stream(
        model="claude-fake-adaptive",
        max_tokens=2048,
        messages=_user(),
        thinking={"type": "adaptive", "display": "omitted"},
    ) as s:
        final = await s.get_final_message()
    assert final.content[0].thinking == "" and final.content[0].signature


async def test_anthropic_tool_use_roundtrip_strict(ant, fake):
    tools = [{"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}]
    kw = dict(
        model="claude-fake-thinker",
        max_tokens=2048,
        tools=tools,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    async with ant.messages.stream(messages=_user("Weather in Paris?"), **kw) as s:
        final = await s.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    tu = final.content[2]
    assert tu.input == {"city": "Paris"} and final.stop_reason == "tool_use"
    history = [
        *_user("Weather in Paris?"),
        {"role": "assistant", "content": [b.model_dump() for b in final.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "sunny"}]},
    ]
    m2 = await ant.messages.create(messages=history, **kw)
    assert "sunny" in m2.content[-1].text and m2.stop_reason == "end_turn"
    assert [c.ok for c in fake.roundtrip_checks] == [True]
    history[1] = {"role": "assistant", "content": [b.model_dump() for b in final.content[1:]]}
    with pytest.raises(anthropic.BadRequestError, match="Expected `thinking`"):
        await ant.messages.create(messages=history, extra_headers={"x-fake-strict": "1"}, **kw)


# ------------------------------------------------------------------ Gemini


def _gcfg(**kw) -> gt.GenerateContentConfig:
    return gt.GenerateContentConfig(thinking_config=gt.ThinkingConfig(include_thoughts=True), **kw)


async def test_gemini_nonstream_and_stream(gem, fake):
    r = await gem.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=_gcfg())
    parts = r.candidates[0].content.parts
    assert parts[0].thought and parts[0].text == reasoning_for(PROMPT)
    assert parts[1].text == answer_for(PROMPT) and parts[1].thought_signature
    assert r.text == answer_for(PROMPT)
    u = r.usage_metadata
    assert u.thoughts_token_count > 0
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + u.thoughts_token_count
    thoughts, text = "", ""
    async for chunk in await gem.models.generate_content_stream(
        model="gemini-2.5-flash", contents=PROMPT, config=_gcfg()
    ):
        for p in chunk.candidates[0].content.parts:
            if p.thought:
                thoughts += p.text
            else:
                text += p.text
    assert thoughts == reasoning_for(PROMPT) and text == answer_for(PROMPT)
    assert (
        fake.requests[-1].query.get("alt") == "sse" and fake.requests[-1].headers["x-goog-api-key"] == "dummy"
    )
    r3 = await gem.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    assert not any(p.thought for p in r3.candidates[0].content.parts)


async def test_gemini_function_call_roundtrip(gem, fake):
    tool = gt.Tool(
        function_declarations=[
            gt.FunctionDeclaration(
                name="get_weather",
                parameters=gt.Schema(type="OBJECT", properties={"city": gt.Schema(type="STRING")}),
            )
        ]
    )
    cfg = _gcfg(tools=[tool], automatic_function_calling=gt.AutomaticFunctionCallingConfig(disable=True))
    r = await gem.models.generate_content(model="gemini-3-pro", contents="Weather in Paris?", config=cfg)
    call_part = r.candidates[0].content.parts[-1]
    assert call_part.function_call.name == "get_weather" and call_part.function_call.args == {"city": "Paris"}
    assert call_part.thought_signature
    contents = [
        gt.Content(role="user", parts=[gt.Part(text="Weather in Paris?")]),
        r.candidates[0].content,
        gt.Content(
            role="user",
            parts=[gt.Part.from_function_response(name="get_weather", response={"result": "sunny"})],
        ),
    ]
    r2 = await gem.models.generate_content(model="gemini-3-pro", contents=contents, config=cfg)
    assert "sunny" in r2.text
    assert fake.roundtrip_checks and all(c.ok for c in fake.roundtrip_checks)


async def test_gemini_noalt_json_array(fake):
    body = {
        "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    async with (
        aiohttp.ClientSession() as s,
        s.post(fake.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent", json=body) as r,
    ):
        arr = json.loads(await r.read())
    assert "".join(
        c["candidates"][0]["content"]["parts"][0]["text"]
        for c in arr
        if c["candidates"][0]["content"]["parts"][0].get("thought")
    ) == reasoning_for(PROMPT)


# ------------------------------------------------------------------ errors and knobs


async def test_error_status_knob_gives_sdk_exceptions(oai, ant, gem):
    h = {"x-fake-status": "429"}
    with pytest.raises(openai.RateLimitError) as e1:
        await oai.chat.completions.create(model="x", messages=_user(), extra_headers=h)
    assert e1.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError):
        await oai.responses.create(model="o4-mini", input="hi", extra_headers=h)
    with pytest.raises(anthropic.RateLimitError):
        await ant.messages.create(model="c", max_tokens=10, messages=_user(), extra_headers=h)
    with pytest.raises(genai_errors.ClientError) as e3:
        await gem.models.generate_content(
            model="gemini-2.5-flash",
            contents="hi",
            config=gt.GenerateContentConfig(http_options=gt.HttpOptions(headers=h)),
        )
    assert e3.value.code == 429 and e3.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(anthropic.InternalServerError):
        await ant.messages.create(
            model="c", max_tokens=10, messages=_user(), extra_headers={"x-fake-fail": "status=529"}
        )


async def test_mid_stream_failures(oai, ant, fake):
    with pytest.raises(openai.APIError):
        async with oai.chat.completions.stream(
            model="x", messages=_user(), extra_headers={"x-fake-fail": "error-mid-stream=3"}
        ) as s:
            await s.get_final_completion()
    # anthropic 2.x surfaces the transport error of its bundled HTTP client (RemoteProtocolError).
    with pytest.raises(Exception, match="peer closed connection") as e:
        async with ant.messages.stream(
            model="c",
            max_tokens=10,
            messages=_user(),
            extra_headers={"x-fake-fail": "reset-mid-stream", "x-fake-after": "4"},
        ) as s:
            await s.get_final_message()
    assert "ProtocolError" in type(e.value).__name__
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(
            model="x", messages=_user(), extra_headers={"x-fake-fail": "reset-before-headers"}
        )
    # non-stream: the full Content-Length is announced, half the body is sent, then the connection is cut
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(
            model="x", messages=_user(), extra_headers={"x-fake-fail": "reset-mid-stream"}
        )
    assert (
        fake.stats.resets == 3 and fake.stats.completed == 1 and fake.stats.in_flight == 0
    )  # error-mid-stream
    with pytest.raises(openai.BadRequestError, match="x-fake"):
        await oai.chat.completions.create(
            model="x", messages=_user(), extra_headers={"x-fake-fail": "explode"}
        )


async def test_hang_and_stall_count_cancellations(fake):
    body = {"model": "x", "stream": True, "messages": _user()}
    async with aiohttp.ClientSession() as s:
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(
                fake.url + "/v1/chat/completions",
                json=body,
                headers={"x-fake-fail": "hang"},
                timeout=aiohttp.ClientTimeout(total=0.2),
            ) as r:
                await r.read()
        lines = []
        with pytest.raises(asyncio.TimeoutError):
            async with s.post(
                fake.url + "/v1/chat/completions",
                json=body,
                headers={"x-fake-fail": "stall-mid-stream=3"},
                timeout=aiohttp.ClientTimeout(sock_read=0.2),
            ) as r:
                async for line in r.content:
                    lines.append(line)
        assert sum(1 for x in lines if x.startswith(b"data: ")) == 3
    for _ in range(50):
        if fake.stats.cancelled >= 2 and fake.stats.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.stats.cancelled == 2 and fake.stats.in_flight == 0


async def test_delays_chunks_gzip_and_recording(fake):
    body = {"model": "x", "messages": _user()}
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.post(fake.url + "/chat/completions", json=body, headers={"x-fake-gzip": "1"}) as r:
            assert r.headers["Content-Encoding"] == "gzip"
            data = json.loads(gzip.decompress(await r.read()))
        assert data["choices"][0]["message"]["content"] == answer_for(PROMPT)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with s.post(
            fake.url + "/v1/chat/completions",
            json={**body, "stream": True},
            headers={
                "x-fake-chunks": "40",
                "x-fake-event-delay-ms": "1",
                "x-fake-delay-ms": "50",
                "x-forwarded-for": "10.0.0.1",
            },
        ) as r:
            raw = await r.read()
        assert loop.time() - t0 >= 0.05 + 0.08
    assert raw.count(b"data: ") == 1 + 40 + 40 + 1 + 1
    rec = fake.requests[-1]
    assert rec.headers["x-forwarded-for"] == "10.0.0.1" and rec.path == "/v1/chat/completions"
    assert json.loads(rec.body)["stream"] is True
    assert reasoning_for(PROMPT, 40).count("Step ") == 35


async def test_constructor_options_and_standalone_help():
    f = await start_fake_upstream(status=503)
    try:
        async with openai.AsyncOpenAI(base_url=f.url + "/v1", api_key="k", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                await c.chat.completions.create(model="x", messages=_user())
    finally:
        await f.close()
    proc = await asyncio.create_subprocess_exec(
        ".venv/bin/python", "-m", "proxy.fake.upstream", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and b"--port" in out


async def test_roundtrip_tampered_and_gemini_strict(ant, gem, fake):
    kw = dict(model="claude-fake", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024})
    m = await ant.messages.create(messages=_user(), **kw)
    blocks = [b.model_dump() for b in m.content]
    blocks[0]["thinking"] = "something else"
    await ant.messages.create(
        messages=[*_user(), {"role": "assistant", "content": blocks}, *_user("more")], **kw
    )
    check = fake.roundtrip_checks[-1]
    assert (check.api, check.kind, check.ok, check.detail) == (
        "anthropic",
        "signature",
        False,
        "thinking text changed",
    )
    blocks[0]["signature"] = "AAAA"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        await ant.messages.create(
            messages=[*_user(), {"role": "assistant", "content": blocks}, *_user("more")],
            extra_headers={"x-fake-strict": "1"},
            **kw,
        )
    contents = [
        gt.Content(role="user", parts=[gt.Part(text="Weather in Paris?")]),
        gt.Content(role="model", parts=[gt.Part.from_function_call(name="get_weather", args={"city": "P"})]),
        gt.Content(
            role="user",
            parts=[gt.Part.from_function_response(name="get_weather", response={"result": "sunny"})],
        ),
    ]
    cfg = gt.GenerateContentConfig(http_options=gt.HttpOptions(headers={"x-fake-strict": "1"}))
    with pytest.raises(genai_errors.ClientError, match="thought_signature") as e:
        await gem.models.generate_content(model="gemini-3-pro", contents=contents, config=cfg)
    assert e.value.code == 400


async def test_make_fake_app_state_alias_and_responses_sequence(fake, oai):
    from proxy.fake import FAKE_KEY

    assert fake.app["fake"] is fake.app[FAKE_KEY] is fake.state
    seqs, outputs = [], set()
    async with oai.responses.stream(model="o4-mini", input=PROMPT, extra_headers={"x-fake-chunks": "9"}) as s:
        async for ev in s:
            seqs.append(ev.sequence_number)
            if hasattr(ev, "output_index"):
                outputs.add(ev.output_index)
    assert seqs == list(range(len(seqs))) and outputs == {0, 1}
    assert fake.stats.by_api["responses"] == 1 and fake.stats.completed == 1
