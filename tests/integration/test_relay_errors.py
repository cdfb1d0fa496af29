"""Bad input, broken upstreams, disconnects and shutdown: clean answers in each dialect's shape, no crash."""

from __future__ import annotations

import asyncio
import gzip

import aiohttp
import anthropic
import openai
import orjson
import pytest
from google.genai import errors as genai_errors

from proxy.fake import answer_for

from .conftest import GENAI_WARNING, GenaiClient, anthropic_client, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

PROMPT = "Which is larger, 9.11 or 9.8?"
MSG = [{"role": "user", "content": PROMPT}]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _post(url: str, body: bytes | dict, headers: dict | None = None) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=data, headers=headers or {}) as r:
            raw = await r.read()
            return r.status, dict(r.headers), orjson.loads(raw) if raw else {}


# ---------------------------------------------------------------- request body problems


async def test_malformed_json_is_400_in_each_shape(start_proxy):
    run = await start_proxy()
    auth = {"Authorization": f"Bearer {run.key}"}
    status, _, body = await _post(run.url + "/v1/chat/completions", b"{not json", auth)
    assert status == 400 and body["error"]["code"] == "invalid_request"
    status, _, body = await _post(run.url + "/v1/messages", b"[1,2]", {"x-api-key": run.key})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    status, _, body = await _post(run.url + "/v1beta/models/g:generateContent", b"\xff\xfe\x00garbage",
                                  {"x-goog-api-key": run.key})
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"


async def test_body_over_limit_is_413_with_sdk_exception(start_proxy, fake):
    run = await start_proxy({"server": {"max_body_size": "64KiB"}})
    big = "x" * 70_000
    async with openai_client(run) as c:
        with pytest.raises(openai.APIStatusError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": big}])
    assert e.value.status_code == 413 and e.value.code == "body_too_large"
    async with anthropic_client(run) as c:
        with pytest.raises(anthropic.APIStatusError) as ea:
            await c.messages.create(model="claude-test-model", max_tokens=10,
                                    messages=[{"role": "user", "content": big}])
    assert ea.value.status_code == 413
    assert not any(big[:100] in r.body.decode(errors="ignore") for r in fake.requests)


async def test_chunked_body_over_limit_is_413(start_proxy):
    run = await start_proxy({"server": {"max_body_size": "1KiB"}})

    async def gen():
        for _ in range(10):
            yield b"x" * 500

    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/chat/completions", data=gen(),
                          headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status == 413
            assert (await r.json())["error"]["code"] == "body_too_large"


async def test_oversized_headers_get_a_clean_error(start_proxy):
    run = await start_proxy()
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + "/v1/chat/completions", data=b"{}",
                          headers={"Authorization": f"Bearer {run.key}", "x-big": "a" * 40_000}) as r:
            assert r.status in (400, 431)
    # The proxy still serves the next request.
    async with openai_client(run) as c:
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert r.choices[0].message.content == answer_for(PROMPT)


# ---------------------------------------------------------------- upstream problems


