"""The relay's cheap paths keep every behaviour: requests past the router, usage read after the response.

With identity on and no filter that looks at responses (the benchmark's baseline), proxied requests skip
aiohttp's router and a buffered body's usage is read after the response is sent; the access log line,
the metrics and the request id must be exactly what the full path gives.
"""

from __future__ import annotations

import aiohttp
import orjson

from proxy.fake import answer_for

BASELINE = {  # identity on, no other filters: no response hooks, no on_done hooks
    "redaction": {"tiers": {"trusted": "pass", "standard": "pass", "restricted": "pass"}, "default_mode": "pass"},
    "hardening": {"tiers": {"trusted": "off", "standard": "off", "restricted": "off"}, "default_profile": "off"},
}
PROMPT = "Which is larger, 9.11 or 9.8?"
BODY = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": PROMPT}]}


async def test_buffered_usage_model_and_request_id_reach_log_and_metrics(start_proxy):
    run = await start_proxy(BASELINE)
    chain = run.proxy.chain
    assert not chain.response and not chain.done  # the deferred-usage path is the one under test
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/chat/completions", json=BODY,
                          headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status == 200
            rid = r.headers["x-request-id"]
            answer = await r.json()
        async with s.get(run.url + "/metrics") as m:
            metrics = await m.text()
    assert answer["choices"][0]["message"]["content"] == answer_for(PROMPT)
    await run.server.stop(drain_timeout=1)  # flushes the access log
    rec = orjson.loads(run.access_log.read_text().splitlines()[-1])
    assert rec["request_id"] == rid and rec["status"] == 200 and rec["stream"] is False
    assert rec["model"] == "deepseek-reasoner" and rec["account"] == "alice"
    assert rec["usage"]["input"] == answer["usage"]["prompt_tokens"]
    assert rec["usage"]["output"] == answer["usage"]["completion_tokens"]
    assert rec["bytes_out"] > 0 and rec["duration_ms"] is not None
    assert 'distillguard_requests_total{dialect="openai_chat",route="fake",status="200",tier="standard"} 1.0' in metrics
    assert run.proxy.in_flight == 0


async def test_operations_endpoints_and_expect_continue_still_routed(start_proxy):
    run = await start_proxy(BASELINE)
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/healthz") as r:
            assert r.status == 200 and (await r.json()) == {"status": "ok"}
        async with s.get(run.url + "/readyz") as r:
            assert r.status == 200
        # A client that waits for "100 Continue" before sending its body still gets one.
        async with s.post(run.url + "/v1/chat/completions", json=BODY, expect100=True,
                          headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status == 200
            assert (await r.json())["choices"][0]["message"]["content"] == answer_for(PROMPT)


async def test_local_reply_sent_logged_and_counted(start_proxy):
    run = await start_proxy(BASELINE)
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/chat/completions", json=BODY,
                          headers={"Authorization": "Bearer dg-not-a-key"}) as r:
            assert r.status == 401
            rid = r.headers["x-request-id"]
            err = await r.json()
    assert err["error"]["code"] == "unauthenticated"
    await run.server.stop(drain_timeout=1)
    rec = orjson.loads(run.access_log.read_text().splitlines()[-1])
    assert rec["request_id"] == rid and rec["status"] == 401 and rec["error"] == "unauthenticated"
