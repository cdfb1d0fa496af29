"""Redaction end to end: the real proxy, the fake upstream and the official SDKs (current and previous
majors), every API, streaming and not; seal round trips in tool loops; bad seal tokens; fail closed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import openai
import pytest
from google.genai import types as gt

from proxy.fake import REASONING_MARKER, answer_for, reasoning_for
from proxy.redact.seal import KeyRing, new_key_text, parse_keyring

from .conftest import GENAI_WARNING, GenaiClient, anthropic_client, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

PROMPT = "Which is larger, 9.11 or 9.8?"
TOOL_PROMPT = "Weather in Paris?"
KEYS = new_key_text("it1")
MODES = ("omit", "drop", "seal", "placeholder")
REPO = Path(__file__).resolve().parents[2]
PREV = REPO / ".sdk-prev"
PREV_PINS = ("openai==2.54.0", "anthropic==1.17.0")
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
THINK = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture(autouse=True)
def _seal_keys(monkeypatch):
    """A fixed seal key ring for the proxies these tests start (app.build_filters wires redaction)."""
    monkeypatch.setenv("DISTILLGUARD_SEAL_KEYS", KEYS)


def _cfg(mode: str, **extra) -> dict:
    return {"redaction": {"tiers": {"standard": mode}, **extra}}


def _no_reasoning(*texts: object) -> None:
    blob = json.dumps([str(t) for t in texts])
    assert REASONING_MARKER not in blob
    assert reasoning_for(PROMPT)[:40] not in blob


def _user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------- every API, every mode, current SDKs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "model", ["deepseek-reasoner", "vllm-qwen3", "openrouter-claude", "qwen3-think", "think-noopen-r1"]
)
async def test_chat_sdk(start_proxy, mode, model):
    run = await start_proxy(config=_cfg(mode))
    async with openai_client(run) as c:
        r = await c.chat.completions.create(model=model, messages=_user())
        async with c.chat.completions.stream(
            model=model, messages=_user(), stream_options={"include_usage": True}
        ) as s:
            final = await s.get_final_completion()
        stream = await c.chat.completions.create(model=model, messages=_user(), stream=True)
        raw = [ch async for ch in stream]
    answer = answer_for(PROMPT)
    assert r.choices[0].message.content == answer
    # OpenRouter repeats role on every delta: openai-py concatenates it (pre-existing, wire-formats 1.4).
    assert final.choices[0].message.content == answer and final.choices[0].message.role.startswith(
        "assistant"
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in raw if ch.choices) == answer
    _no_reasoning(r.model_dump_json(), final.model_dump_json(), [ch.model_dump_json() for ch in raw])


@pytest.mark.parametrize("mode", MODES)
async def test_responses_sdk(start_proxy, mode):
    run = await start_proxy(config=_cfg(mode))
    kw = {"model": "o4-mini", "input": PROMPT, "reasoning": {"effort": "low", "summary": "auto"}}
    async with openai_client(run) as c:
        r = await c.responses.create(**kw)
        async with c.responses.stream(**kw) as s:
            final = await s.get_final_response()
        raw = [ev async for ev in await c.responses.create(stream=True, **kw)]
        oss = await c.responses.create(model="gpt-oss-120b", input=PROMPT)
    for resp in (r, final, oss):
        assert resp.output_text == answer_for(PROMPT)
        kinds = [i.type for i in resp.output]
        assert kinds == (["message"] if mode == "drop" else ["reasoning", "message"])
    _no_reasoning(
        r.model_dump_json(),
        final.model_dump_json(),
        oss.model_dump_json(),
        [e.model_dump_json() for e in raw],
    )


@pytest.mark.parametrize("mode", MODES)
async def test_anthropic_sdk(start_proxy, fake, mode):
    run = await start_proxy(config=_cfg(mode))
    kw = {"model": "claude-test-model", "max_tokens": 4096, "thinking": THINK, "messages": _user()}
    async with anthropic_client(run) as c:
        m = await c.messages.create(**kw)
        async with c.messages.stream(**kw) as s:
            final = await s.get_final_message()
        raw = [ev async for ev in await c.messages.create(stream=True, **kw)]
    for msg in (m, final):
        assert msg.content[-1].text == answer_for(PROMPT)
        assert [b.type for b in msg.content] == (["text"] if mode == "drop" else ["thinking", "text"])
    _no_reasoning(m.model_dump_json(), final.model_dump_json(), [e.model_dump_json() for e in raw])
    sent = fake.requests[-1].json()["thinking"]
    assert sent.get("display") == ("omitted" if mode in ("omit", "drop", "placeholder") else None)


@pytest.mark.parametrize("mode", MODES)
async def test_gemini_sdk(start_proxy, fake, mode):
    run = await start_proxy(config=_cfg(mode))
    cfg = gt.GenerateContentConfig(thinking_config=gt.ThinkingConfig(include_thoughts=True))
    async with GenaiClient(run) as g:
        r = await g.models.generate_content(model="gemini-2.5-flash", contents=PROMPT, config=cfg)
        chunks = [
            ch
            async for ch in await g.models.generate_content_stream(
                model="gemini-2.5-flash", contents=PROMPT, config=cfg
            )
        ]
    assert r.text == answer_for(PROMPT)
    assert "".join(ch.text or "" for ch in chunks) == answer_for(PROMPT)
    _no_reasoning(r.model_dump_json(), [ch.model_dump_json() for ch in chunks])
    tc = fake.requests[-1].json()["generationConfig"]["thinkingConfig"]
    # google-genai sends snake_case; seal needs the thoughts to seal them, the other modes suppress them
    assert tc.get("includeThoughts", tc.get("include_thoughts")) is (mode == "seal")
    if mode == "seal":
        sealed = [p for ch in chunks for p in ch.candidates[0].content.parts if p.thought]
        assert len(sealed) == 1 and sealed[0].text == "" and sealed[0].thought_signature.startswith(b"dgs1.")


async def test_trusted_tier_passes_reasoning(start_proxy):
    run = await start_proxy()
    async with openai_client(run, key=run.keys["tina"]) as c:
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=_user())
    assert r.choices[0].message.model_extra["reasoning_content"] == reasoning_for(PROMPT)


async def test_rule_override_wins(start_proxy):
    class Override:
        async def on_request(self, ex):
            ex.controls["redaction"] = "drop"

    run = await start_proxy()
    run.proxy.chain.request.insert(1, Override().on_request)
    async with anthropic_client(run, key=run.keys["tina"]) as c:
        m = await c.messages.create(
            model="claude-test-model", max_tokens=4096, thinking=THINK, messages=_user()
        )
    assert [b.type for b in m.content] == ["text"]


# ---------------------------------------------------------------- seal round trips in tool loops


STRICT = {"x-fake-strict": "1"}


async def test_seal_roundtrip_deepseek_chat(start_proxy, fake):
    run = await start_proxy(config=_cfg("seal"))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    async with openai_client(run) as c:
        async with c.chat.completions.stream(
            model="deepseek-reasoner", messages=_user(TOOL_PROMPT), tools=tools
        ) as s:
            final = await s.get_final_completion()
        msg = final.choices[0].message
        token = msg.model_extra["reasoning_content"]
        assert token.startswith("dgs1.") and msg.tool_calls
        history = [
            *_user(TOOL_PROMPT),
            msg.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"},
        ]
        r2 = await c.chat.completions.create(
            model="deepseek-reasoner", messages=history, tools=tools, extra_headers=STRICT
        )
    assert "sunny" in r2.choices[0].message.content
    checks = [ch for ch in fake.roundtrip_checks if ch.kind == "reasoning_content"]
    assert checks and all(ch.ok for ch in checks)


@pytest.mark.parametrize("stream", [True, False])
async def test_seal_roundtrip_inline_think(start_proxy, fake, stream):
    """Inline <think> (no reasoning parser upstream): the token rides in reasoning_content and the proxy
    puts the removed stretch back into the assistant content, byte-exact."""
    run = await start_proxy(config=_cfg("seal"))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
    kw = {"model": "qwen3-think", "messages": _user(TOOL_PROMPT), "tools": tools}
    async with openai_client(run) as c:
        if stream:
            async with c.chat.completions.stream(**kw) as s:
                msg = (await s.get_final_completion()).choices[0].message
        else:
            msg = (await c.chat.completions.create(**kw)).choices[0].message
        assert msg.model_extra["reasoning_content"].startswith("dgs1.") and msg.tool_calls
        assert not msg.content  # all of it was reasoning
        _no_reasoning(msg.model_dump_json())
        history = [
            *_user(TOOL_PROMPT),
            msg.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"},
        ]
        r2 = await c.chat.completions.create(model="qwen3-think", messages=history, tools=tools)
    assert "sunny" in r2.choices[0].message.content
    sent = fake.requests[-1].json()["messages"][1]
    assert sent["content"] == "<think>\n" + reasoning_for(TOOL_PROMPT) + "\n</think>\n\n"
    assert "reasoning_content" not in sent


async def test_seal_roundtrip_responses(start_proxy, fake):
    run = await start_proxy(config=_cfg("seal"))
    tool = {"type": "function", "name": "get_weather", "parameters": SCHEMA}
    async with openai_client(run) as c:
        async with c.responses.stream(
            model="o4-mini", input=TOOL_PROMPT, tools=[tool], reasoning={"summary": "auto"}
        ) as s:
            final = await s.get_final_response()
        rs, fc = final.output
        assert rs.encrypted_content.startswith("dgs1.") and rs.summary == []
        items = [
            {"role": "user", "content": TOOL_PROMPT},
            rs.model_dump(exclude_none=True),
            fc.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"},
        ]
        r2 = await c.responses.create(model="o4-mini", input=items, tools=[tool], extra_headers=STRICT)
    assert "sunny" in r2.output_text
    sent = fake.requests[-1].json()["input"][1]
    assert sent["summary"] and REASONING_MARKER in json.dumps(sent["summary"])  # original restored upstream
    checks = [ch for ch in fake.roundtrip_checks if ch.kind == "encrypted_content"]
    assert checks and all(ch.ok for ch in checks)


async def test_seal_roundtrip_anthropic(start_proxy, fake):
    run = await start_proxy(config=_cfg("seal"))
    kw = {
        "model": "claude-test-model",
        "max_tokens": 4096,
        "thinking": THINK,
        "tools": [{"name": "get_weather", "input_schema": SCHEMA}],
    }
    async with anthropic_client(run) as c:
        async with c.messages.stream(messages=_user(TOOL_PROMPT), **kw) as s:
            final = await s.get_final_message()
        assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
        assert final.content[0].thinking == "" and final.content[0].signature.startswith("dgs1.")
        tu = final.content[2]
        history = [
            *_user(TOOL_PROMPT),
            {"role": "assistant", "content": [b.model_dump() for b in final.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tu.id, "content": "sunny"}]},
        ]
        m2 = await c.messages.create(messages=history, extra_headers=STRICT, **kw)
    assert "sunny" in m2.content[-1].text
    checks = [ch for ch in fake.roundtrip_checks if ch.kind == "signature"]
    assert checks and all(ch.ok for ch in checks)
    sent = fake.requests[-1].json()["messages"][1]["content"][0]
    assert sent["thinking"] == reasoning_for(TOOL_PROMPT)


async def test_seal_roundtrip_gemini(start_proxy, fake):
    run = await start_proxy(config=_cfg("seal"))
    tool = gt.Tool(
        function_declarations=[
            gt.FunctionDeclaration(
                name="get_weather",
                parameters=gt.Schema(type="OBJECT", properties={"city": gt.Schema(type="STRING")}),
            )
        ]
    )
    cfg = gt.GenerateContentConfig(
        tools=[tool],
        thinking_config=gt.ThinkingConfig(include_thoughts=True),
        automatic_function_calling=gt.AutomaticFunctionCallingConfig(disable=True),
        http_options=gt.HttpOptions(headers=STRICT),
    )
    async with GenaiClient(run) as g:
        chunks = [
            ch
            async for ch in await g.models.generate_content_stream(
                model="gemini-3-pro", contents=TOOL_PROMPT, config=cfg
            )
        ]
        parts = [p for ch in chunks for p in ch.candidates[0].content.parts]
        assert not any(p.thought and p.text for p in parts)
        sealed = [p for p in parts if p.thought]
        assert len(sealed) == 1 and sealed[0].thought_signature.startswith(b"dgs1.")  # base64 on the wire
        contents = [
            gt.Content(role="user", parts=[gt.Part(text=TOOL_PROMPT)]),
            gt.Content(role="model", parts=parts),  # what the client got, sent back as the SDK encodes it
            gt.Content(
                role="user",
                parts=[gt.Part.from_function_response(name="get_weather", response={"result": "sunny"})],
            ),
        ]
        r2 = await g.models.generate_content(model="gemini-3-pro", contents=contents, config=cfg)
    assert "sunny" in r2.text
    checks = [ch for ch in fake.roundtrip_checks if ch.kind == "thoughtSignature"]
    assert checks and all(ch.ok for ch in checks)
    sent = fake.requests[-1].json()["contents"][1]["parts"]
    assert sent[0] == {"text": reasoning_for(TOOL_PROMPT), "thought": True}  # restored byte-exact upstream
    assert sent[1]["functionCall"]["name"] == "get_weather"


# ---------------------------------------------------------------- bad seal tokens: 400, dialect's shape


def _bad_tokens(context: str) -> dict[str, str]:
    ring = KeyRing(parse_keyring(KEYS))
    good = ring.seal({"reasoning_content": "x"}, context=context, now=time.time(), ttl=600)
    body = good.rsplit(".", 1)[1]
    return {
        "tampered": good[: -len(body)] + ("B" if body[0] == "A" else "A") + body[1:],
        "truncated": good[:-10],
        "expired": ring.seal({"reasoning_content": "x"}, context=context, now=time.time() - 7200, ttl=60),
        "foreign": KeyRing(parse_keyring(new_key_text("it1"))).seal(
            {"reasoning_content": "x"}, context=context, now=time.time(), ttl=600
        ),
        "other_account": ring.seal(
            {"reasoning_content": "x"}, context=context.replace("alice", "rex"), now=time.time(), ttl=600
        ),
    }


@pytest.mark.parametrize("case", ["tampered", "truncated", "expired", "foreign", "other_account"])
async def test_bad_tokens_rejected(start_proxy, fake, case):
    run = await start_proxy(config=_cfg("seal"))
    n = len(fake.requests)
    async with openai_client(run) as c:
        tok = _bad_tokens("openai_chat|alice")[case]
        with pytest.raises(openai.BadRequestError) as e:
            await c.chat.completions.create(
                model="deepseek-reasoner",
                messages=[
                    *_user(),
                    {"role": "assistant", "content": "a", "reasoning_content": tok},
                    *_user("more"),
                ],
            )
        assert e.value.code == "invalid_request"
        tok = _bad_tokens("openai_responses|alice")[case]
        with pytest.raises(openai.BadRequestError):
            await c.responses.create(
                model="o4-mini",
                input=[
                    {"role": "user", "content": "hi"},
                    {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": tok},
                ],
            )
    async with anthropic_client(run) as c:
        tok = _bad_tokens("anthropic_messages|alice")[case]
        with pytest.raises(anthropic.BadRequestError) as ae:
            await c.messages.create(
                model="claude-test-model",
                max_tokens=4096,
                thinking=THINK,
                messages=[
                    *_user(),
                    {
                        "role": "assistant",
                        "content": [
                            {"type": "thinking", "thinking": "", "signature": tok},
                            {"type": "text", "text": "a"},
                        ],
                    },
                    *_user("more"),
                ],
            )
        assert ae.value.body["error"]["type"] == "invalid_request_error"
    assert len(fake.requests) == n  # nothing reached the upstream


@pytest.mark.parametrize("case", ["tampered", "truncated", "expired", "foreign", "other_account"])
async def test_bad_gemini_seal_rejected(start_proxy, fake, case):
    """A bad token in a thought part's thoughtSignature (base64, as google-genai sends it back): 400."""
    import base64

    from google.genai import errors as genai_errors

    run = await start_proxy(config=_cfg("seal"))
    n = len(fake.requests)
    tok = _bad_tokens("gemini|alice")[case]
    part = gt.Part(text="", thought=True, thought_signature=tok.encode())
    assert base64.b64encode(tok.encode()).decode().startswith("ZGdzMS")
    contents = [
        gt.Content(role="user", parts=[gt.Part(text=PROMPT)]),
        gt.Content(role="model", parts=[part, gt.Part(text="a")]),
        gt.Content(role="user", parts=[gt.Part(text="more")]),
    ]
    async with GenaiClient(run) as g:
        with pytest.raises(genai_errors.ClientError) as e:
            await g.models.generate_content(model="gemini-2.5-flash", contents=contents)
    assert e.value.code == 400
    assert len(fake.requests) == n  # nothing reached the upstream


