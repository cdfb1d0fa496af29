"""Slow and stalled clients: bounded time and memory, the upstream released, the proxy still serving."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson
from aiohttp import web

from .conftest import openai_client

MSG = [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}]


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether the peer closes the connection within ``seconds`` (whatever it sends before that)."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def test_slowloris_headers_are_cut_at_read_timeout(start_proxy, fake):
    run = await start_proxy({"server": {"read_timeout": "400ms"}})
    n_before = len(fake.requests)
    reader, writer = await asyncio.open_connection(*_host_port(run.url))
    t0 = time.monotonic()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()

    async def trickle() -> None:  # one more header byte every 100 ms, never the blank line
        try:
            for _ in range(100):
                await asyncio.sleep(0.1)
                writer.write(b"X")
                await writer.drain()
        except ConnectionError:
            pass

    dripping = asyncio.create_task(trickle())
    try:
        assert await _closed_within(reader, 5.0)
    finally:
        dripping.cancel()
        writer.close()
    assert time.monotonic() - t0 < 3.0
    assert len(fake.requests) == n_before  # nothing half-read went upstream
    async with openai_client(run) as c:  # and the proxy still serves
        assert (await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)).choices


class _FloodingUpstream:
    """An upstream that streams large SSE events as fast as it may, and notes when it was let go."""

    EVENT = b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": {"content": "x" * 16000}}]}) + b"\n\n"

    def __init__(self) -> None:
        self.sent = 0
        self.released = asyncio.Event()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        try:
            for _ in range(100_000):
                await resp.write(self.EVENT)
                self.sent += len(self.EVENT)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.released.set()
        return resp

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def test_client_that_stops_reading_is_dropped_and_upstream_released(start_proxy):
    up = _FloodingUpstream()
    await up.start()
    try:
        run = await start_proxy({"upstreams": [{"name": "fake", "url": up.url, "api_key": "k",
                                                "timeouts": {"connect": "2s", "first_byte": "5s",
                                                             "idle": "500ms"}}]})
        body = orjson.dumps({"model": "m", "messages": MSG, "stream": True})
        req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + run.key.encode() +
               b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
               b"\r\n\r\n" + body)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, _host_port(run.url))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(req)
        await writer.drain()
        head = await asyncio.wait_for(reader.read(200), 5)
        assert head.startswith(b"HTTP/1.1 200")
        # Stop reading. The proxy's write buffer fills, its writes stall; after `idle` without progress it
        # drops the client and closes the upstream response, which ends the upstream's handler.
        t0 = time.monotonic()
        await asyncio.wait_for(up.released.wait(), 10)
        assert time.monotonic() - t0 < 5.0
        for _ in range(100):  # the request finishes on the proxy side too
            if run.proxy.in_flight == 0:
                break
            await asyncio.sleep(0.05)
        assert run.proxy.in_flight == 0
        assert await _closed_within(reader, 5.0)
        writer.close()
        # Memory stayed bounded: the proxy read far less than the upstream could have sent.
        assert up.sent < 64 * 1024 * 1024
        run.proxy.access_log.flush()
        line = orjson.loads(run.access_log.read_text().splitlines()[-1])
        assert line["error"] == "client_timeout" and line["client_gone"] is True
        async with openai_client(run) as c:  # still serving (through the same flooding route: a 200 head)
            raw = await c.chat.completions.with_raw_response.create(model="m", messages=MSG, stream=True)
            assert raw.http_response.status_code == 200
            await raw.http_response.aclose()
    finally:
        await up.close()
