"""Window aggregates kept per (rule, key): bounded memory, O(1) per event, on event time.

Counts, sums, rates and ratios use a ring of ``buckets`` slots covering the window with a running total
(accurate to one bucket); ``distinct`` keeps its values ordered by last sighting, pruned from the oldest
end; ``ewma`` is time-decayed with a half-life; ``interarrival`` keeps the last N gaps with running sums
(mean, coefficient of variation, burstiness ``(cv-1)/(cv+1)``, minimum).
``arg(ctx)`` computes what one event adds (pure), ``push(state, now, arg)`` adds it and returns the new
value, ``read(state, now)`` reads without adding. The Redis rule store (``proxy.policy.store_redis``)
mirrors these operations in ``proxy/state/lua/rules.lua``.

State is allocated as it is needed, so an account seen a few times costs little: a ring holds only its
total until events fall in a second bucket, the gaps array grows to ``samples``, and a distinct set of
up to ``SMALL_DISTINCT`` values is one flat list (an ``OrderedDict`` beyond). Each kind's ``push`` is a
method of its own, bound once (``Aggregate.push``), so the hot path does not dispatch on the kind.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from proxy.policy.spec import AggregateSpec

Fn = Callable[[Mapping[str, Any]], Any]
SMALL_DISTINCT = 8  # values kept in a flat list; more move to an OrderedDict

_ZEROS: dict[tuple[str, int], array[Any]] = {}


def _zeros(typecode: str, n: int) -> array[Any]:
    zero = _ZEROS.get((typecode, n))
    if zero is None:
        zero = _ZEROS[(typecode, n)] = array(typecode, bytes(n * array(typecode).itemsize))
    return zero[:]


def _shift(slots: Any, total: float, last: int, idx: int, typecode: str) -> tuple[Any, float]:
    """One series of a ring moved on from bucket ``last`` to ``idx`` (> ``last``): its slots and total."""
    if type(slots) is int:  # sparse: ``total`` is all in bucket ``last``
        if last < 0 or idx - last >= slots:
            return slots, 0.0
        arr = _zeros(typecode, slots)
        arr[last % slots] = total
        slots = arr
    n = len(slots)
    if last < 0 or idx - last >= n:
        for i in range(n):
            slots[i] = 0
        return slots, 0.0
    for b in range(last + 1, idx + 1):
        j = b % n
        total -= slots[j]
        slots[j] = 0
    return slots, (total if total > 1e-9 else 0.0)


class Ring:
    """Sum of values over the last ``window`` seconds in ``n`` buckets (float32 slots: counts).

    ``slots`` is the bucket count ``n`` (an int) while every event so far fell in bucket ``last``, whose
    value is then ``total``; the array is allocated when a second bucket is needed."""

    __slots__ = ("last", "slots", "total")
    typecode = "f"

    def __init__(self, n: int) -> None:
        self.last = -1
        self.total = 0.0
        self.slots: Any = n

    def _advance(self, idx: int) -> None:
        if idx > self.last:
            self.slots, self.total = _shift(self.slots, self.total, self.last, idx, self.typecode)
            self.last = idx

    def add(self, idx: int, v: float) -> float:
        if idx != self.last:
            self._advance(idx)
            if idx < self.last:  # late event older than the ring's head: count it in the current bucket
                idx = self.last
        slots = self.slots
        if type(slots) is not int:
            slots[idx % len(slots)] += v
        total = self.total = self.total + v
        return total

    def read(self, idx: int) -> float:
        if idx > self.last:
            self._advance(idx)
        return self.total


class Ratio(Ring):
    """A ratio's two rings in one object: all events (the ``Ring`` part) and matching events (``num*``),
    always at the same bucket."""

    __slots__ = ("nslots", "ntotal")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.nslots: Any = n
        self.ntotal = 0.0

    def _advance(self, idx: int) -> None:
        last = self.last
        if idx > last:
            self.slots, self.total = _shift(self.slots, self.total, last, idx, "f")
            self.nslots, self.ntotal = _shift(self.nslots, self.ntotal, last, idx, "f")
            self.last = idx

    def push(self, idx: int, match: bool) -> float:
        den = self.add(idx, 1.0)
        if match:
            if idx < self.last:
                idx = self.last
            nslots = self.nslots
            if type(nslots) is not int:
                nslots[idx % len(nslots)] += 1.0
            self.ntotal += 1.0
        return self.ntotal / den if den else 0.0

    def ratio(self, idx: int) -> float:
        den = self.read(idx)
        return self.ntotal / den if den else 0.0


class SumRing(Ring):
    """A ``Ring`` with float64 slots (sums of arbitrary values)."""

    __slots__ = ()
    typecode = "d"


class Aggregate:
    """Compiled aggregate: spec plus compiled expressions; creates and updates per-key states."""

    __slots__ = (
        "alpha_k",
        "argf",
        "bucket",
        "ctx_key",
        "fresh",
        "kind",
        "match_fn",
        "max_values",
        "n",
        "name",
        "of_fn",
        "per",
        "push",
        "samples",
        "spec",
        "stat",
        "value_fn",
        "width",
        "window",
    )

    def __init__(
        self, spec: AggregateSpec, value_fn: Fn | None, of_fn: Fn | None, match_fn: Fn | None
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.ctx_key = "agg." + spec.name  # where the engine puts the value for thresholds
        self.kind = spec.kind
        self.window = spec.window
        self.n = spec.buckets
        self.width = spec.window / spec.buckets if spec.window else 1.0
        self.bucket = -1  # the last bucket index computed (``_index``)
        self.value_fn, self.of_fn, self.match_fn = value_fn, of_fn, match_fn
        self.per = spec.per
        self.stat = spec.stat
        self.samples = spec.samples
        self.max_values = spec.max_values
        self.alpha_k = math.log(2) / spec.window if spec.window else 0.0
        # ``arg`` without the dispatch on kind (None: the event adds no input): the engine's hot path.
        self.argf: Fn | None = None
        if self.kind in ("sum", "ewma") and value_fn is not None:
            self.argf = lambda c: float(value_fn(c))
        elif self.kind == "ratio" and match_fn is not None:
            self.argf = lambda c: bool(match_fn(c))
        elif self.kind == "distinct":
            self.argf = of_fn
        # push(state, now, arg) -> the aggregate's new value: one method per kind.
        self.push: Callable[[Any, float, Any], float] = getattr(self, "_push_" + self.kind)
        # fresh() -> an empty state: ``new`` without the dispatch on kind.
        n = self.n
        k = self.kind
        self.fresh: Callable[[], Any]
        if k in ("count", "rate"):
            self.fresh = partial(Ring, n)
        elif k == "sum":
            self.fresh = partial(SumRing, n)
        elif k == "ratio":
            self.fresh = partial(Ratio, n)
        elif k == "distinct":
            self.fresh = list
        elif k == "ewma":
            self.fresh = lambda: [0.0, -1.0]
        else:
            self.fresh = partial(Gaps, self.samples)

    def new(self) -> Any:
        """An empty state for one key."""
        return self.fresh()

    def arg(self, ctx: Mapping[str, Any]) -> Any:
        """What one event adds, from the request's features (evaluated before any state changes, so a
        runtime error leaves the window untouched): the value for sum and ewma, the matched flag for
        ratio, the value counted by distinct, None for the others."""
        k = self.kind
        if k in ("sum", "ewma"):
            return float(self.value_fn(ctx))  # type: ignore[misc]
        if k == "ratio":
            return bool(self.match_fn(ctx))  # type: ignore[misc]
        if k == "distinct":
            return self.of_fn(ctx)  # type: ignore[misc]
        return None

    def add(self, st: Any, now: float, ctx: Mapping[str, Any]) -> float:
        return self.push(st, now, self.arg(ctx))

    def _index(self, now: float) -> int:
        """The bucket of ``now``: one int object while the bucket lasts, which the rings of every key then
        share as their ``last`` (an int this large is an object of its own, 32 bytes per ring)."""
        idx = int(now // self.width)
        if idx == self.bucket:
            return self.bucket
        self.bucket = idx
        return idx

    # -- push, one per kind: add one event (``x`` from ``arg``) at ``now``, return the new value ----

    def _push_count(self, st: Ring, now: float, x: Any) -> float:
        idx = int(now // self.width)
        if idx == self.bucket:
            idx = self.bucket
        else:
            self.bucket = idx
        if idx != st.last:
            return st.add(idx, 1.0)
        slots = st.slots  # same bucket as the last event: ``Ring.add`` without its checks
        if type(slots) is not int:
            slots[idx % len(slots)] += 1.0
        total = st.total = st.total + 1.0
        return total

    def _push_rate(self, st: Ring, now: float, x: Any) -> float:
        return st.add(self._index(now), 1.0) * self.per / self.window

    def _push_sum(self, st: Ring, now: float, x: Any) -> float:
        return float(st.add(self._index(now), x))

    def _push_ratio(self, st: Ratio, now: float, x: Any) -> float:
        return st.push(self._index(now), x)

    def _push_distinct(self, st: list[Any], now: float, x: Any) -> float:
        # Small: [v0, ..., vk-1, t0, ..., tk-1], oldest sighting first. Large: [OrderedDict value -> time].
        if len(st) == 1:
            od = st[0]
            if x in od:
                od.move_to_end(x)  # the young end; pruning pops from the old end
            od[x] = now
            return float(self._prune_large(od, now))
        k = len(st) >> 1
        if k and x in st:
            try:
                i = st.index(x, 0, k)
            except ValueError:
                i = -1  # equal to a time only
            if i >= 0:
                del st[k + i]
                del st[i]
                k -= 1
        st.insert(k, x)
        st.append(now)
        k += 1
        if k > SMALL_DISTINCT:
            st[:] = [OrderedDict(zip(st[:k], st[k:], strict=True))]
            return float(self._prune_large(st[0], now))
        if st[k] < now - self.window or k > self.max_values:  # the oldest sighting is at st[k]
            k = self._prune_small(st, k, now)
        return float(k)

    def _push_ewma(self, st: list[float], now: float, x: Any) -> float:
        if st[1] < 0:
            st[0] = x
        else:
            a = 1.0 - math.exp(-self.alpha_k * max(0.0, now - st[1]))
            st[0] += a * (x - st[0])
        st[1] = now
        return float(st[0])

    def _push_interarrival(self, st: Gaps, now: float, x: Any) -> float:
        st.add(now)
        return st.stat(self.stat)

    def read(self, st: Any, now: float) -> float:
        k = self.kind
        if k == "count":
            return float(st.read(self._index(now)))
        if k == "rate":
            return st.read(self._index(now)) * self.per / self.window
        if k == "sum":
            return float(st.read(self._index(now)))
        if k == "ratio":
            return st.ratio(self._index(now))
        if k == "distinct":
            if len(st) == 1:
                return float(self._prune_large(st[0], now))
            return float(self._prune_small(st, len(st) >> 1, now))
        if k == "ewma":
            return float(st[0])
        return st.stat(self.stat)

    def _prune_small(self, st: list[Any], k: int, now: float) -> int:
        cutoff = now - self.window
        while k and (st[k] < cutoff or k > self.max_values):
            del st[k]
            del st[0]
            k -= 1
        return k

    def _prune_large(self, st: OrderedDict[Any, float], now: float) -> int:
        cutoff = now - self.window
        while st:
            oldest = next(iter(st))
            if st[oldest] >= cutoff and len(st) <= self.max_values:
                break
            st.popitem(last=False)
        return len(st)

    def last_seen(self, st: Any) -> float:
        """Latest event time in this state (for idle sweeps); -1 when unknown."""
        k = self.kind
        if k in ("count", "rate", "sum", "ratio"):
            return (st.last + 1) * self.width
        if k == "distinct":
            if len(st) == 1:
                return max(st[0].values(), default=-1.0)
            return max(st[len(st) >> 1 :], default=-1.0)
        if k == "ewma":
            return float(st[1])
        return float(st.last_t)

    def values_of(self, st: Any) -> list[Any]:
        """A distinct state's values, oldest sighting first (tests, state dumps)."""
        return list(st[0]) if len(st) == 1 else st[: len(st) >> 1]


