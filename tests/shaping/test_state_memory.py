"""The memory backend: GCRA exactness, all-or-nothing batches, leases, multipliers, expiry, memory, LRU."""

from __future__ import annotations

import gc
import math
import random
import tracemalloc
from typing import Any

import pytest

from proxy.state import MemoryBackend, backend_from_url, state_key
from proxy.state.base import (
    OK,
    REMAINING,
    RESET,
    VALUE,
    WAIT,
    Op,
    acquire,
    adjust,
    gcra,
    get_multiplier,
    multiplier_at,
    release,
    set_multiplier,
)

T0 = 1_700_000_000.0


def cell(key: str = "k", rate: float = 10.0, burst: int = 5, **kw: Any) -> Op:
    return gcra(key, 1.0 / rate, float(burst), **kw)


def test_state_key_strips_separator() -> None:
    assert state_key("lim", "a\x1fb", "c") == "lim\x1fab\x1fc"


def test_backend_from_url() -> None:
    b = backend_from_url("memory://?max_keys=7")
    assert isinstance(b, MemoryBackend) and b.max_keys == 7
    with pytest.raises(ValueError, match="unknown backend URL scheme 'nosuch'"):
        backend_from_url("nosuch://x")


def test_burst_then_rate() -> None:
    b = MemoryBackend()
    now = T0
    oks = [b.apply_now([cell()], now)[0][OK] for _ in range(7)]
    assert oks == [True] * 5 + [False] * 2
    r = b.apply_now([cell()], now)[0]
    assert not r[OK] and r[WAIT] == pytest.approx(0.1)
    assert b.apply_now([cell()], now + 0.1)[0][OK]
    assert not b.apply_now([cell()], now + 0.1)[0][OK]


@pytest.mark.parametrize(("rate", "burst", "step"), [(10.0, 5, 0.013), (3.0, 2, 0.05), (250.0, 40, 0.001)])
def test_gcra_exact_over_long_steady_run(rate: float, burst: int, step: float) -> None:
    b = MemoryBackend()
    duration = 600.0
    n = int(duration / step)
    accepted = sum(b.apply_now([cell(rate=rate, burst=burst)], T0 + i * step)[0][OK] for i in range(n + 1))
    theory = burst + math.floor(n * step * rate)
    assert abs(accepted - theory) <= 1, (accepted, theory)


def test_gcra_exact_over_bursty_run_against_a_token_bucket() -> None:
    rng = random.Random(7)
    rate, burst = 5.0, 8
    b = MemoryBackend()
    tokens, last = float(burst), T0
    t = T0
    ours = ref = 0
    for _ in range(20_000):
        # bursts of back-to-back requests separated by random idle gaps
        t += rng.choice((0.0, 0.0, 0.0, 0.001, 0.01, 0.3, 2.0))
        ours += b.apply_now([cell(rate=rate, burst=burst)], t)[0][OK]
        tokens = min(float(burst), tokens + (t - last) * rate)
        last = t
        if tokens >= 1.0 - 1e-9:
            tokens -= 1.0
            ref += 1
    assert abs(ours - ref) <= 1
    assert ours <= burst + (t - T0) * rate + 1


def test_delay_reservation_like_nginx() -> None:
    b = MemoryBackend()
    op = cell(rate=10, burst=2, max_wait=0.25)
    waits = [b.apply_now([op], T0)[0] for _ in range(6)]
    assert [r[OK] for r in waits] == [True, True, True, True, False, False]
    assert [round(r[WAIT], 3) for r in waits[:4]] == [0.0, 0.0, 0.1, 0.2]
    assert waits[4][WAIT] == pytest.approx(0.3)


def test_remaining_and_reset() -> None:
    b = MemoryBackend()
    r = b.apply_now([cell(rate=1, burst=10)], T0)[0]
    assert r[REMAINING] == pytest.approx(9) and r[RESET] == pytest.approx(1.0)
    r = b.apply_now([cell(rate=1, burst=10, cost=4)], T0)[0]
    assert r[REMAINING] == pytest.approx(5) and r[RESET] == pytest.approx(5.0)


def test_all_or_nothing_leaves_no_trace_and_shadow_ops_still_count() -> None:
    b = MemoryBackend()
    b.apply_now([cell("full", burst=1)], T0)
    ops = [cell("a"), acquire("c", "r1", 1, 60.0), cell("full", burst=1),
           cell("shadow", burst=1, required=False)]
    res = b.apply_now(ops, T0, all_or_nothing=True)  # type: ignore[arg-type]
    assert [r[OK] for r in res] == [True, True, False, True]
    assert "a" not in b._d and "c" not in b._d
    assert "shadow" in b._d
    res = b.apply_now(ops[:2], T0, all_or_nothing=True)
    assert all(r[OK] for r in res) and "a" in b._d and "c" in b._d



