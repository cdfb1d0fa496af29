"""Rules and limits in one Redis call per request (``proxy.state.joint``, ``proxy.shaping.remote``).

The judge and shape filters are built by ``build_filters`` from one config (rules, limits, ``state:``),
as in the real app, and driven through a chain of the two: the first request couples them, every
later one costs one script call, counted on the server (``INFO commandstats``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from redis_server import RedisServer, free_port, info_stats

from proxy.accounts import Account
from proxy.app import ProxyApp
from proxy.clock import FakeClock
from proxy.config import config_from_dict
from proxy.dialects import DIALECTS
from proxy.errors import Reply
from proxy.exchange import Exchange
from proxy.pipeline import Chain
from proxy.shaping.request import ShapeState
from proxy.state.base import REMAINING, gcra

T0 = 1_767_225_600.0
THROTTLE = """format: 1
rules:
  - id: burst
    when: "true"
    key: account
    aggregates: {n: {kind: count, window: 1h}}
    threshold: "agg.n >= 4"
    actions: [{do: throttle, factor: 0.5, for: 1h}]
"""
BLOCK = """format: 1
rules:
  - id: burst
    when: "true"
    key: account
    aggregates: {n: {kind: count, window: 1h}}
    threshold: "agg.n >= 3"
    actions: [{do: block, for: 1h}]
"""
NOTHING = """format: 1
rules:
  - id: quiet
    when: "request.max_tokens > 100000"
    key: account
    actions: [{do: tag, tag: big}]