_IRREGULAR = {"cv": 1.0, "burstiness": 0.0, "mean": 0.0, "min": 0.0}


class Gaps:
    """Last N inter-arrival gaps with running sums (the gaps array grows to N as gaps arrive)."""

    __slots__ = ("gaps", "i", "last_t", "n", "s", "size", "ss")

    def __init__(self, size: int) -> None:
        self.last_t = -1.0
        self.size = size
        self.gaps = array("d")
        self.i = 0
        self.n = 0
        self.s = 0.0
        self.ss = 0.0

    def add(self, now: float) -> None:
        if self.last_t >= 0:
            g = max(0.0, now - self.last_t)
            n = self.n
            if n < self.size:
                self.gaps.append(g)  # while filling, slot i is n: the next append
                self.n = n + 1
                self.i = n + 1
            else:
                j = self.i % n
                old = self.gaps[j]
                self.s -= old
                self.ss -= old * old
                self.gaps[j] = g
                self.i = j + 1
            self.s += g
            self.ss += g * g
        self.last_t = now

    def stat(self, which: str) -> float:
        n = self.n
        if n < 2:
            # Not enough gaps to judge regularity: report "irregular" values that do not trip thresholds.
            return _IRREGULAR[which]
        mean = self.s / n
        if which == "mean":
            return mean
        if which == "min":
            return min(self.gaps[:n])
        var = max(0.0, self.ss / n - mean * mean)
        cv = math.sqrt(var) / mean if mean > 0 else 0.0
        return cv if which == "cv" else (cv - 1.0) / (cv + 1.0)
