"""The embedded state backend: one dict in this process, LRU-bounded, idle keys dropped.

Values by kind: a GCRA cell is a bare ``float`` (its TAT; idle once TAT <= now, ~60 B plus the key);
a concurrency key is a ``dict`` lease -> expiry (dropped when empty); a multiplier is a ``tuple``
(factor, until, recover). The dict's insertion order is the LRU order: a touch re-inserts the key at
the end, eviction pops from the front. Everything runs synchronously inside ``apply`` (no awaits), so
a batch is atomic with respect to other coroutines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from proxy.state.base import (
    Acquire,
    Adjust,
    Gcra,
    GetMultiplier,
    Op,
    Release,
    Result,
    SetMultiplier,
    multiplier_at,
)

_MISSING: Any = object()
_EPS = 1e-6  # conforming a microsecond early is harmless; it absorbs float rounding


class MemoryBackend:
    """In-process state with an LRU cap (``max_keys``) and idle expiry.

    ``on_evict`` is called with the number of keys evicted by the cap (for a metric); ``evictions``
    counts them too. ``sweep`` drops idle keys (the shape filter runs it periodically).
    """

    def __init__(
        self,
        max_keys: int = 1_000_000,
        *,
        on_evict: Callable[[int], None] | None = None,
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.max_keys = max_keys
        self.on_evict = on_evict
        self.evictions = 0
        self._d: dict[str, Any] = {}
        # Times are kept relative to the first ``now`` seen: at epoch magnitude (1.7e9 s) a double
        # resolves only ~0.24 µs and repeated additions drift; relative times stay exact to ~1 ns.
        self._base: float | None = None
        self._mk_keys: tuple[str, ...] | None = None
        self._mk_f = 1.0
        self._has_mult = False  # no multiplier ever set: skip their lookups

    def __len__(self) -> int:
        return len(self._d)

    @property
    def may_have_multipliers(self) -> bool:
        """False until a multiplier is set: callers may then skip building multiplier keys."""
        return self._has_mult

    # -- protocol ---------------------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        return self.apply_now(ops, now, all_or_nothing=all_or_nothing)

    async def sweep(self, now: float, *, chunk: int = 20_000) -> int:
        """Drop idle keys, ``chunk`` at a time, yielding to the event loop in between (a million keys
        must not stall requests)."""
        keys = list(self._d)
        rel = self._rel(now)
        dropped = 0
        for start in range(0, len(keys), chunk):
            d = self._d
            for k in keys[start:start + chunk]:
                v = d.get(k)
                if v is not None and _idle(v, rel):
                    del d[k]
                    dropped += 1
            await asyncio.sleep(0)
        return dropped

    async def close(self) -> None:
        self._d.clear()

    # -- synchronous core (used by apply and by benchmarks) ---------------------------------------

    def _rel(self, now: float) -> float:
        if self._base is None:
            self._base = float(int(now))
        return now - self._base

    def apply_now(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        now = self._rel(now)
        self._mk_keys = None  # per-batch cache of the multiplier factor (ops share one mult_keys tuple)
        if not all_or_nothing or len(ops) == 1:
            return [self._one(op, now) for op in ops]
        # One pass that writes as it goes, with an undo log: a failed required check rolls back the
        # required ops already written, so the common all-admitted case costs a single pass.
        undo: list[tuple[str, Any]] = []
        results: list[Result] = []
        failed = False
        d = self._d
        for op in ops:
            t = type(op)
            if (t is Gcra or t is Acquire) and op.required:  # type: ignore[union-attr]
                if failed:  # still report what this check would say, write nothing
                    results.append(self._gcra(op, now, False) if t is Gcra  # type: ignore[arg-type]
                                   else self._acquire(op, now, False))  # type: ignore[arg-type]
                    continue
                key = op.key
                old = d.get(key, _MISSING)
                undo.append((key, dict(old) if type(old) is dict else old))
                r = self._gcra(op, now, True) if t is Gcra else self._acquire(op, now, True)  # type: ignore[arg-type]
                results.append(r)
                if not r.ok:
                    failed = True
                    for k, v in reversed(undo):
                        d.pop(k, None)
                        if v is not _MISSING:
                            d[k] = v
            else:
                results.append(self._one(op, now))
        return results

    def _one(self, op: Op, now: float, dry: bool = False) -> Result:
        t = type(op)
        if t is Gcra:
            return self._gcra(op, now, not dry)  # type: ignore[arg-type]
        if t is Acquire:
            return self._acquire(op, now, not dry)  # type: ignore[arg-type]
        if t is Adjust:
            self._adjust(op, now)  # type: ignore[arg-type]
            return Result()
        if t is Release:
            self._release(op)  # type: ignore[arg-type]
            return Result()
        if t is SetMultiplier:
            o: SetMultiplier = op  # type: ignore[assignment]
            self._has_mult = True
            self._put(o.key, (o.factor, self._rel(o.until), o.recover))
            return Result()
        if t is GetMultiplier:
            return Result(value=self._factor(op.key, now))
        raise TypeError(f"unknown state op {op!r}")

    # -- kinds ------------------------------------------------------------------------------------

    def _gcra(self, op: Gcra, now: float, write: bool) -> Result:
        d = self._d
        key = op.key
        tat = d.pop(key, _MISSING)
        if tat is _MISSING or tat < now:
            tat = now
        cost = op.cost
        f = 1.0
        mk = op.mult_keys
        if mk and self._has_mult:
            if mk is self._mk_keys:
                f = self._mk_f
            else:
                for k in mk:
                    m = d.get(k)
                    if m is not None:
                        f = min(f, multiplier_at(m[0], m[1], m[2], now))
                self._mk_keys, self._mk_f = mk, f
            if f != 1.0:
                cost = cost / f
        interval = op.interval
        span = op.capacity * interval
        new_tat = tat + cost * interval
        wait = new_tat - span - now
        if wait <= _EPS or wait <= op.max_wait:
            if wait <= _EPS:
                wait = 0.0
            if write and op.commit:
                d[key] = new_tat
                if len(d) > self.max_keys:
                    self._evict(key)
            elif tat > now:
                d[key] = tat
            return Result(True, wait, (now + span - new_tat) / interval, new_tat - now, f)
        if tat > now:
            d[key] = tat
        return Result(False, wait, (now + span - tat) / interval, tat - now, f)

    def _adjust(self, op: Adjust, now: float) -> None:
        d = self._d
        tat = d.pop(op.key, _MISSING)
        if tat is _MISSING or tat < now:
            tat = now
        tat += op.units * op.interval
        if tat > now:
            d[op.key] = tat
            self._grew(op.key)

    def _acquire(self, op: Acquire, now: float, write: bool) -> Result:
        leases = self._d.pop(op.key, None)
        if leases is None:
            leases = {}
        elif any(exp <= now for exp in leases.values()):
            leases = {k: exp for k, exp in leases.items() if exp > now}
        held = len(leases)
        ok = op.lease in leases or held < op.limit
        if ok and write:
            leases[op.lease] = now + op.ttl
        if leases:
            self._d[op.key] = leases
            self._grew(op.key)
        return Result(ok, 0.0, float(op.limit - len(leases)), 0.0)

    def _release(self, op: Release) -> None:
        leases = self._d.get(op.key)
        if leases is not None:
            leases.pop(op.lease, None)
            if not leases:
                del self._d[op.key]

    def _factor(self, key: str, now: float) -> float:
        m = self._d.get(key)
        if m is None:
            return 1.0
        return multiplier_at(m[0], m[1], m[2], now)

    def _put(self, key: str, value: Any) -> None:
        self._d.pop(key, None)
        self._d[key] = value
        self._grew(key)

    def _grew(self, key: str) -> None:
        if len(self._d) > self.max_keys:
            self._evict(key)

    def _evict(self, key: str) -> None:
        d = self._d
        if len(d) > self.max_keys:
            evicted = 0
            while len(d) > self.max_keys:
                oldest = next(iter(d))
                if oldest == key:  # never evict what we just wrote
                    break
                del d[oldest]
                evicted += 1
            if evicted:
                self.evictions += evicted
                if self.on_evict is not None:
                    self.on_evict(evicted)

    # -- expiry -----------------------------------------------------------------------------------

    def sweep_now(self, now: float, budget: int | None = None) -> int:
        """Drop idle keys, oldest touched first, looking at up to ``budget`` keys (all if None)."""
        now = self._rel(now)
        dead = []
        for i, (k, v) in enumerate(self._d.items()):
            if budget is not None and i >= budget:
                break
            if _idle(v, now):
                dead.append(k)
        for k in dead:
            del self._d[k]
        return len(dead)


def _idle(v: Any, now: float) -> bool:
    if type(v) is float:
        return v <= now
    if type(v) is dict:
        return all(exp <= now for exp in v.values())
    if type(v) is tuple:
        return v[1] + v[2] <= now
    return False
