"""Delay queues: nginx-style delay before reject, FIFO within a flow, round-robin across accounts,
bounded length, deadlines, and cancelled waiters leaving at once. All on the fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from proxy.exchange import Exchange
from proxy.filters.shape import ShapeFilter

MakeEx = Callable[..., Exchange]
MakeFilter = Callable[..., ShapeFilter]

# One request per second, burst 1; a shared per-model key so several accounts meet in one queue.
SHARED = {"name": "model-rps", "scope": ["model"], "requests": {"rate": "1/s", "burst": 1},
          "delay": {"max": "10s", "queue": 8}}


async def _start(f: ShapeFilter, ex: Exchange, log: list[str], tag: str) -> asyncio.Task[Any]:
    async def run() -> Any:
        r = await f.on_request(ex)
        log.append(tag if r is None else f"{tag}:429")
        return r

    t = asyncio.ensure_future(run())
    await asyncio.sleep(0)
    return t


async def test_delayed_requests_are_admitted_in_order_at_the_rate(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([SHARED])
    log: list[str] = []
    tasks = [await _start(f, make_ex(), log, f"r{i}") for i in range(4)]
    await timer.settle()
    assert log == ["r0"]
    await timer.advance(1.0)
    assert log == ["r0", "r1"]
    await timer.advance(2.0)
    assert log == ["r0", "r1", "r2", "r3"]
    for t in tasks:
        assert t.result() is None
    assert metric("distillguard_shape_delayed_total", limit="model-rps") == 3
    assert metric("distillguard_shape_delay_seconds_sum", limit="model-rps") == pytest.approx(6.0)
    assert metric("distillguard_shape_queue_depth", limit="model-rps") == 0


async def test_round_robin_across_accounts(make_filter: MakeFilter, make_ex: MakeEx, timer: Any) -> None:
    f = make_filter([SHARED])
    log: list[str] = []
    await _start(f, make_ex(account="heavy"), log, "h0")  # admitted at once
    for i in range(1, 6):  # a flood from one account queues up
        await _start(f, make_ex(account="heavy"), log, f"h{i}")
    await _start(f, make_ex(account="light"), log, "l1")
    await _start(f, make_ex(account="other"), log, "o1")
    await timer.advance(8.0)
    # the light accounts are served within the first turns, not after the whole flood
    assert log[:5] == ["h0", "h1", "l1", "o1", "h2"]
    assert sorted(log) == sorted(["h0", "h1", "h2", "h3", "h4", "h5", "l1", "o1"])


async def test_over_max_delay_is_rejected_with_retry_after(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([{**SHARED, "delay": {"max": "2s", "queue": 8}}])
    log: list[str] = []
    await _start(f, make_ex(), log, "a")
    await _start(f, make_ex(), log, "b")  # waits 1 s
    await _start(f, make_ex(), log, "c")  # waits 2 s
    t = await _start(f, make_ex(), log, "d")  # would wait 3 s > 2 s: rejected at once
    await timer.settle()
    assert log == ["a", "d:429"]
    assert t.result().headers["Retry-After"] == "1"
    await timer.advance(2.0)
    assert log == ["a", "d:429", "b", "c"]
    assert metric("distillguard_shape_rejected_total", limit="model-rps", mode="enforce") == 1


async def test_queue_length_is_bounded_and_a_flood_yields_places(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    f = make_filter([{**SHARED, "delay": {"max": "100s", "queue": 3}}])
    log: list[str] = []
    await _start(f, make_ex(account="h"), log, "h0")
    for i in range(1, 5):
        await _start(f, make_ex(account="h"), log, f"h{i}")
    await timer.settle()
    assert log == ["h0", "h4:429"]  # 3 waiting: h1..h3; h4 found the queue full
    await _start(f, make_ex(account="l"), log, "l1")  # displaces the newest waiter of the flood
    await timer.settle()
    assert log == ["h0", "h4:429", "h3:429"]
    await timer.advance(3.0)
    assert log[3:] == ["h1", "l1", "h2"]


async def test_cancelled_waiter_leaves_and_frees_its_place(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([{**SHARED, "delay": {"max": "100s", "queue": 2}}])
    log: list[str] = []
    await _start(f, make_ex(account="a"), log, "a0")
    t1 = await _start(f, make_ex(account="a"), log, "a1")
    await _start(f, make_ex(account="a"), log, "a2")
    await timer.settle()
    assert metric("distillguard_shape_queue_depth", limit="model-rps") == 2
    t1.cancel()  # the client went away
    await timer.settle()
    assert metric("distillguard_shape_queue_depth", limit="model-rps") == 1
    await _start(f, make_ex(account="a"), log, "a3")  # its place is free again
    await timer.advance(2.0)
    assert log == ["a0", "a2", "a3"]
    assert t1.cancelled()


async def test_waiter_rejected_at_its_deadline(make_filter: MakeFilter, make_ex: MakeEx, timer: Any,
                                               clock: Any) -> None:
    # fairness can push a waiter past its estimate: it is refused at its deadline, never held longer
    f = make_filter([{**SHARED, "delay": {"max": "2s", "queue": 8}}])
    log: list[str] = []
    await _start(f, make_ex(account="a"), log, "a0")
    await _start(f, make_ex(account="a"), log, "a1")  # expected at 1 s
    await _start(f, make_ex(account="a"), log, "a2")  # expected at 2 s
    await _start(f, make_ex(account="b"), log, "b1")  # round-robin: served before a2, at 2 s
    await _start(f, make_ex(account="c"), log, "c1")  # estimate 3 s > 2 s: rejected at once
    await timer.advance(1.5)
    assert log == ["a0", "c1:429", "a1"]
    t0 = clock.now()
    await timer.advance(3.0)
    assert log == ["a0", "c1:429", "a1", "b1", "a2:429"]
    assert clock.now() - t0 == pytest.approx(3.0)


async def test_close_releases_waiters(make_filter: MakeFilter, make_ex: MakeEx, timer: Any) -> None:
    f = make_filter([SHARED])
    log: list[str] = []
    await _start(f, make_ex(), log, "a")
    t = await _start(f, make_ex(), log, "b")
    await timer.settle()
    await f.stop()
    await timer.settle()
    assert t.done() and log == ["a", "b:429"]


async def test_newcomers_do_not_overtake_waiters(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    f = make_filter([SHARED])
    log: list[str] = []
    await _start(f, make_ex(account="a"), log, "a0")
    await _start(f, make_ex(account="a"), log, "a1")  # waits for the slot at 1 s
    await timer.settle()
    # the dispatcher is asleep until 1 s; a newcomer arriving at 1 s must queue behind a1
    timer.clock.advance(1.0)
    await _start(f, make_ex(account="b"), log, "b1")
    await timer.advance(0.0)
    await timer.advance(1.0)
    assert log == ["a0", "a1", "b1"]
