"""Fixtures for the shaping tests: a fake clock, a fake timer that sleeps on it, an Exchange factory.

Nothing sleeps for real: ``timer.sleep`` parks the caller until a test moves the fake clock past its
due time with ``await timer.advance(seconds)``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from proxy.accounts import Account
from proxy.clock import FakeClock
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.filters.shape import ShapeFilter
from proxy.shaping.spec import parse_limits


class FakeTimer:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self.slept: list[float] = []

    async def sleep(self, dt: float) -> None:
        self.slept.append(dt)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.clock.now() + max(dt, 0.0), next(self._seq), fut))
        await fut

    @staticmethod
    async def settle() -> None:
        for _ in range(30):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move the clock forward, waking every sleeper due on the way, in order."""
        end = self.clock.now() + seconds
        await self.settle()
        while self._heap and self._heap[0][0] <= end:
            due, _, fut = heapq.heappop(self._heap)
            if fut.done():
                continue
            self.clock.set(due)
            fut.set_result(None)
            await self.settle()
        self.clock.set(end)
        await self.settle()

    @property
    def pending(self) -> int:
        return sum(1 for *_, f in self._heap if not f.done())


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timer(clock: FakeClock) -> FakeTimer:
    return FakeTimer(clock)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


PATHS = {"openai_chat": "/v1/chat/completions", "anthropic_messages": "/v1/messages"}


def _make_ex(
    account: str | None = "acct-1",
    *,
    tier: str = "standard",
    org: str | None = None,
    key: str | None = "key-1",
    ip: str = "203.0.113.7",
    model: str = "gpt-test",
    max_tokens: int | None = None,
    stream: bool = False,
    dialect: str = "openai_chat",
    prompt: str = "hello there",
    features: dict[str, Any] | None = None,
    controls: dict[str, Any] | None = None,
) -> Exchange:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
    ex = Exchange(path=PATHS[dialect], body=orjson.dumps(body), dialect=DIALECTS[dialect], client_ip=ip)
    if account is not None:
        ex.account = Account(id=account, tier=tier, org=org)
    ex.key_id = key
    ex.features.update(features or {})
    ex.controls.update(controls or {})
    return ex


@pytest.fixture
def make_ex() -> Callable[..., Exchange]:
    return _make_ex


@pytest.fixture
def make_filter(
    clock: FakeClock, timer: FakeTimer, registry: CollectorRegistry
) -> Callable[..., ShapeFilter]:
    def make(limits: list[dict[str, Any]], **kw: Any) -> ShapeFilter:
        kw.setdefault("sweep_interval", 0)
        return ShapeFilter(parse_limits(limits), clock=clock, registry=registry, sleep=timer.sleep, **kw)

    return make


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = registry.get_sample_value(name, labels)
    return 0.0 if v is None else v


@pytest.fixture
def metric(registry: CollectorRegistry) -> Callable[..., float]:
    return lambda name, **labels: sample(registry, name, **labels)
