"""The contract every state backend keeps, through the async protocol only.

Run on every backend in ``BACKENDS``: the embedded memory store and Redis (a real ``redis-server``
the suite starts itself on a free loopback port, see ``tests/state/redis_server.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis_server

from proxy.state import MemoryBackend, StateBackend, backend_from_url
from proxy.state.base import (
    OK,
    REMAINING,
    VALUE,
    WAIT,
    acquire,
    adjust,
    gcra,
    get_multiplier,
    release,
    set_multiplier,
)

T0 = 1_700_000_000.0




@pytest.fixture(scope="module")
def contract_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = redis_server.RedisServer(tmp_path_factory.mktemp("contract-redis")).start()
    yield server
    server.stop()


def _redis(request: pytest.FixtureRequest) -> StateBackend:
    server = request.getfixturevalue("contract_redis")
    server.command("FLUSHALL")
    return backend_from_url(server.url, namespace="contract")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], StateBackend]] = {
    "memory": lambda request: MemoryBackend(),
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[StateBackend]:
    b = BACKENDS[request.param](request)
    yield b
    await b.close()


async def test_gcra_burst_rate_and_remaining(backend: StateBackend) -> None:
    op = gcra("c:g", 0.5, 3.0)  # 2/s, burst 3
    rs = [(await backend.apply([op], T0))[0] for _ in range(4)]
    assert [r[OK] for r in rs] == [True, True, True, False]
    assert [round(r[REMAINING], 6) for r in rs[:3]] == [2, 1, 0]
    assert rs[3][WAIT] == pytest.approx(0.5)
    assert (await backend.apply([op], T0 + 0.5))[0][OK]


async def test_gcra_reserves_a_delayed_slot(backend: StateBackend) -> None:
    op = gcra("c:d", 1.0, 1.0, max_wait=2.0)
    waits = [(await backend.apply([op], T0))[0] for _ in range(4)]
    assert [(r[OK], round(r[WAIT], 6)) for r in waits] == [(True, 0), (True, 1), (True, 2), (False, 3)]


async def test_peek_does_not_write(backend: StateBackend) -> None:
    peek = gcra("c:p", 1.0, 1.0, commit=False)
    assert (await backend.apply([peek], T0))[0][OK]
    assert (await backend.apply([peek], T0))[0][OK]


async def test_all_or_nothing(backend: StateBackend) -> None:
    await backend.apply([gcra("c:full", 10.0, 1.0)], T0)
    ops = [gcra("c:a", 1.0, 1.0), acquire("c:l", "r1", 1, 60.0), gcra("c:full", 10.0, 1.0),
           gcra("c:shadow", 10.0, 1.0, required=False)]
    res = await backend.apply(ops, T0, all_or_nothing=True)
    assert [r[OK] for r in res] == [True, True, False, True]
    # nothing required was written: both succeed again; the shadow op did count
    res = await backend.apply([ops[0], ops[1], ops[3]], T0, all_or_nothing=True)
    assert [r[OK] for r in res] == [True, True, False]


async def test_adjust_charges_and_refunds(backend: StateBackend) -> None:
    t = gcra("c:t", 0.01, 100.0, cost=90.0)
    assert (await backend.apply([t], T0))[0][OK]
    assert not (await backend.apply([gcra("c:t", 0.01, 100.0, cost=20.0)], T0))[0][OK]
    await backend.apply([adjust("c:t", 0.01, 100.0, -50.0)], T0)
    assert (await backend.apply([gcra("c:t", 0.01, 100.0, cost=20.0)], T0))[0][OK]
    await backend.apply([adjust("c:t", 0.01, 100.0, 1000.0)], T0)  # over-use puts the key in debt
    r = (await backend.apply([gcra("c:t", 0.01, 100.0)], T0))[0]
    assert not r[OK] and r[WAIT] == pytest.approx(9.61, abs=0.01)


async def test_leases(backend: StateBackend) -> None:
    a = [(await backend.apply([acquire("c:c", f"r{i}", 2, 10.0)], T0))[0][OK] for i in range(3)]
    assert a == [True, True, False]
    await backend.apply([release("c:c", "r0"), release("c:c", "never-held")], T0)
    assert (await backend.apply([acquire("c:c", "r2", 2, 10.0)], T0))[0][OK]
    assert (await backend.apply([acquire("c:c", "r3", 2, 10.0)], T0 + 11))[0][OK]  # TTL expiry


async def test_multipliers(backend: StateBackend) -> None:
    await backend.apply([set_multiplier("c:m", 0.5, T0 + 100, recover=100)], T0)
    get = get_multiplier("c:m")
    assert (await backend.apply([get], T0 + 50))[0][VALUE] == 0.5
    assert (await backend.apply([get], T0 + 150))[0][VALUE] == pytest.approx(0.75)
    assert (await backend.apply([get], T0 + 250))[0][VALUE] == 1.0
    op = gcra("c:mg", 1.0, 4.0, mult_keys=("c:m", "c:none"))
    rs = [(await backend.apply([op], T0 + 10))[0] for _ in range(3)]
    assert [r[OK] for r in rs] == [True, True, False] and rs[0][VALUE] == 0.5


async def test_sweep_forgets_idle_state(backend: StateBackend) -> None:
    await backend.apply([gcra("c:s", 1.0, 5.0), acquire("c:sl", "r", 1, 5.0)], T0)
    await backend.sweep(T0 + 10)
    # indistinguishable from fresh state
    assert (await backend.apply([gcra("c:s", 1.0, 5.0, cost=5.0)], T0 + 10))[0][OK]
    assert (await backend.apply([acquire("c:sl", "other", 1, 5.0)], T0 + 10))[0][OK]