# ---------------------------------------------------------------- fail closed


async def test_fail_closed_on_garbage_event(start_proxy, fake, monkeypatch):
    from proxy.redact.anthropic import AnthropicStream

    def boom(self, ev):
        raise RuntimeError("bug")

    monkeypatch.setattr(AnthropicStream, "on_event", boom)
    run = await start_proxy(config=_cfg("omit"))
    async with anthropic_client(run) as c:
        with pytest.raises(anthropic.APIStatusError):
            async with c.messages.stream(
                model="claude-test-model", max_tokens=4096, thinking=THINK, messages=_user()
            ) as s:
                await s.get_final_message()


async def test_leak_withheld(start_proxy, fake):
    run = await start_proxy(config=_cfg("omit", leak={"action": "withhold", "min_words": 6}))

    class Leaky:
        def on_response(self, ex, obj):  # upstream side of redact: make the answer copy the reasoning
            for ch in obj.get("choices") or ():
                ch["message"]["content"] = "Here: " + ch["message"].get("reasoning_content", "")
            return obj

    run.proxy.chain.response.insert(0, Leaky().on_response)  # runs before redact (upstream side)
    async with openai_client(run) as c:
        with pytest.raises(openai.PermissionDeniedError):
            await c.chat.completions.create(model="deepseek-reasoner", messages=_user())


