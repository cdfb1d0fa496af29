"""The embedded state backend: one dict in this process, LRU-bounded, idle keys dropped.

Values by kind: a GCRA cell is a bare ``float`` (its TAT; idle once TAT <= now, ~60 B plus the key);
a concurrency key is a ``Leases`` dict lease -> expiry (dropped when empty); a multiplier is a ``tuple``
(factor, until, recover). The dict's insertion order is the LRU order: a touch re-inserts the key at
the end, eviction pops from the front. Everything runs synchronously inside ``apply`` (no awaits), so
a batch is atomic with respect to other coroutines.

``proxy.shaping.fast`` (the shaper's fused fast path) reads and writes ``_d`` the same way ``apply_now``
does, using ``_base``, ``max_keys``, ``_evict`` and ``_rollback``: keep it in step with changes here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from proxy.state.base import (
    ACQUIRE,
    ADJUST,
    DONE,
    GCRA,
    GET_MULT,
    RELEASE,
    SET_MULT,
    Op,
    Result,
    multiplier_at,
)

MISSING: Any = object()  # an absent key (also in the undo log entries of ``proxy.shaping.fast``)
_INF = float("inf")
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
        # False until a multiplier is set: callers may then skip building multiplier keys
        self.may_have_multipliers = False

    def __len__(self) -> int:
        return len(self._d)

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

    # -- synchronous core (used by apply, by the limiter's fast path and by benchmarks) -------------

    def _rel(self, now: float) -> float:
        if self._base is None:
            self._base = float(int(now))
        return now - self._base

    def apply_now(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        base = self._base
        now = now - base if base is not None else self._rel(now)
        self._mk_keys = None  # per-batch cache of the multiplier factor (ops share one mult_keys tuple)
        d = self._d
        results: list[Result] = []
        if not all_or_nothing:
            for op in ops:
                kind = op[0]
                if kind == RELEASE:  # what every finished request with a concurrency limit sends
                    key = op[1]
                    leases = d.get(key)
                    if leases is not None:
                        leases.pop(op[2], None)
                        if not leases:
                            del d[key]
                    results.append(DONE)
                elif kind == ADJUST:  # token reconciliation (``_adjust``, inlined)
                    _, key, interval, _, units = op
                    tat = d.pop(key, MISSING)
                    if tat is MISSING or tat < now:
                        tat = now
                    tat += units * interval
                    if tat > now:
                        d[key] = tat
                        if len(d) > self.max_keys:
                            self._evict(key)
                    results.append(DONE)
                else:
                    results.append(self._one(op, now))
            return results
        # One pass that writes as it goes, with an undo log: a failed required check rolls back the
        # required ops already written, so the common all-admitted case costs a single pass.
        undo: list[tuple[Any, ...]] = []
        failed = False
        for op in ops:
            kind = op[0]
            if kind == GCRA and op[8]:
                if failed:  # still report what this check would say, write nothing
                    results.append(self._gcra(op, now, None))
                    continue
                if op[6] or not op[7]:  # multipliers or a peek: the general code
                    r = self._gcra(op, now, undo)
                else:
                    # ``_gcra`` inlined for the usual op (one call less per limit per request); the
                    # Redis contract test compares both paths against the Lua script.
                    _, key, interval, capacity, cost, max_wait, _, _, _ = op
                    old = d.pop(key, MISSING)
                    tat = now if old is MISSING or old < now else old
                    span = capacity * interval
                    new_tat = tat + cost * interval
                    wait = new_tat - span - now
                    if wait <= _EPS or wait <= max_wait:
                        undo.append((key, None, old))
                        d[key] = new_tat
                        if len(d) > self.max_keys:
                            self._evict(key)
                        r = (True, wait if wait > _EPS else 0.0, (now + span - new_tat) / interval, new_tat - now,
                             1.0)
                    else:
                        if tat > now:
                            d[key] = tat
                        r = (False, wait, (now + span - tat) / interval, tat - now, 1.0)
            elif kind == ACQUIRE and op[5]:
                if failed:
                    results.append(self._acquire(op, now, None))
                    continue
                _, key, lease, limit, ttl, _ = op
                leases = d.get(key)
                if leases is None and limit >= 1:  # ``_acquire`` inlined for the usual cases: a new key
                    exp = now + ttl
                    leases = d[key] = Leases()
                    leases.first_exp = exp
                    leases[lease] = exp
                    undo.append((key, lease, None))
                    if len(d) > self.max_keys:
                        self._evict(key)
                    r = (True, 0.0, float(limit - 1), 0.0, 1.0)
                elif leases is not None and leases.first_exp > now and lease not in leases:  # a new lease
                    held = len(leases)
                    del d[key]  # re-inserted at the end: the LRU order
                    d[key] = leases
                    if held < limit:
                        undo.append((key, lease, None))
                        exp = now + ttl
                        if exp < leases.first_exp:
                            leases.first_exp = exp
                        leases[lease] = exp
                        held += 1
                        r = (True, 0.0, float(limit - held), 0.0, 1.0)
                    else:
                        r = (False, 0.0, float(limit - held), 0.0, 1.0)
                else:  # an expired lease to purge, or a lease held again
                    r = self._acquire(op, now, undo)
            else:
                results.append(self._one(op, now))
                continue
            results.append(r)
            if not r[0]:
                failed = True
                self._rollback(undo)
        return results

    def _one(self, op: Op, now: float) -> Result:
        kind = op[0]
        if kind == RELEASE:  # the usual single ops first: what a finished request gives back
            self._release(op[1], op[2])
            return DONE
        if kind == ADJUST:
            self._adjust(op, now)
            return DONE
        if kind == GCRA:
            return self._gcra(op, now, False)
        if kind == ACQUIRE:
            return self._acquire(op, now, False)
        if kind == SET_MULT:
            self.may_have_multipliers = True
            self._put(op[1], (op[2], self._rel(op[3]), op[4]))
            return DONE
        if kind == GET_MULT:
            return (True, 0.0, 0.0, 0.0, self._factor(op[1], now))
        raise TypeError(f"unknown state op {op!r}")

    def _rollback(self, undo: list[tuple[Any, ...]]) -> None:
        d = self._d
        for key, lease, old in reversed(undo):
            if lease is None:  # a GCRA cell
                d.pop(key, None)
                if old is not MISSING:
                    d[key] = old
                continue
            leases = d.get(key)
            if leases is None:
                continue
            if old is None:
                leases.pop(lease, None)
                if not leases:
                    del d[key]
            else:
                leases[lease] = old

    # -- kinds ------------------------------------------------------------------------------------

    def _gcra(self, op: Op, now: float, undo: list[tuple[Any, ...]] | bool | None) -> Result:
        """``undo``: a list (write, logging the old value), False (write, no log) or None (dry run)."""
        _, key, interval, capacity, cost, max_wait, mk, commit, _ = op
        d = self._d
        tat = d.pop(key, MISSING)
        old = tat
        if tat is MISSING or tat < now:
            tat = now
        f = 1.0
        if mk and self.may_have_multipliers:
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
        span = capacity * interval
        new_tat = tat + cost * interval
        wait = new_tat - span - now
        if wait <= _EPS or wait <= max_wait:
            if wait <= _EPS:
                wait = 0.0
            if undo is not None and commit:
                if undo is not False:
                    undo.append((key, None, old))  # type: ignore[union-attr]
                d[key] = new_tat
                if len(d) > self.max_keys:
                    self._evict(key)
            elif tat > now:
                d[key] = tat
            return (True, wait, (now + span - new_tat) / interval, new_tat - now, f)
        if tat > now:
            d[key] = tat
        return (False, wait, (now + span - tat) / interval, tat - now, f)

    def _adjust(self, op: Op, now: float) -> None:
        _, key, interval, _, units = op
        d = self._d
        tat = d.pop(key, MISSING)
        if tat is MISSING or tat < now:
            tat = now
        tat += units * interval
        if tat > now:
            d[key] = tat
            if len(d) > self.max_keys:
                self._evict(key)

    def _acquire(self, op: Op, now: float, undo: list[tuple[Any, ...]] | bool | None) -> Result:
        _, key, lease, limit, ttl, _ = op
        d = self._d
        leases = d.pop(key, None)
        if leases is None:
            leases = Leases()
            leases.first_exp = _INF
        elif leases.first_exp <= now:
            leases.purge(now)
        held = len(leases)
        old = leases.get(lease)
        ok = old is not None or held < limit
        if ok and undo is not None:
            if undo is not False:
                undo.append((key, lease, old))  # type: ignore[union-attr]
            exp = now + ttl
            if old is None:
                held += 1
            if exp < leases.first_exp:
                leases.first_exp = exp
            leases[lease] = exp
        if leases:
            d[key] = leases
            if len(d) > self.max_keys:
                self._evict(key)
        return (ok, 0.0, float(limit - held), 0.0, 1.0)

    def _release(self, key: str, lease: str) -> None:
        leases = self._d.get(key)
        if leases is not None:
            leases.pop(lease, None)
            if not leases:
                del self._d[key]

    def _factor(self, key: str, now: float) -> float:
        m = self._d.get(key)
        if m is None:
            return 1.0
        return multiplier_at(m[0], m[1], m[2], now)

    def _put(self, key: str, value: Any) -> None:
        self._d.pop(key, None)
        self._d[key] = value
        if len(self._d) > self.max_keys:
            self._evict(key)

    def _evict(self, key: str) -> None:
        d = self._d
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


class Leases(dict[str, float]):
    """The leases of one concurrency key: lease -> expiry, plus a lower bound of the earliest expiry
    (checking one float per acquire instead of scanning every lease; a scan only once one expired)."""

    __slots__ = ("first_exp",)  # set by whoever creates one (no ``__init__``: a Python frame per new key)

    first_exp: float

    def purge(self, now: float) -> None:
        dead = [k for k, exp in self.items() if exp <= now]
        for k in dead:
            del self[k]
        self.first_exp = min(self.values(), default=_INF)


def _idle(v: Any, now: float) -> bool:
    if type(v) is float:
        return v <= now
    if type(v) is Leases:
        return all(exp <= now for exp in v.values())
    if type(v) is tuple:
        return v[1] + v[2] <= now
    return False
