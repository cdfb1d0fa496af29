"""Timeouts, the circuit breaker, fail-open fallback, fail-closed refusal and recovery."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from redis_server import RedisServer, free_port

from proxy.clock import FakeClock
from proxy.state import backend_from_url
from proxy.state.base import OK, VALUE, Op, Result, gcra
from proxy.state.faults import CLOSED, OPEN, FaultTolerantBackend, StateUnavailable

T0 = 1_700_000_000.0
OP = gcra("g", 10.0, 2.0)


class Flaky:
    """A primary that fails while ``down`` and counts the calls that reached it."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0

    async def apply(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        self.calls += 1
        if self.down:
            raise ConnectionError("connection refused")
        return [(True, 0.0, 0.0, 0.0, 0.5) for _ in ops]  # recognisable: the fallback never says 0.5

    async def sweep(self, now: float) -> int:
        return 0

    async def close(self) -> None:
        pass


def _metric(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, {"backend": "redis", **labels})
    return 0.0 if v is None else v


async def test_fail_open_falls_back_opens_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    clock, reg, primary = FakeClock(), CollectorRegistry(), Flaky()
    b = FaultTolerantBackend(primary, failures=2, open_for=5.0, clock=clock, registry=reg)
    assert (await b.apply([OP], T0))[0][VALUE] == 0.5
    primary.down = True
    r1 = await b.apply([OP], T0)  # failure 1: served locally
    r2 = await b.apply([OP], T0)  # failure 2: breaker opens
    assert [r1[0][OK], r2[0][OK], r1[0][VALUE]] == [True, True, 1.0]
    assert b.breaker.state == OPEN and primary.calls == 3
    assert not (await b.apply([OP], T0))[0][OK]  # local limits still hold (burst 2, per process)
    assert primary.calls == 3  # open: the store is not even tried
    assert _metric(reg, "distillguard_state_up") == 0
    assert _metric(reg, "distillguard_state_fallback_ops_total") == 3
    assert _metric(reg, "distillguard_state_failures_total", reason="error") == 2
    assert _metric(reg, "distillguard_state_breaker_opened_total") == 1
    assert "FALLING BACK to local in-memory state" in caplog.text
    clock.advance(5.0)
    await b.apply([OP], T0)  # the probe fails: open again, still local
    assert primary.calls == 4 and b.breaker.state == OPEN
    primary.down = False
    clock.advance(5.0)
    assert (await b.apply([OP], T0))[0][VALUE] == 0.5  # the probe succeeds: recovered
    assert b.breaker.state == CLOSED and not b.degraded
    assert _metric(reg, "distillguard_state_up") == 1
    assert "recovered" in caplog.text
    assert len(b.fallback) == 0  # local state dropped: the store is the truth again


async def test_fail_closed_refuses() -> None:
    clock, reg, primary = FakeClock(), CollectorRegistry(), Flaky()
    primary.down = True
    b = FaultTolerantBackend(primary, on_failure="closed", failures=1, clock=clock, registry=reg)
    for _ in range(3):
        with pytest.raises(StateUnavailable):
            await b.apply([OP], T0)
    assert primary.calls == 1
    assert _metric(reg, "distillguard_state_refused_total") == 3
    primary.down = False
    clock.advance(5.0)
    assert (await b.apply([OP], T0))[0][VALUE] == 0.5


async def test_one_probe_at_a_time_in_half_open() -> None:
    clock, primary = FakeClock(), Flaky()
    gate = asyncio.Event()
    orig = primary.apply

    async def slow(ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        await gate.wait()
        return await orig(ops, now, all_or_nothing=all_or_nothing)

    primary.down = True
    b = FaultTolerantBackend(primary, failures=1, open_for=1.0, clock=clock, timeout=5.0)
    await b.apply([OP], T0)
    primary.down = False
    primary.apply = slow  # type: ignore[method-assign]
    clock.advance(1.0)
    probe = asyncio.ensure_future(b.apply([OP], T0))
    await asyncio.sleep(0)
    assert (await b.apply([OP], T0))[0][VALUE] == 1.0  # while the probe is out: local
    gate.set()
    assert (await probe)[0][VALUE] == 0.5
    assert b.breaker.state == CLOSED


async def test_a_hung_store_costs_at_most_the_timeout() -> None:
    # A socket that listens but never accepts: connections complete in the backlog, nothing answers.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        port = hung.getsockname()[1]
        primary = backend_from_url(f"redis://127.0.0.1:{port}/0", timeout=1.0)
        b = FaultTolerantBackend(primary, timeout=0.1, failures=3, open_for=60.0)
        op = gcra("g", 10.0, 100.0)
        took = []
        for _ in range(5):
            t = time.monotonic()
            assert (await b.apply([op], T0))[0][OK]
            took.append(time.monotonic() - t)
        assert max(took[:3]) < 0.3  # each of the failures that open the breaker waits the timeout
        assert max(took[3:]) < 0.01  # then nothing
        await b.close()


async def test_dead_then_restarted_redis(tmp_path: Path) -> None:
    port = free_port()
    primary = backend_from_url(f"redis://127.0.0.1:{port}/0", namespace="r")
    b = FaultTolerantBackend(primary, timeout=0.2, failures=1, open_for=0.2)
    now = time.time()
    assert (await b.apply([OP], now))[0][OK]  # refused connection: local
    assert b.degraded
    server = RedisServer(tmp_path, port=port).start()
    try:
        await asyncio.sleep(0.25)
        assert (await b.apply([OP], now))[0][OK]
        assert not b.degraded
        assert server.command("EXISTS", "{r}\x1fg") == "1"
        server.kill()
        await b.apply([OP], now)
        assert b.degraded
        server.start()
        await asyncio.sleep(0.25)
        await b.apply([OP], now)
        assert not b.degraded
    finally:
        server.stop()
        await b.close()
