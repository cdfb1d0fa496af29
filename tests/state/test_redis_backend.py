"""Redis-specific behaviour: identical results to the memory backend on random batches, one round
trip per ``apply``, NOSCRIPT recovery, namespaced hash-tagged keys, lease and cell expiry, server time."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis_server import RedisServer, info_stats

from proxy.state import MemoryBackend, backend_from_url
from proxy.state.base import (
    OK,
    SEP,
    VALUE,
    Op,
    acquire,
    adjust,
    gcra,
    get_multiplier,
    release,
    set_multiplier,
)
from proxy.state.redis import RedisBackend

T0 = 1_700_000_000.0


@pytest.fixture
async def rb(redis_url: str):
    b = backend_from_url(redis_url, namespace="t")
    assert isinstance(b, RedisBackend)
    yield b
    await b.close()


def _random_batch(rng: random.Random, t: float) -> list[Op]:
    keys = ["g1", "g2", "g3"]
    leases = ["l1", "l2"]
    mults = ["m1", "m2"]
    ops: list[Op] = []
    for _ in range(rng.randint(1, 5)):
        k = rng.random()
        if k < 0.45:
            ops.append(gcra(rng.choice(keys), rng.choice([0.25, 0.5, 1.0, 2.0]), float(rng.randint(1, 4)),
                            cost=float(rng.randint(1, 3)), max_wait=rng.choice([0.0, 0.0, 1.0, 4.0]),
                            mult_keys=tuple(rng.sample(mults, rng.randint(0, 2))),
                            commit=rng.random() > 0.1, required=rng.random() > 0.2))
        elif k < 0.7:
            ops.append(acquire(rng.choice(leases), f"r{rng.randint(0, 4)}", rng.randint(1, 3),
                               rng.choice([1.0, 2.0, 8.0]), required=rng.random() > 0.2))
        elif k < 0.8:
            ops.append(release(rng.choice(leases), f"r{rng.randint(0, 4)}"))
        elif k < 0.9:
            ops.append(adjust(rng.choice(keys), 0.5, 4.0, float(rng.randint(-3, 3))))
        elif k < 0.95:
            ops.append(set_multiplier(rng.choice(mults), rng.choice([0.25, 0.5]), t + rng.choice([1.0, 4.0]),
                                     rng.choice([0.0, 4.0])))
        else:
            ops.append(get_multiplier(rng.choice(mults)))
    return ops


@pytest.mark.parametrize("seed", range(6))
async def test_same_results_as_memory_on_random_batches(rb: RedisBackend, seed: int) -> None:
    rng = random.Random(seed)
    mem = MemoryBackend()
    t = T0
    for step in range(250):
        t += rng.choice([0.0, 0.0, 0.125, 0.25, 1.0, 3.0])
        ops = _random_batch(rng, t)
        aon = rng.random() < 0.6
        want = await mem.apply(ops, t, all_or_nothing=aon)
        got = await rb.apply(ops, t, all_or_nothing=aon)
        for w, g, op in zip(want, got, ops, strict=True):
            assert g == pytest.approx(w, abs=1e-6), (seed, step, op, aon)


async def test_one_round_trip_per_apply(rb: RedisBackend, redis_server: RedisServer) -> None:
    ops: list[Op] = [gcra("a", 0.1, 10.0), gcra("b", 1.0, 5.0, mult_keys=("m",)), acquire("c", "r", 4, 30.0),
                     adjust("a", 0.1, 10.0, 1.0), release("c", "r")]
    await rb.apply(ops, T0, all_or_nothing=True)  # connects, loads the script if needed
    redis_server.command("CONFIG", "RESETSTAT")
    sent = rb.client.sent
    for i in range(50):
        await rb.apply(ops, T0 + i, all_or_nothing=True)
    assert rb.client.sent - sent == 50  # commands written by the client
    assert info_stats(redis_server)["evalsha"]["calls"] == 50  # and seen by the server
    # concurrent batches share the connection: still one command each, fewer writes
    conn = rb.client._conns[0]
    assert conn is not None
    writes, sent = conn.writes, rb.client.sent
    await asyncio.gather(*(rb.apply(ops, T0 + 60) for _ in range(100)))
    assert rb.client.sent - sent == 100 and conn.writes - writes < 100


async def test_noscript_reloads_after_script_flush(rb: RedisBackend, redis_server: RedisServer) -> None:
    op = gcra("f", 1.0, 2.0)
    assert (await rb.apply([op], T0))[0][OK]
    before = rb.reloads
    redis_server.command("SCRIPT", "FLUSH")
    assert (await rb.apply([op], T0))[0][OK]
    assert not (await rb.apply([op], T0))[0][OK]  # the state survived the flush; the script came back
    assert rb.reloads == before + 1
    assert redis_server.command("SCRIPT", "EXISTS", rb.sha) != ""


async def test_keys_are_namespaced_and_hash_tagged(rb: RedisBackend, redis_server: RedisServer) -> None:
    await rb.apply([gcra("lim" + SEP + "rpm" + SEP + "alice", 1.0, 5.0), acquire("c", "r1", 2, 30.0),
                    set_multiplier("m", 0.5, T0 + 60)], T0)
    keys = redis_server.command("KEYS", "*")
    assert keys.count("{t}" + SEP) == 3
    other = backend_from_url(redis_server.url, namespace="other")
    assert (await other.apply([gcra("lim" + SEP + "rpm" + SEP + "alice", 1.0, 1.0)], T0))[0][OK]
    await other.close()


async def test_cells_and_leases_carry_expiries(rb: RedisBackend, redis_server: RedisServer) -> None:
    import time

    now = time.time()
    await rb.apply([gcra("g", 2.0, 5.0, cost=3.0), acquire("l", "r1", 2, 30.0)], now)
    g_ttl = int(redis_server.command("PTTL", "{t}" + SEP + "g"))
    l_ttl = int(redis_server.command("PTTL", "{t}" + SEP + "l"))
    assert 5000 < g_ttl <= 6000  # the TAT is 6 s ahead: the cell vanishes when it is idle again
    assert 29000 < l_ttl <= 30000  # a crashed replica's lease set expires with its last lease


async def test_a_crashed_replicas_leases_expire(rb: RedisBackend) -> None:
    # replica A takes both slots and dies without releasing; B gets a slot once the TTL has passed
    assert all(r[OK] for r in await rb.apply([acquire("c", "a1", 2, 5.0), acquire("c", "a2", 2, 5.0)], T0))
    assert not (await rb.apply([acquire("c", "b1", 2, 5.0)], T0 + 4.9))[0][OK]
    assert (await rb.apply([acquire("c", "b1", 2, 5.0)], T0 + 5.0))[0][OK]


async def test_server_clock_mode(redis_url: str) -> None:
    import time

    b = backend_from_url(redis_url, namespace="s", clock="server")
    skewed = time.time() - 3600  # a replica whose clock is an hour late changes nothing
    rs = [(await b.apply([gcra("g", 10.0, 2.0)], skewed))[0][OK] for _ in range(3)]
    assert rs == [True, True, False]
    await b.apply([set_multiplier("m", 0.5, skewed + 60)], skewed)
    assert (await b.apply([get_multiplier("m")], skewed + 1))[0][VALUE] == 0.5
    await b.close()


def test_cluster_and_sentinel_urls_are_refused() -> None:
    for url in ("redis+cluster://h:7000", "redis+sentinel://:pw@h:26379/mymaster", "sentinel://h:26379"):
        with pytest.raises(ValueError, match="not supported yet") as e:
            backend_from_url(url)
        assert "pw" not in str(e.value)
    with pytest.raises(ValueError, match="unknown backend URL scheme"):
        backend_from_url("memcached://h")