"""
RPS = [{"name": "rps", "scope": ["account"], "requests": {"rate": "1/s", "burst": 6}}]
INFLIGHT = [{"name": "inflight", "scope": ["account"], "concurrency": {"max": 3, "ttl": "10m"}}]


class Proxy:
    """The judge and shape filters of one app, as a chain."""

    def __init__(self, tmp_path: Path, url: str, clock: Any, rules: str | None, limits: list[Any],
                 **state: Any) -> None:
        sections: dict[str, Any] = {
            "server": {"listen": "127.0.0.1:0"},
            "upstreams": [{"name": "u", "url": "http://127.0.0.1:9"}],
            "state": {"url": url, "namespace": "joint", **state},
        }
        if rules is not None:
            path = tmp_path / f"rules-{abs(hash(rules))}.yaml"
            path.write_text(rules)
            sections["rules"] = {"paths": [str(path)]}
        if limits:
            sections["limits"] = limits
        self.app = ProxyApp(config_from_dict(sections, source="<test>"), clock=clock)
        self.filters = [f for f in self.app.filters if getattr(f, "name", "") in ("judge", "shape")]
        self.chain = Chain(self.filters)
        self.clock = clock

    def filter(self, name: str) -> Any:
        return next((f for f in self.filters if f.name == name), None)

    async def send(self, account: str = "acct") -> tuple[Exchange, Reply | None]:
        """One request up to the upstream (or the local reply); ``done`` finishes it."""
        body = {"model": "o3", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 50}
        ex = Exchange(path="/v1/chat/completions", body=orjson.dumps(body), dialect=DIALECTS["openai_chat"],
                      client_ip="198.51.100.7")
        ex.account = Account(id=account, tier="free")
        reply = await self.chain.run_request(ex)
        ex.status = reply.status if reply is not None else 200
        return ex, reply

    async def done(self, ex: Exchange) -> None:
        await self.chain.run_done(ex)
        drain = getattr(getattr(self.filter("shape"), "backend", None), "drain_settlements", None)
        if drain is not None:  # settlements go off the request's path: wait for them to land
            await drain()

    async def request(self, account: str = "acct") -> int:
        ex, _ = await self.send(account)
        await self.done(ex)
        return ex.status

    async def close(self) -> None:
        for f in reversed(self.filters):
            await f.stop()
            if f.name == "shape":
                await f.backend.close()


def script_calls(server: RedisServer) -> int:
    stats = info_stats(server)
    return int(sum(stats.get(c, {}).get("calls", 0) for c in ("evalsha", "eval")))


async def test_one_script_call_per_request_with_rules_and_limits(
    tmp_path: Path, redis_url: str, redis_server: RedisServer
) -> None:
    clock = FakeClock(T0)
    p = Proxy(tmp_path, redis_url, clock, NOTHING, RPS)
    try:
        judge = p.filter("judge")
        assert judge.joint is not None  # coupled when build_filters made the chain
        assert await p.request() == 200  # loads the combined script (NOSCRIPT, then EVAL)
        assert await p.request() == 200
        await judge.joint.flush()
        await judge.engine.store.flush()
        redis_server.command("CONFIG", "RESETSTAT")
        for _ in range(5):
            clock.advance(1.0)
            assert await p.request() == 200
        assert script_calls(redis_server) == 5
        assert judge.joint.calls == 7  # every request, the first one included, was one combined call
        clock.advance(10.0)
        assert [await p.request() for _ in range(7)] == [200] * 6 + [429]  # burst 6
        reloads = judge.engine.store.primary.reloads
        redis_server.command("SCRIPT", "FLUSH")
        clock.advance(10.0)
        assert await p.request() == 200  # NOSCRIPT: reloaded with EVAL, same call
        assert judge.engine.store.primary.reloads == reloads + 1
    finally:
        await p.close()


async def remaining(p: Proxy, ex: Exchange, i: int = 0) -> float:
    """Units left in limit ``i``'s bucket of the request's plan (a peek: nothing taken)."""
    st = ex.state["shape"]
    if st.fast:  # admitted by the memory fast path, which keeps no plan: plan again (nothing is applied)
        st = ShapeState(st.shaper)
        st.shaper._plan(ex, st)
    cl, key, _ = st.plan[i]
    judge = p.filter("judge")
    if judge.joint is not None:
        await judge.joint.flush(p.clock.now())  # the corrections queued so far
    out = await p.filter("shape").backend.apply([gcra(key, cl.interval, cl.capacity, 1.0, commit=False)],
                                                p.clock.now())
    return float(out[0][REMAINING])


async def scripted(p: Proxy, n: int = 14, step: float = 0.5) -> tuple[list[int], list[float], dict[str, int]]:
    """``n`` requests ``step`` s apart: their statuses, the bucket left after each, corrections sent."""
    statuses, left = [], []
    try:
        for _ in range(n):
            ex, _ = await p.send()
            await p.done(ex)
            statuses.append(ex.status)
            left.append(round(await remaining(p, ex), 9))
            p.clock.advance(step)
    finally:
        await p.close()
    joint = p.filter("judge").joint
    return statuses, left, dict(joint.corrections) if joint is not None else {}


async def test_throttle_gives_the_same_admissions_on_redis_as_in_memory(tmp_path: Path, redis_url: str) -> None:
    """From its 4th request the account is throttled to half (each request costs two units): decided
    by that request itself (on Redis: charged by a correction after the call), then in force (on
    Redis: applied inside the call). Every admission and every bucket level is the same on both."""
    mem = await scripted(Proxy(tmp_path, "memory://", FakeClock(T0), THROTTLE, RPS))
    red = await scripted(Proxy(tmp_path, redis_url, FakeClock(T0), THROTTLE, RPS))
    unthrottled = await scripted(Proxy(tmp_path, "memory://", FakeClock(T0), NOTHING, RPS))
    assert red[:2] == mem[:2]
    assert 429 in mem[0] and mem[0] != unthrottled[0]
    assert red[2] == {"sent": 1, "failed": 0, "dropped": 0}  # the 4th request's extra charge, once


async def test_block_in_force_takes_nothing_and_a_new_block_gives_everything_back(
    tmp_path: Path, redis_url: str, redis_server: RedisServer
) -> None:
    """The 3rd request trips a block: on Redis its admission and its lease were taken in the call and
    are given back with the next one (or the background flush); later requests, blocked by the block
    in force, take nothing at all. No lease leaks; the request bucket ends as in memory."""
    levels = []
    for url in ("memory://", redis_url):
        p = Proxy(tmp_path, url, FakeClock(T0), BLOCK, RPS + INFLIGHT)
        try:
            held = [await p.send() for _ in range(2)]  # in flight: two leases of three
            assert [r is None for _, r in held] == [True, True]
            ex3, r3 = await p.send()
            assert r3 is not None and r3.status == 403
            await p.done(ex3)
            if url != "memory://":
                judge = p.filter("judge")
                assert judge.joint is not None and judge.joint.corrections["sent"] == 0
                lease_key = ex3.state["shape"].plan[1][1]
                await judge.joint.flush(p.clock.now())
                assert judge.joint.corrections["sent"] == 2  # one refund, one release
                assert redis_server.command("ZCARD", "{joint}\x1f" + lease_key) == "2"
            ex4, r4 = await p.send()
            assert r4 is not None and r4.status == 403
            await p.done(ex4)
            for ex, _ in held:
                await p.done(ex)
            if url != "memory://":
                assert redis_server.command("EXISTS", "{joint}\x1f" + lease_key) == "0"
                assert p.filter("judge").joint.corrections["sent"] == 2  # the block in force took nothing
            levels.append(await remaining(p, held[0][0]))
        finally:
            await p.close()
    assert levels[0] == levels[1] == 3.0  # burst 6, two admitted, one more peeked


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_redis_killed_mid_run_then_back(tmp_path: Path, mode: str) -> None:
    """Killed: fail-open runs rules and limits on local state (the burst still holds, per process),
    without a second try at Redis for the limits; fail-closed answers 503. Restarted: the next
    request after the breaker's pause is one combined call again."""
    server = RedisServer(tmp_path / "redis", port=free_port()).start()
    clock = FakeClock(T0)
    p = Proxy(tmp_path, server.url, clock, NOTHING, RPS, on_failure=mode, timeout="200ms",
              breaker={"failures": 1, "open_for": "5s"})
    try:
        assert [await p.request() for _ in range(2)] == [200, 200]
        judge, shape = p.filter("judge"), p.filter("shape")
        assert judge.joint is not None
        calls = judge.joint.calls
        server.kill()
        statuses = [await p.request() for _ in range(8)]
        if mode == "open":
            assert statuses == [200] * 6 + [429] * 2  # a fresh local bucket of 6
            assert shape.backend.degraded and judge.engine.store.degraded
        else:
            assert statuses == [503] * 8
        assert judge.joint.calls == calls + 1  # the first failed; then the breaker is open
        assert judge.engine.store.breaker is shape.backend.breaker
        server.start()
        clock.advance(6.0)
        assert await p.request() == 200
        assert judge.joint.calls == calls + 2
        assert not shape.backend.degraded and not judge.engine.store.degraded
    finally:
        await p.close()
        server.stop()


