"""Load clients of ``bench_proxy.py``, each run in its own process (``python bench_clients.py ROLE --key K ...``)
so that the client's CPU is not the proxy's: ttfb (sequential streamed requests), streams (paced streams),
hold (slow streams held open until told to close) and count (exactly ``--n`` requests). Each prints one JSON
line with its result.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from bench_proxy import med, rotated


def _client_session(limit: int) -> Any:
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=aiohttp.ClientTimeout(total=None),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def client_ttfb(args: argparse.Namespace) -> dict[str, Any]:
    """Sequential streamed requests, targets interleaved; seconds from send to the first body bytes."""
    body = common.chat_request(stream=True)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    targets = [tuple(x.split("=", 1)) for x in args.urls.split(",")]
    sessions = {name: _client_session(1) for name, _ in targets}
    times: dict[str, list[float]] = {name: [] for name, _ in targets}
    try:
        for i in range(args.n + 10):
            for name, url in rotated(targets, i):
                t0 = time.perf_counter()
                async with sessions[name].post(url, data=body, headers=headers) as r:
                    first = await r.content.readany()
                    dt = time.perf_counter() - t0
                    rest = await r.read()
                if r.status != 200 or not first or not (first + rest).endswith(b"[DONE]\n\n"):
                    raise RuntimeError(f"{name}: status {r.status}, bad stream")
                if i >= 10:  # the first ten are warm-up
                    times[name].append(dt)
    finally:
        for s in sessions.values():
            await s.close()
    return {"median": {k: med(v) for k, v in times.items()}, "n": args.n}


async def _one_stream(session: Any, url: str, body: bytes, headers: dict[str, str],
                      opened: asyncio.Event | None = None) -> int:
    events = 0
    last = b""
    try:
        async with session.post(url, data=body, headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"status {r.status}: {(await r.read())[:200]!r}")
            async for chunk in r.content.iter_any():
                events += (last + chunk[:1]).count(b"\n\n") + chunk.count(b"\n\n")
                last = chunk[-1:]
                if opened is not None and events and not opened.is_set():
                    opened.set()
    finally:
        if opened is not None:
            opened.set()  # a stream that failed must not hold up the others
    return events


async def client_streams(args: argparse.Namespace) -> dict[str, Any]:
    """``--streams`` concurrent streams, their starts spread over one event interval; counts events."""
    body = common.chat_request(stream=True)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    session = _client_session(0)

    async def one(i: int) -> int:
        await asyncio.sleep(args.interval * i / args.streams)
        return await _one_stream(session, args.url, body, headers)

    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(300):
            results = await asyncio.gather(*(one(i) for i in range(args.streams)), return_exceptions=True)
    finally:
        await session.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    return {"events": sum(r for r in results if isinstance(r, int)), "errors": len(errors),
            "error": repr(errors[0]) if errors else None, "seconds": time.perf_counter() - t0}


async def client_hold(args: argparse.Namespace) -> dict[str, Any]:
    """Open ``--streams`` slow streams in batches, print ``OPEN n`` once each got an event, hold them until
    a line arrives on stdin (or 300 s pass), then close them all."""
    body = common.chat_request(stream=True)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    session = _client_session(0)
    tasks: list[asyncio.Task[int]] = []
    try:
        async with asyncio.timeout(240):
            for start in range(0, args.streams, 250):
                batch = []
                for _ in range(start, min(args.streams, start + 250)):
                    ev = asyncio.Event()
                    tasks.append(asyncio.ensure_future(_one_stream(session, args.url, body, headers, ev)))
                    batch.append(ev)
                await asyncio.gather(*(e.wait() for e in batch))
        failed = [t for t in tasks if t.done()]
        if failed:
            err = failed[0].exception() if not failed[0].cancelled() else None
            print(f"{len(failed)} streams failed or ended early, e.g. {err!r}", file=sys.stderr)
        print(f"OPEN {len(tasks) - len(failed)}", flush=True)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(300):
            await loop.run_in_executor(None, sys.stdin.readline)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
    return {"held": len(tasks)}


async def client_count(args: argparse.Namespace) -> dict[str, Any]:
    """Exactly ``--n`` phase-1 requests over ``--streams`` keep-alive connections (a fixed count, so the
    work counted under callgrind does not depend on how fast the server is)."""
    body = common.chat_request()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.key}"}
    session = _client_session(args.streams)
    left = args.n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            async with session.post(args.url, data=body, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"status {r.status}")

    try:
        await asyncio.gather(*(worker() for _ in range(args.streams)))
    finally:
        await session.close()
    return {"requests": args.n}


CLIENTS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "client-ttfb": client_ttfb, "client-streams": client_streams, "client-hold": client_hold,
    "client-count": client_count,
}


def run_client(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog=f"bench_proxy.py {argv[0]}")
    p.add_argument("--key", required=True)
    p.add_argument("--url")
    p.add_argument("--urls")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--streams", type=int, default=100)
    p.add_argument("--interval", type=float, default=0.005)
    args = p.parse_args(argv[1:])
    import uvloop

    result = uvloop.run(CLIENTS[argv[0]](args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    run_client(sys.argv[1:])
