"""Alerts are batched to the webhook from a background task; the request path only appends to a queue."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.policy.alerts import AlertSink


async def test_webhook_batches_and_survives_failures() -> None:
    got: list[dict] = []
    fail = {"n": 1}

    async def hook(request: web.Request) -> web.Response:
        if fail["n"]:
            fail["n"] -= 1
            return web.Response(status=500)
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    sink = AlertSink(str(server.make_url("/hook")), batch=3, interval=0.05)
    await sink.start()
    try:
        sink.submit([{"rule": "r", "n": 1}])  # first post fails: dropped and counted, never raised
        await asyncio.sleep(0.15)
        assert sink.failed == 1 and got == []
        sink.submit([{"rule": "r", "n": i} for i in range(2, 7)])  # 5 alerts -> batches of 3 and 2
        await asyncio.sleep(0.15)
    finally:
        await sink.stop()
        await server.close()
    assert [len(b["alerts"]) for b in got] == [3, 2] and sink.sent == 5