def test_batched_acquire_matches_the_single_op_path() -> None:
    """An acquire inside an all-or-nothing batch (inlined there for a new key and a new lease on a
    live key) gives the same results and leaves the same leases as one acquire at a time, and is
    rolled back when a later check fails."""
    steps: list[tuple[str, float]] = [("r1", T0), ("r2", T0 + 1), ("r2", T0 + 2), ("r3", T0 + 3),
                                      ("r4", T0 + 4), ("r5", T0 + 40)]
    batched, single = MemoryBackend(), MemoryBackend()
    oks = []
    for lease, t in steps:
        op = acquire("c", lease, 3, 30.0)
        got = batched.apply_now([op], t, all_or_nothing=True)[0]
        want = single.apply_now([op], t)[0]
        assert got == want, (lease, t)
        assert dict(batched._d["c"]) == dict(single._d["c"])
        oks.append(got[OK])
    assert oks == [True, True, True, True, False, True]  # r4: full; r5: the others expired
    assert list(batched._d["c"]) == ["r5"]
    b = MemoryBackend()
    b.apply_now([cell("full", burst=1)], T0)
    b.apply_now([acquire("c", "held", 3, 30.0)], T0)
    res = b.apply_now([acquire("c", "new", 3, 30.0), cell("full", burst=1)], T0, all_or_nothing=True)
    assert [r[OK] for r in res] == [True, False]
    assert dict(b._d["c"]) == {"held": T0 + 30.0 - b._base}  # type: ignore[operator]
    assert list(b._d) == ["c", "full"]  # both touched: moved to the LRU end in batch order
def test_adjust_reconciles_tokens() -> None:
    b = MemoryBackend()
    op = gcra("t", 60.0 / 1000, 1000.0, cost=800.0)  # 1000 tokens per minute, reserve 800
    assert b.apply_now([op], T0)[0][OK]
    assert not b.apply_now([gcra("t", 0.06, 1000.0, cost=300.0)], T0)[0][OK]
    b.apply_now([adjust("t", 0.06, 1000.0, -700.0)], T0)  # only 100 were used
    assert b.apply_now([gcra("t", 0.06, 1000.0, cost=300.0)], T0)[0][OK]
    b.apply_now([adjust("t", 0.06, 1000.0, -10_000.0)], T0)  # refunds never go below empty
    assert "t" not in b._d


def test_leases_limit_release_and_ttl() -> None:
    b = MemoryBackend()
    acq = [b.apply_now([acquire("c", f"r{i}", 2, 30.0)], T0)[0][OK] for i in range(3)]
    assert acq == [True, True, False]
    assert b.apply_now([acquire("c", "r0", 2, 30.0)], T0)[0][OK]  # idempotent for the holder
    b.apply_now([release("c", "r0")], T0)
    assert b.apply_now([acquire("c", "r2", 2, 30.0)], T0)[0][OK]
    assert not b.apply_now([acquire("c", "r3", 2, 30.0)], T0 + 29)[0][OK]
    assert b.apply_now([acquire("c", "r3", 2, 30.0)], T0 + 31)[0][OK]  # leaked leases expire
    b.apply_now([release("c", "r3")], T0 + 31)
    assert "c" not in b._d


def test_multiplier_scales_cost_and_recovers() -> None:
    assert multiplier_at(0.25, 100.0, 100.0, 150.0) == pytest.approx(0.625)
    b = MemoryBackend()
    b.apply_now([set_multiplier("m", 0.25, T0 + 3600, recover=600)], T0)
    assert b.apply_now([get_multiplier("m")], T0 + 10)[0][VALUE] == 0.25
    op = cell("x", rate=1, burst=8, mult_keys=("m", "other"))
    assert [b.apply_now([op], T0)[0][OK] for _ in range(3)] == [True, True, False]  # 8 / 4 = 2
    assert b.apply_now([get_multiplier("m")], T0 + 3900)[0][VALUE] == pytest.approx(0.625)
    assert b.apply_now([get_multiplier("m")], T0 + 4300)[0][VALUE] == 1.0


async def test_sweep_drops_idle_keys() -> None:
    b = MemoryBackend()
    b.apply_now([cell("g"), acquire("c", "r", 1, 5.0), set_multiplier("m", 0.5, T0 + 10)], T0)
    assert len(b) == 3
    assert await b.sweep(T0 + 1) == 1  # the GCRA cell is full again
    assert await b.sweep(T0 + 11) == 2
    assert len(b) == 0


def test_lru_cap_evicts_least_recently_used_and_counts() -> None:
    seen: list[int] = []
    b = MemoryBackend(max_keys=100, on_evict=seen.append)
    for i in range(100):
        b.apply_now([cell(f"k{i}", rate=0.001)], T0)
    b.apply_now([cell("k0", rate=0.001)], T0)  # touch k0: now most recent
    for i in range(100, 150):
        b.apply_now([cell(f"k{i}", rate=0.001)], T0)
    assert len(b) == 100 and b.evictions == 50 and sum(seen) == 50
    assert "k0" in b._d and "k1" not in b._d and "k51" in b._d


def test_memory_per_key_at_most_200_bytes() -> None:
    n = 50_000
    keys = [state_key("lim", "per-account-rpm", f"acct_{i:012d}") for i in range(n)]
    gc.collect()
    tracemalloc.start()
    b = MemoryBackend()
    for k in keys:
        b.apply_now([gcra(k, 1.0, 10.0)], T0)
    for k in keys[: n // 2]:  # touches reorder the LRU
        b.apply_now([gcra(k, 1.0, 10.0)], T0 + 0.5)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_key = current / n + sum(map(len, keys[:100])) / 100 + 49  # + the key string itself
    assert per_key <= 200, per_key