async def test_upstream_refused_is_502_in_each_shape(start_proxy):
    run = await start_proxy(upstream_url=f"http://127.0.0.1:{_free_port()}")
    async with openai_client(run) as c:
        with pytest.raises(openai.InternalServerError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_unavailable"
    async with anthropic_client(run) as c:
        with pytest.raises(anthropic.InternalServerError) as ea:
            await c.messages.create(model="claude-test-model", max_tokens=10, messages=MSG)
    assert ea.value.status_code == 502
    async with GenaiClient(run) as g:
        with pytest.raises(genai_errors.ServerError) as eg:
            await g.models.generate_content(model="gemini-2.5-flash", contents=PROMPT)
    assert eg.value.code == 502


async def test_upstream_reset_before_headers_is_502(start_proxy):
    run = await start_proxy()
    async with openai_client(run, default_headers={"x-fake-fail": "reset-before-headers"}) as c:
        with pytest.raises(openai.InternalServerError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert e.value.status_code == 502


def _with_timeouts(run, **timeouts):
    import dataclasses

    spec = run.proxy.upstreams.specs["fake"]
    fast = dataclasses.replace(spec, timeouts=dataclasses.replace(spec.timeouts, **timeouts))
    run.proxy.upstreams.specs["fake"] = fast
    run.proxy.config = dataclasses.replace(run.proxy.config, upstreams=(fast,))


async def test_upstream_first_byte_timeout_is_504(start_proxy):
    run = await start_proxy()
    _with_timeouts(run, first_byte=0.3)
    async with anthropic_client(run, default_headers={"x-fake-fail": "hang"}) as c:
        with pytest.raises(anthropic.APIStatusError) as e:
            await c.messages.create(model="claude-test-model", max_tokens=10, messages=MSG)
    assert e.value.status_code == 504
    assert e.value.body["error"]["type"] == "timeout_error"


async def test_upstream_error_passes_through_unchanged(start_proxy):
    run = await start_proxy()
    async with openai_client(run, default_headers={"x-fake-status": "429"}) as c:
        with pytest.raises(openai.RateLimitError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert e.value.code == "rate_limit_exceeded"  # the upstream's code, not ours


async def test_reset_mid_stream_ends_with_dialect_error_event(start_proxy):
    run = await start_proxy()
    async with openai_client(run, default_headers={"x-fake-fail": "reset-mid-stream=3"}) as c:
        stream = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, stream=True)
        with pytest.raises(openai.APIError) as e:
            async for _ in stream:
                pass
    assert "upstream" in str(e.value.message)
    async with anthropic_client(run, default_headers={"x-fake-fail": "reset-mid-stream=3"}) as c:
        with pytest.raises(anthropic.APIStatusError):
            async with c.messages.stream(model="claude-test-model", max_tokens=10, messages=MSG) as s:
                await s.get_final_message()


async def test_stall_mid_stream_hits_idle_timeout(start_proxy):
    run = await start_proxy()
    _with_timeouts(run, idle=0.3)
    async with openai_client(run, default_headers={"x-fake-fail": "stall-mid-stream=2"}) as c:
        stream = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, stream=True)
        with pytest.raises(openai.APIError) as e:
            async for _ in stream:
                pass
    assert e.value.code == "upstream_timeout"


async def test_gzip_upstream_body_is_decoded(start_proxy):
    run = await start_proxy()
    async with openai_client(run, default_headers={"x-fake-gzip": "1"}) as c:
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert r.choices[0].message.content == answer_for(PROMPT)


async def test_gzip_request_body_is_accepted(start_proxy, fake):
    run = await start_proxy()
    raw = orjson.dumps({"model": "deepseek-reasoner", "messages": MSG})
    status, _, body = await _post(
        run.url + "/v1/chat/completions", gzip.compress(raw),
        {"Authorization": f"Bearer {run.key}", "Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert status == 200, body
    assert list(fake.requests)[-1].body == raw
    assert "content-encoding" not in list(fake.requests)[-1].headers


async def test_unknown_path_relayed_untouched(start_proxy):
    run = await start_proxy()
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/healthz-of-upstream/../healthz",
                         headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status in (200, 404)
        async with s.get(run.url + "/v1/models", headers={"Authorization": f"Bearer {run.key}"}) as r:
            # The fake has no /v1/models: its own 404 comes back as it was sent.
            assert r.status in (404, 405)
            assert r.headers.get("x-distillguard-error") is None


# ---------------------------------------------------------------- disconnects and shutdown


async def test_client_disconnect_cancels_upstream(start_proxy, fake):
    run = await start_proxy()
    async with aiohttp.ClientSession() as s:
        resp = await s.post(
            run.url + "/v1/chat/completions",
            json={"model": "deepseek-reasoner", "messages": MSG, "stream": True},
            headers={"Authorization": f"Bearer {run.key}", "x-fake-event-delay-ms": "50", "x-fake-chunks": "200"},
        )
        await resp.content.readline()
        before = fake.stats.cancelled
        resp.close()  # the client goes away mid-stream
    for _ in range(100):
        if fake.stats.cancelled > before and run.proxy.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.stats.cancelled == before + 1
    assert run.proxy.in_flight == 0


async def test_client_disconnect_while_waiting_for_headers(start_proxy, fake):
    run = await start_proxy()
    async with aiohttp.ClientSession() as s:
        task = asyncio.ensure_future(s.post(
            run.url + "/v1/chat/completions", json={"model": "deepseek-reasoner", "messages": MSG},
            headers={"Authorization": f"Bearer {run.key}", "x-fake-delay-ms": "3000"},
        ))
        for _ in range(100):
            if fake.stats.in_flight:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for _ in range(100):
        if fake.stats.in_flight == 0 and run.proxy.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert fake.stats.in_flight == 0 and fake.stats.cancelled >= 1
    assert run.proxy.in_flight == 0


async def test_graceful_shutdown_drains_stream_in_flight(start_proxy):
    run = await start_proxy()
    async with openai_client(run, default_headers={"x-fake-event-delay-ms": "20", "x-fake-chunks": "20"}) as c:
        stream = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, stream=True)
        stopping = asyncio.ensure_future(run.server.stop(drain_timeout=10))
        await asyncio.sleep(0.05)
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        await stopping
    assert text.startswith(answer_for(PROMPT)) and text.endswith("More detail 20.")  # complete, not cut
    # New connections are refused once the drain started.
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as s:
            await s.get(run.url + "/healthz")


# ---------------------------------------------------------------- trusted proxies


async def test_forwarded_for_only_from_trusted_proxies(start_proxy, fake):
    untrusted = await start_proxy()
    status, _, _ = await _post(untrusted.url + "/v1/chat/completions", {"model": "deepseek-reasoner",
                               "messages": MSG}, {"Authorization": f"Bearer {untrusted.key}",
                                                 "X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    assert list(fake.requests)[-1].headers["x-forwarded-for"] == "127.0.0.1"

    trusted = await start_proxy({"identity": {"trusted_proxies": ["127.0.0.0/8"]}})
    status, _, _ = await _post(trusted.url + "/v1/chat/completions", {"model": "deepseek-reasoner",
                               "messages": MSG}, {"Authorization": f"Bearer {trusted.key}",
                                                 "X-Forwarded-For": "203.0.113.9"})
    assert status == 200
    assert list(fake.requests)[-1].headers["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    await trusted.server.stop(drain_timeout=1)
    rec = orjson.loads(trusted.access_log.read_text().splitlines()[-1])
    assert rec["client_ip"] == "203.0.113.9"


async def test_account_header_honoured_only_from_trusted_proxies(start_proxy, fake):
    cfg = {"identity": {"account_header": "x-auth-account", "trusted_proxies": ["10.0.0.0/8"]}}
    run = await start_proxy(cfg)
    # The peer (127.0.0.1) is not trusted: the header is ignored and no key means 401.
    status, _, _ = await _post(run.url + "/v1/chat/completions", {"model": "m", "messages": MSG},
                               {"x-auth-account": "tina"})
    assert status == 401
    trusted = await start_proxy({"identity": {"account_header": "x-auth-account",
                                              "trusted_proxies": ["127.0.0.1/32"]}})
    status, _, _ = await _post(trusted.url + "/v1/chat/completions",
                               {"model": "deepseek-reasoner", "messages": MSG}, {"x-auth-account": "tina"})
    assert status == 200
    assert "x-auth-account" not in list(fake.requests)[-1].headers
    await trusted.server.stop(drain_timeout=1)
    rec = orjson.loads(trusted.access_log.read_text().splitlines()[-1])
    assert rec["account"] == "tina" and rec["tier"] == "trusted"


# ---------------------------------------------------------------- operations


async def test_health_ready_metrics(start_proxy):
    run = await start_proxy()
    async with openai_client(run) as c:
        await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/healthz") as r:
            assert r.status == 200
        async with s.get(run.url + "/readyz") as r:
            assert r.status == 200
        async with s.get(run.url + "/metrics") as r:
            text = await r.text()
    assert 'distillguard_requests_total{dialect="openai_chat",route="fake",status="200",tier="standard"} 1.0' in text
    assert "distillguard_proxy_overhead_seconds_bucket" in text
    assert "distillguard_in_flight_requests 0.0" in text
    assert 'distillguard_accounts_reloads_total{result="failed"} 0.0' in text
    assert 'distillguard_bytes_total{direction="in"}' in text


async def test_readyz_fails_when_upstream_down(start_proxy):
    run = await start_proxy(upstream_url=f"http://127.0.0.1:{_free_port()}")
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/readyz") as r:
            assert r.status == 503
            assert "unreachable" in (await r.text())


async def test_accounts_hot_reload(start_proxy):
    from .conftest import write_accounts

    run = await start_proxy()
    new_keys = write_accounts(run.accounts_path, (("zoe", "standard", None),))
    assert run.proxy.accounts_watcher.check()
    async with openai_client(run, key=new_keys["zoe"]) as c:
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert r.choices[0].message.content
    async with openai_client(run) as c:  # alice is gone
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    run.accounts_path.write_text("accounts: [{id: broken, tier: gold}]\n")
    assert not run.proxy.accounts_watcher.check()
    async with openai_client(run, key=new_keys["zoe"]) as c:  # last good store kept
        await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)


# ---------------------------------------------------------------- raw-socket abuse


async def _raw_exchange(url: str, payload: bytes, pause_after: int | None = None, pause: float = 0.0) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        if pause_after is None:
            writer.write(payload)
        else:
            writer.write(payload[:pause_after])
            await writer.drain()
            await asyncio.sleep(pause)
            try:
                writer.write(payload[pause_after:])
            except ConnectionError:
                pass
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


async def test_non_utf8_header_and_garbage_request_line(start_proxy):
    run = await start_proxy()
    body = orjson.dumps({"model": "deepseek-reasoner", "messages": MSG})
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + run.key.encode() +
           b"\r\nX-Odd: \xff\xfe\x80\r\nContent-Type: application/json\r\nContent-Length: " +
           str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    answer = await _raw_exchange(run.url, req)
    assert answer.startswith(b"HTTP/1.1 200") or answer.startswith(b"HTTP/1.1 400")
    answer = await _raw_exchange(run.url, b"\x00\x01GARBAGE \xff\r\n\r\n")
    assert answer.split(b" ", 2)[1] == b"400"
    async with openai_client(run) as c:  # still serving
        assert (await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)).choices


async def test_slow_body_gets_a_clean_error(start_proxy, fake):
    run = await start_proxy({"server": {"read_timeout": "300ms"}})
    body = orjson.dumps({"model": "deepseek-reasoner", "messages": MSG})
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + run.key.encode() +
           b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\nConnection: close\r\n\r\n" + body)
    n_before = len(fake.requests)
    answer = await _raw_exchange(run.url, req, pause_after=len(req) - 10, pause=1.0)
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"did not arrive in time" in answer
    assert len(fake.requests) == n_before  # nothing half-read was forwarded
