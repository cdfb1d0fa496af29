"""Delay queues for concurrency and token limits: wait for a free slot (woken by its release) or for
the reservation to fit, FIFO within a flow, round-robin across accounts, bounded, deadlines, cancelled
waiters leaving and leaking nothing. All on the fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from proxy.exchange import Exchange
from proxy.filters.shape import ShapeFilter

MakeEx = Callable[..., Exchange]
MakeFilter = Callable[..., ShapeFilter]

# one request in flight per model, shared by every account: waiters of several accounts meet
CONC = {"name": "model-conc", "scope": ["model"], "concurrency": {"max": 1}, "delay": {"max": "10s", "queue": 8}}
# 1000 output tokens per minute (one token per 0.06 s)
TPM = {"name": "tpm", "scope": ["account"], "tokens": {"limit": 1000, "window": "1m", "count": "output"},
       "delay": {"max": "10s", "queue": 4}}


async def _start(f: ShapeFilter, ex: Exchange, log: list[str], tag: str) -> asyncio.Task[Any]:
    async def run() -> Any:
        r = await f.on_request(ex)
        log.append(tag if r is None else f"{tag}:{r.status}")
        return r

    t = asyncio.ensure_future(run())
    await asyncio.sleep(0)
    return t


def _leases(f: ShapeFilter) -> int:
    return sum(len(v) for v in f.backend._d.values() if isinstance(v, dict))  # type: ignore[attr-defined]


async def test_concurrency_waiter_gets_the_slot_when_it_is_released(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([CONC])
    log: list[str] = []
    first = make_ex(account="a")
    await _start(f, first, log, "a0")
    second = make_ex(account="b")
    t = await _start(f, second, log, "b0")
    await timer.settle()
    assert log == ["a0"] and metric("distillguard_shape_queue_depth", limit="model-conc") == 1
    await f.on_done(first)  # the release wakes the queue: no clock time passes
    await timer.settle()
    assert log == ["a0", "b0"] and t.result() is None
    assert second.reply_headers == {}  # a concurrency limit shows no rate headers
    assert metric("distillguard_shape_delayed_total", limit="model-conc") == 1
    assert metric("distillguard_shape_delay_seconds_sum", limit="model-conc") == 0.0
    await f.on_done(second)
    assert _leases(f) == 0


async def test_concurrency_queue_is_round_robin_across_accounts(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    f = make_filter([CONC])
    log: list[str] = []
    exs: dict[str, Exchange] = {}
    for tag, acct in [("h0", "heavy"), ("h1", "heavy"), ("h2", "heavy"), ("h3", "heavy"), ("l1", "light"),
                      ("o1", "other")]:
        exs[tag] = make_ex(account=acct)
        await _start(f, exs[tag], log, tag)
    await timer.settle()
    for _ in range(5):  # each finishing request hands its slot to the next in turn
        await f.on_done(exs[log[-1]])
        await timer.settle()
    assert log == ["h0", "h1", "l1", "o1", "h2", "h3"]
    await f.on_done(exs["h3"])
    assert _leases(f) == 0


async def test_concurrency_waiter_rejected_at_max_delay_and_queue_bounded(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([{**CONC, "delay": {"max": "2s", "queue": 2}}])
    log: list[str] = []
    holder = make_ex(account="a")
    await _start(f, holder, log, "a0")
    w1 = await _start(f, make_ex(account="b"), log, "b1")
    await _start(f, make_ex(account="c"), log, "c1")
    t3 = await _start(f, make_ex(account="d"), log, "d1")  # queue of 2 full, no flow to displace
    await timer.settle()
    assert log == ["a0", "d1:429"]
    assert t3.result().headers["Retry-After"] == "1"
    await timer.advance(2.01)  # nobody released within the max delay
    assert log == ["a0", "d1:429", "b1:429", "c1:429"]
    assert w1.result().status == 429
    assert metric("distillguard_shape_queue_depth", limit="model-conc") == 0
    await f.on_done(holder)
    assert _leases(f) == 0


async def test_concurrency_slot_freed_by_ttl_is_found_by_polling(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    # a lease held by a request that never finished (another replica crashed) expires by its TTL
    f = make_filter([{**CONC, "concurrency": {"max": 1, "ttl": "1s"}, "delay": {"max": "5s", "queue": 2}}])
    log: list[str] = []
    await _start(f, make_ex(account="a"), log, "a0")  # never finished
    await _start(f, make_ex(account="b"), log, "b1")
    await timer.advance(0.9)
    assert log == ["a0"]
    await timer.advance(0.2)
    assert log == ["a0", "b1"]


async def test_cancelled_concurrency_waiter_leaves_no_lease(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([CONC])
    log: list[str] = []
    holder = make_ex(account="a")
    await _start(f, holder, log, "a0")
    gone = make_ex(account="b")
    t = await _start(f, gone, log, "b1")
    await timer.settle()
    t.cancel()  # client disconnect while waiting
    await timer.settle()
    assert metric("distillguard_shape_queue_depth", limit="model-conc") == 0
    await f.on_done(gone)  # the app runs on_done in its finally
    await f.on_done(holder)
    await timer.settle()
    assert _leases(f) == 0
    ex = make_ex(account="c")
    assert await f.on_request(ex) is None  # the slot is free, nobody holds a ghost lease
    await f.on_done(ex)


async def test_token_reservation_waits_until_it_fits(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any, metric: Any
) -> None:
    f = make_filter([TPM])
    log: list[str] = []
    await _start(f, make_ex(max_tokens=800), log, "big")
    # 300 more do not fit now: 100 tokens must drain first, 100 x 0.06 s = 6 s (<= 10 s: wait)
    t = await _start(f, make_ex(max_tokens=300), log, "next")
    await timer.advance(5.9)
    assert log == ["big"]
    await timer.advance(0.2)
    assert log == ["big", "next"] and t.result() is None
    assert metric("distillguard_shape_delay_seconds_sum", limit="tpm") == pytest.approx(6.0)


async def test_token_reservation_over_max_delay_is_rejected_at_once(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    f = make_filter([{**TPM, "delay": {"max": "2s", "queue": 4}}])
    log: list[str] = []
    await _start(f, make_ex(max_tokens=800), log, "big")
    t = await _start(f, make_ex(max_tokens=300), log, "next")  # needs 6 s > 2 s
    await timer.settle()
    assert log == ["big", "next:429"]
    assert t.result().headers["Retry-After"] == "6"


async def test_token_waiters_queue_behind_each_other(
    make_filter: MakeFilter, make_ex: MakeEx, timer: Any
) -> None:
    f = make_filter([TPM])
    log: list[str] = []
    await _start(f, make_ex(max_tokens=1000), log, "all")
    await _start(f, make_ex(max_tokens=50), log, "w1")  # fits after 3 s
    await _start(f, make_ex(max_tokens=50), log, "w2")  # then after 6 s
    await _start(f, make_ex(max_tokens=100), log, "w3")  # estimate 3 + 3 + 6 = 12 s > 10 s: refused
    await timer.settle()
    assert log == ["all", "w3:429"]
    await timer.advance(3.0)
    assert log == ["all", "w3:429", "w1"]
    await timer.advance(3.0)
    assert log == ["all", "w3:429", "w1", "w2"]
