"""Output pacing: the relay awaits ``ex.state["shape"].pace()`` per batch; the streamed rate stays
within 5 % of the configured tokens per second, per request (``pace_tps``) or shared by a scope."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.exchange import Event, Exchange
from proxy.filters.shape import ShapeFilter

MakeEx = Callable[..., Exchange]
MakeFilter = Callable[..., ShapeFilter]


def chunk(text: str) -> Event:
    return Event(orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}))


async def relay(f: ShapeFilter, ex: Exchange, chunks: list[str], clock: Any) -> tuple[int, float]:
    """What forward.py does per batch: run on_event, await pacing, write. Returns (tokens, seconds)."""
    t0 = clock.now()
    tokens = 0
    for text in chunks:
        out = f.on_event(ex, chunk(text))
        await ex.state["shape"].pace()
        tokens += sum((len(orjson.loads(e.data)["choices"][0]["delta"]["content"]) + 3) // 4 for e in out)
    return tokens, clock.now() - t0


async def drive(timer: Any, *tasks: asyncio.Task[Any]) -> None:
    while not all(t.done() for t in tasks):
        await timer.advance(0.05)


def random_chunks(rng: random.Random, n: int) -> list[str]:
    return ["y" * rng.choice((1, 4, 8, 16, 40)) for _ in range(n)]


async def test_per_request_pace_within_5_percent(make_filter: MakeFilter, make_ex: MakeEx, timer: Any,
                                                 clock: Any, metric: Any) -> None:
    f = make_filter([])
    ex = make_ex(stream=True, controls={"pace_tps": 25})
    assert await f.on_request(ex) is None
    task = asyncio.ensure_future(relay(f, ex, random_chunks(random.Random(1), 400), clock))
    await drive(timer, task)
    tokens, seconds = task.result()
    assert tokens > 500
    assert tokens / seconds == pytest.approx(25, rel=0.05)
    assert metric("distillguard_shape_paced_seconds_total") == pytest.approx(seconds, rel=0.05)


async def test_scope_pace_is_shared_by_concurrent_streams(make_filter: MakeFilter, make_ex: MakeEx,
                                                          timer: Any, clock: Any) -> None:
    f = make_filter([{"name": "tarpit", "scope": ["account"], "pace": {"tokens_per_second": 40, "burst": 10},
                      "match": {"tier": ["restricted"]}}])
    rng = random.Random(2)
    exs = [make_ex(stream=True, tier="restricted") for _ in range(3)]
    for ex in exs:
        assert await f.on_request(ex) is None
    t0 = clock.now()
    tasks = [asyncio.ensure_future(relay(f, ex, random_chunks(rng, 200), clock)) for ex in exs]
    await drive(timer, *tasks)
    total = sum(t.result()[0] for t in tasks)
    elapsed = clock.now() - t0
    assert total / elapsed == pytest.approx(40, rel=0.05)
    # an account outside the match is not paced at all
    free = make_ex(stream=True, account="free")
    await f.on_request(free)
    tokens, seconds = await relay(f, free, ["z" * 40] * 10, clock)
    assert tokens == 100 and seconds == 0


async def test_no_pacing_no_wait(make_filter: MakeFilter, make_ex: MakeEx, timer: Any, clock: Any) -> None:
    f = make_filter([])
    ex = make_ex(stream=True)
    await f.on_request(ex)
    assert await f.pace(ex) == 0.0
    assert timer.slept == []
