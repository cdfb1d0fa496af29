"""Streams relayed through the real proxy arrive byte-identical, however the upstream chunks them,
both when no filter touches events (plain relay) and when filters pass them through unchanged; the
usage they carry is read either way."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "wire"
CASES = {
    "/v1/chat/completions": ("chat.deepseek-reasoning_content.stream.sse", "text/event-stream"),
    "/v1/messages": ("anthropic.thinking.stream.sse", "text/event-stream"),
    "/v1/responses": ("responses.reasoning-summary.stream.sse", "text/event-stream"),
    "/v1beta/models/gemini-2.5-flash:streamGenerateContent": ("gemini.thoughts.stream.sse", "text/event-stream"),
}
ALL_PASS = {
    "redaction": {"tiers": {"trusted": "pass", "standard": "pass", "restricted": "pass"}, "default_mode": "pass"},
    "hardening": {"tiers": {"trusted": "off", "standard": "off", "restricted": "off"}, "default_profile": "off"},
}


@pytest.fixture
async def chunky_upstream():
    """Serves a fixture stream in chunks of the size the request header asks for."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        name, ctype = CASES[request.path]
        data = (FIXTURES / name).read_bytes()
        size = int(request.headers.get("x-chunk", "0")) or len(data)
        resp = web.StreamResponse(headers={"Content-Type": ctype})
        await resp.prepare(request)
        for i in range(0, len(data), size):
            await resp.write(data[i : i + size])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.mark.parametrize("config", [ALL_PASS, None], ids=["plain", "filters-pass"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 0])
async def test_streams_byte_identical(start_proxy, chunky_upstream, config, chunk):
    run = await start_proxy(config, upstream_url=chunky_upstream)
    key = run.keys["tina"]  # trusted: reasoning passes in the default config too
    async with aiohttp.ClientSession() as s:
        for path, (name, _) in CASES.items():
            body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}],
                    "contents": [{"role": "user", "parts": [{"text": "hi"}]}], "input": "hi", "max_tokens": 10}
            suffix = "?alt=sse" if "gemini" in path else ""
            async with s.post(run.url + path + suffix, json=body,
                              headers={"Authorization": f"Bearer {key}", "x-chunk": str(chunk)}) as r:
                assert r.status == 200
                got = await r.read()
            assert got == (FIXTURES / name).read_bytes(), (path, chunk)
    await run.server.stop(drain_timeout=1)
    recs = [orjson.loads(x) for x in run.access_log.read_text().splitlines()]
    assert len(recs) == len(CASES)
    for rec in recs:
        assert rec["usage"]["output"], rec  # usage read from the stream in every mode