@pytest.mark.parametrize(("rules", "limits"), [(NOTHING, []), (None, RPS)], ids=["rules-only", "limits-only"])
async def test_rules_alone_or_limits_alone_stay_one_call(
    tmp_path: Path, redis_url: str, redis_server: RedisServer, rules: str | None, limits: list[Any]
) -> None:
    clock = FakeClock(T0)
    p = Proxy(tmp_path, redis_url, clock, rules, limits)
    try:
        await p.request()  # loads the script
        judge = p.filter("judge")
        if judge is not None:
            await judge.engine.store.flush()
        redis_server.command("CONFIG", "RESETSTAT")
        for _ in range(5):
            clock.advance(1.0)
            assert await p.request() == 200
        assert script_calls(redis_server) == 5
        assert judge is None or judge.joint is None
    finally:
        await p.close()


async def test_over_the_limit_waits_in_the_delay_queue(tmp_path: Path, redis_url: str) -> None:
    """A prepared request over a limit that may delay goes on in the fair queue as on the shape
    filter's own path (the queue retries its op on Redis at the decided throttle)."""
    import asyncio

    from proxy.clock import SYSTEM_CLOCK

    limits = [{"name": "rps", "scope": ["account"], "requests": {"rate": "20/s", "burst": 1},
               "delay": {"max": "2s", "queue": 8}}]
    p = Proxy(tmp_path, redis_url, SYSTEM_CLOCK, NOTHING, limits)
    try:
        await p.request()
        await asyncio.sleep(0.1)
        assert p.filter("judge").joint is not None
        calls = p.filter("judge").joint.calls
        sent = await asyncio.gather(*(p.send() for _ in range(3)))
        assert [r for _, r in sent] == [None, None, None]
        assert sorted(ex.waited > 0 for ex, _ in sent) == [False, True, True]
        assert p.filter("judge").joint.calls == calls + 3
        for ex, _ in sent:
            await p.done(ex)
    finally:
        await p.close()


async def test_a_failed_call_is_not_retried_for_the_limits(tmp_path: Path) -> None:
    """Fail-open with the breaker still closed after one failure: the limits of the request whose
    combined call failed go straight to local state (a dead Redis costs one timeout, not two)."""
    server = RedisServer(tmp_path / "redis", port=free_port()).start()
    p = Proxy(tmp_path, server.url, FakeClock(T0), NOTHING, RPS, breaker={"failures": 3, "open_for": "5s"})
    try:
        assert [await p.request() for _ in range(2)] == [200, 200]
        shape = p.filter("shape")
        tried = []
        real = shape.backend.primary.apply

        async def counting(*a: Any, **kw: Any) -> Any:
            tried.append(a)
            return await real(*a, **kw)

        shape.backend.primary.apply = counting
        server.kill()
        assert await p.request() == 200
        assert shape.backend.breaker.failures == 1 and shape.backend.breaker.state == "closed"
        assert tried == [] and shape.backend.degraded
    finally:
        await p.close()
        server.stop()
