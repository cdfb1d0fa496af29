"""Rate shaping through the real proxy, seen by the official SDKs: 429s they retry, headers before the
first byte, delay queues, concurrency slots that never leak."""

from __future__ import annotations

import asyncio

import aiohttp
import anthropic
import openai
import pytest

from .conftest import GENAI_WARNING, anthropic_client, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

MSG = [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}]


def rpm(rate: str, burst: int, **extra) -> dict:
    return {"limits": [{"name": "rpm", "scope": ["account"], "requests": {"rate": rate, "burst": burst}, **extra}]}


async def test_429_in_each_shape_with_headers(start_proxy, fake):
    run = await start_proxy(rpm("6/m", 2))
    async with openai_client(run) as c:
        for _ in range(2):
            raw = await c.chat.completions.with_raw_response.create(model="deepseek-reasoner", messages=MSG)
            assert "x-ratelimit-limit-requests" in raw.headers and "ratelimit-policy" in raw.headers
        with pytest.raises(openai.RateLimitError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    err = e.value
    assert err.code == "rate_limited"
    h = err.response.headers
    assert int(h["retry-after"]) >= 1 and int(h["retry-after-ms"]) > 0
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert '"rpm"' in h["ratelimit-policy"]
    async with anthropic_client(run) as c:
        with pytest.raises(anthropic.RateLimitError) as ea:
            await c.messages.create(model="claude-test-model", max_tokens=10, messages=MSG)
    assert ea.value.body["error"]["type"] == "rate_limit_error"
    assert ea.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert len(fake.requests) == 2  # rejected requests never reached the upstream


async def test_sdk_retries_a_429_after_retry_after(start_proxy, fake):
    # 120/m = one every 0.5 s: the SDK's retry (it waits retry-after-ms) gets through.
    run = await start_proxy(rpm("120/m", 1))
    async with openai_client(run, max_retries=2) as c:
        await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert r.choices[0].message.content
    assert len(fake.requests) == 2


async def test_limit_headers_before_first_streamed_byte(start_proxy):
    run = await start_proxy(rpm("60/m", 5))
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/chat/completions",
                          json={"model": "deepseek-reasoner", "messages": MSG, "stream": True},
                          headers={"Authorization": f"Bearer {run.key}", "x-fake-event-delay-ms": "200"}) as r:
            # Headers are here while the body is still being generated upstream.
            assert r.headers["x-ratelimit-limit-requests"] == "60"
            assert r.headers["x-ratelimit-remaining-requests"] == "4"
            assert not r.content.at_eof()
            await r.read()


async def test_delay_queue_shapes_instead_of_rejecting(start_proxy, fake):
    run = await start_proxy(rpm("600/m", 1, delay={"max": "2s", "queue": 8}))
    async with openai_client(run) as c:
        t0 = asyncio.get_running_loop().time()
        results = await asyncio.gather(*[
            c.chat.completions.create(model="deepseek-reasoner", messages=MSG) for _ in range(4)
        ])
        elapsed = asyncio.get_running_loop().time() - t0
    assert all(r.choices[0].message.content for r in results)
    assert elapsed >= 0.25  # 4 requests at 10/s, burst 1: the last waited about 0.3 s
    assert len(fake.requests) == 4


async def test_concurrency_slot_released_after_disconnect(start_proxy):
    run = await start_proxy({"limits": [{"name": "conc", "scope": ["account"], "concurrency": {"max": 1}}]})
    hdr = {"Authorization": f"Bearer {run.key}"}
    body = {"model": "deepseek-reasoner", "messages": MSG, "stream": True}
    async with aiohttp.ClientSession() as s:
        held = await s.post(run.url + "/v1/chat/completions", json=body,
                            headers={**hdr, "x-fake-event-delay-ms": "100", "x-fake-chunks": "50"})
        await held.content.readline()
        async with s.post(run.url + "/v1/chat/completions", json=body, headers=hdr) as r:
            assert r.status == 429
        held.close()  # the client goes away mid-stream
        for _ in range(100):
            if run.proxy.in_flight == 0:
                break
            await asyncio.sleep(0.02)
        async with s.post(run.url + "/v1/chat/completions", json=body, headers=hdr) as r:
            assert r.status == 200
            await r.read()


async def test_concurrency_slot_released_after_upstream_error(start_proxy):
    run = await start_proxy({"limits": [{"name": "conc", "scope": ["account"], "concurrency": {"max": 1}}]})
    async with openai_client(run, default_headers={"x-fake-fail": "reset-mid-stream=2"}) as c:
        for _ in range(3):
            stream = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, stream=True)
            with pytest.raises(openai.APIError):
                async for _ in stream:
                    pass
    async with openai_client(run) as c:
        assert (await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)).choices


async def test_shadow_limit_never_rejects(start_proxy, fake):
    run = await start_proxy(rpm("1/m", 1, mode="shadow"))
    async with openai_client(run) as c:
        for _ in range(3):
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert len(fake.requests) == 3
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/metrics") as r:
            text = await r.text()
    assert "distillguard_shape" in text


async def test_stream_cut_at_token_budget_ends_cleanly(start_proxy):
    run = await start_proxy()

    class Budget:
        """In production the budget comes from a rule action; here it is set on every request."""

        name = "budget"

        async def on_request(self, ex):
            ex.controls["cut_tokens"] = 20
            return None

    from proxy.filters.identify import IdentifyFilter
    from proxy.filters.shape import ShapeFilter
    from proxy.filters.validate import ValidateFilter

    filters = [IdentifyFilter(run.proxy.config.identity, run.proxy.current_accounts), ValidateFilter(),
               Budget(), ShapeFilter([])]
    run2 = await start_proxy(filters=filters)
    async with anthropic_client(run2, default_headers={"x-fake-chunks": "40"}) as c:
        with pytest.raises(anthropic.APIStatusError):
            async with c.messages.stream(model="claude-test-model", max_tokens=4096, messages=MSG,
                                         thinking={"type": "enabled", "budget_tokens": 2048}) as s:
                await s.get_final_message()
