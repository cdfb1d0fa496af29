"""Run by test_redaction_sdk in a subprocess with PYTHONPATH=.sdk-prev (openai 2.x, anthropic 1.x).

Drives the proxy with raw iteration and the accumulating helpers; prints a JSON summary.
"""

import asyncio
import json
import sys

import anthropic
import openai


async def main(url: str, key: str, prompt: str) -> dict:
    res: dict = {"versions": {"openai": openai.__version__, "anthropic": anthropic.__version__}}
    dump: list[str] = []
    msgs = [{"role": "user", "content": prompt}]
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as c:
        async with c.chat.completions.stream(model="deepseek-reasoner", messages=msgs) as s:
            f = await s.get_final_completion()
        res["chat_final"] = f.choices[0].message.content
        dump.append(f.model_dump_json())
        chunks = [
            ch
            async for ch in await c.chat.completions.create(
                model="openrouter-claude", messages=msgs, stream=True
            )
        ]
        res["chat_raw"] = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        dump += [ch.model_dump_json() for ch in chunks]
        kw = {"model": "o4-mini", "input": prompt, "reasoning": {"summary": "auto"}}
        async with c.responses.stream(**kw) as s:
            r = await s.get_final_response()
        res["responses_final"] = r.output_text
        dump.append(r.model_dump_json())
        evs = [e async for e in await c.responses.create(stream=True, **kw)]
        res["responses_raw"] = "".join(e.delta for e in evs if e.type == "response.output_text.delta")
        dump += [e.model_dump_json() for e in evs]
    async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as a:
        kw = {
            "model": "claude-test-model",
            "max_tokens": 4096,
            "messages": msgs,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
        }
        async with a.messages.stream(**kw) as s:
            m = await s.get_final_message()
        res["anthropic_final"] = m.content[-1].text
        dump.append(m.model_dump_json())
        evs = [e async for e in await a.messages.create(stream=True, **kw)]
        res["anthropic_raw"] = "".join(
            e.delta.text for e in evs if e.type == "content_block_delta" and e.delta.type == "text_delta"
        )
        dump += [e.model_dump_json() for e in evs]
    res["dump"] = dump
    return res


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
