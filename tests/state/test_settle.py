"""Settlements off the request's path (``FaultTolerantBackend.settle``): queued without waiting, sent in
one batch per event-loop turn or riding along with the next ``apply``, bounded, counted, flushed on
close, and a concurrency slot freed even while Redis is down (fail-open)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry
from redis_server import RedisServer, free_port

from proxy.state import backend_from_url
from proxy.state.base import OK, acquire, release
from proxy.state.faults import FaultTolerantBackend, StateUnavailable

SLOT = "conc\x1facct"


def _metric(reg: CollectorRegistry, name: str, **labels: str) -> float:
    v = reg.get_sample_value(name, {"backend": "redis", **labels})
    return 0.0 if v is None else v


def _backend(url: str, reg: CollectorRegistry, **kw: object) -> tuple[FaultTolerantBackend, object]:
    primary = backend_from_url(url, namespace="st")
    return FaultTolerantBackend(primary, registry=reg, **kw), primary  # type: ignore[arg-type]


async def test_settlements_of_one_turn_go_in_one_background_batch(redis_url: str) -> None:
    reg = CollectorRegistry()
    b, primary = _backend(redis_url, reg)
    now = time.time()
    try:
        took = await b.apply([acquire(SLOT, f"r{i}", 3, 60.0) for i in range(3)], now)
        assert all(r[OK] for r in took)
        trips = primary.round_trips  # type: ignore[attr-defined]
        for i in range(3):
            assert b.settle([release(SLOT, f"r{i}")], now) is None  # returns at once
        assert primary.round_trips == trips  # type: ignore[attr-defined]  # nothing sent yet
        await b.drain_settlements()
        assert primary.round_trips == trips + 1  # type: ignore[attr-defined]  # one batch for the three
        assert _metric(reg, "distillguard_state_settlement_batches_total") == 1
        assert _metric(reg, "distillguard_state_settlements_total", outcome="sent") == 3
        again = await b.apply([acquire(SLOT, f"s{i}", 3, 60.0) for i in range(3)], now)
        assert all(r[OK] for r in again)  # the three slots were free again
    finally:
        await b.close()


async def test_a_settlement_rides_along_with_the_next_apply(redis_url: str) -> None:
    reg = CollectorRegistry()
    b, primary = _backend(redis_url, reg)
    now = time.time()
    try:
        assert (await b.apply([acquire(SLOT, "r1", 1, 60.0)], now))[0][OK]
        trips = primary.round_trips  # type: ignore[attr-defined]
        b.settle([release(SLOT, "r1")], now)
        res = await b.apply([acquire(SLOT, "r2", 1, 60.0)], now)  # same turn: the release goes first
        assert len(res) == 1 and res[0][OK]
        await b.drain_settlements()
        assert primary.round_trips == trips + 1  # type: ignore[attr-defined]  # no batch of its own
        assert _metric(reg, "distillguard_state_settlement_batches_total") == 0
        assert _metric(reg, "distillguard_state_settlements_total", outcome="sent") == 1
    finally:
        await b.close()


async def test_a_slot_is_freed_while_redis_is_down_fail_open() -> None:
    """Redis down: the admission took the slot on the local fallback; its settlement frees it there
    at once, so the next request is admitted (no leak until a TTL)."""
    reg = CollectorRegistry()
    b, _ = _backend(f"redis://127.0.0.1:{free_port()}/0", reg, timeout=0.2, failures=1, open_for=60.0)
    now = time.time()
    try:
        assert (await b.apply([acquire(SLOT, "r1", 1, 600.0)], now))[0][OK]
        assert b.degraded
        assert not (await b.apply([acquire(SLOT, "r2", 1, 600.0)], now))[0][OK]  # the slot is held
        b.settle([release(SLOT, "r1")], now)
        await b.drain_settlements()
        assert _metric(reg, "distillguard_state_settlements_total", outcome="local") == 1
        assert (await b.apply([acquire(SLOT, "r3", 1, 600.0)], now))[0][OK]  # freed: not leaked
    finally:
        await b.close()


async def test_fail_closed_counts_a_lost_settlement_and_never_raises() -> None:
    reg = CollectorRegistry()
    b, _ = _backend(f"redis://127.0.0.1:{free_port()}/0", reg, on_failure="closed", timeout=0.2, failures=1)
    now = time.time()
    try:
        with pytest.raises(StateUnavailable):
            await b.apply([acquire(SLOT, "r1", 1, 600.0)], now)
        b.settle([release(SLOT, "r0")], now)  # e.g. a lease taken before Redis went down: its TTL frees it
        await b.drain_settlements()
        assert _metric(reg, "distillguard_state_settlements_total", outcome="failed") == 1
    finally:
        await b.close()


async def test_the_queue_is_bounded_and_close_sends_what_is_left(redis_server: RedisServer, redis_url: str) -> None:
    reg = CollectorRegistry()
    b, _ = _backend(redis_url, reg, max_settling=2)
    now = time.time()
    assert all(r[OK] for r in await b.apply([acquire(SLOT, f"r{i}", 5, 60.0) for i in range(3)], now))
    b.settle([release(SLOT, "r0"), release(SLOT, "r1")], now)
    b.settle([release(SLOT, "r2")], now)  # over the bound: dropped (its lease expires by TTL)
    assert _metric(reg, "distillguard_state_settlements_total", outcome="dropped") == 1
    await b.close()  # sends the queued two before closing
    assert _metric(reg, "distillguard_state_settlements_total", outcome="sent") == 2
    assert redis_server.command("ZCARD", "{st}\x1f" + SLOT) == "1"  # only the dropped one's lease is left


async def test_a_settlement_queued_while_an_apply_waits_is_not_taken_from_its_results(redis_url: str) -> None:
    import asyncio

    reg = CollectorRegistry()
    b, _ = _backend(redis_url, reg)
    now = time.time()
    try:
        assert (await b.apply([acquire(SLOT, "r1", 5, 60.0)], now))[0][OK]
        pending = asyncio.ensure_future(b.apply([acquire(SLOT, "r2", 5, 60.0)], now))
        await asyncio.sleep(0)  # the call is on its way, with no settlement riding along
        b.settle([release(SLOT, "r1")], now)
        res = await pending
        assert len(res) == 1 and res[0][OK]
        await b.drain_settlements()
        assert _metric(reg, "distillguard_state_settlements_total", outcome="sent") == 1
    finally:
        await b.close()