# ---------------------------------------------------------------- previous SDK majors in a subprocess


def _ensure_prev() -> None:
    ok = all((PREV / p).is_dir() for p in ("openai", "anthropic"))
    if ok:
        import re

        vers = {p.name.split("-")[0]: p.name.split("-")[1] for p in PREV.glob("*.dist-info")}
        ok = vers.get("openai", "").startswith("2.") and vers.get("anthropic", "").startswith("1.")
        del re
    if not ok:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PREV), *PREV_PINS], check=True
        )
    (PREV / ".gitignore").write_text("*\n")


@pytest.mark.parametrize("mode", ["omit", "drop", "seal"])
async def test_previous_sdk_majors(start_proxy, mode):
    _ensure_prev()
    run = await start_proxy(config=_cfg(mode))
    script = Path(__file__).with_name("prev_sdk_client.py")
    env = {**os.environ, "PYTHONPATH": str(PREV)}
    proc = await __import__("asyncio").create_subprocess_exec(
        sys.executable,
        str(script),
        run.url,
        run.key,
        PROMPT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]
    res = json.loads(out)
    assert res["versions"]["openai"].startswith("2.") and res["versions"]["anthropic"].startswith("1.")
    answer = answer_for(PROMPT)
    for key in (
        "chat_final",
        "chat_raw",
        "responses_final",
        "responses_raw",
        "anthropic_final",
        "anthropic_raw",
    ):
        assert res[key] == answer, key
    _no_reasoning(res["dump"])
