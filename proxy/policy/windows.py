"""Window aggregates kept per (rule, key): bounded memory, O(1) per event, on event time.

Counts, sums, rates and ratios use a ring of ``buckets`` slots covering the window with a running total
(accurate to one bucket); ``distinct`` keeps an insertion-ordered dict of value -> last seen, pruned
from the oldest end; ``ewma`` is time-decayed with a half-life; ``interarrival`` keeps the last N gaps
with running sums (mean, coefficient of variation, burstiness ``(cv-1)/(cv+1)``, minimum).
``arg(ctx)`` computes what one event adds (pure), ``push(state, now, arg)`` adds it and returns the new
value, ``read(state, now)`` reads without adding. The Redis rule store (``proxy.policy.store_redis``)
mirrors these operations in ``proxy/state/lua/rules.lua``.
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from proxy.policy.spec import AggregateSpec

Fn = Callable[[Mapping[str, Any]], Any]


_ZEROS: dict[tuple[str, int], array[Any]] = {}


class Ring:
    """Sum of values over the last ``window`` seconds in ``n`` buckets."""

    __slots__ = ("last", "slots", "total")

    def __init__(self, n: int, typecode: str = "f") -> None:
        self.last = -1
        self.total = 0.0
        zero = _ZEROS.get((typecode, n))
        if zero is None:
            zero = _ZEROS[(typecode, n)] = array(typecode, bytes(n * array(typecode).itemsize))
        self.slots = zero[:]

    def _advance(self, idx: int) -> None:
        last = self.last
        if idx <= last:
            return
        slots = self.slots
        n = len(slots)
        if last < 0 or idx - last >= n:
            for i in range(n):
                slots[i] = 0
            self.total = 0.0
        else:
            total = self.total
            for b in range(last + 1, idx + 1):
                j = b % n
                total -= slots[j]
                slots[j] = 0
            self.total = total if total > 1e-9 else 0.0
        self.last = idx

    def add(self, idx: int, v: float) -> float:
        self._advance(idx)
        if idx < self.last:  # late event older than the ring's head: count it in the current bucket
            idx = self.last
        self.slots[idx % len(self.slots)] += v
        self.total += v
        return self.total

    def read(self, idx: int) -> float:
        self._advance(idx)
        return self.total


class Aggregate:
    """Compiled aggregate: spec plus compiled expressions; creates and updates per-key states."""

    __slots__ = (
        "alpha_k",
        "argf",
        "kind",
        "match_fn",
        "max_values",
        "n",
        "name",
        "of_fn",
        "per",
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
        self.kind = spec.kind
        self.window = spec.window
        self.n = spec.buckets
        self.width = spec.window / spec.buckets if spec.window else 1.0
        self.value_fn, self.of_fn, self.match_fn = value_fn, of_fn, match_fn
        self.per = spec.per
        self.stat = spec.stat
        self.samples = spec.samples
        self.max_values = spec.max_values
        self.alpha_k = math.log(2) / spec.window if spec.window else 0.0
        # ``arg`` without the dispatch on kind (None: the event adds no input): the engine's hot path.
        self.argf: Fn | None = None
        if self.kind in ("sum", "ewma", "ratio", "distinct"):
            self.argf = self.arg
        if self.kind == "distinct":
            self.argf = of_fn

    def new(self) -> Any:
        k = self.kind
        if k in ("count", "rate"):
            return Ring(self.n, "f")
        if k == "sum":
            return Ring(self.n, "d")
        if k == "ratio":
            return [Ring(self.n, "f"), Ring(self.n, "f")]
        if k == "distinct":
            return OrderedDict()
        if k == "ewma":
            return [0.0, -1.0]
        return Gaps(self.samples)

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

    def push(self, st: Any, now: float, x: Any) -> float:
        """Add one event (``x`` from ``arg``) at ``now``; returns the aggregate's new value."""
        k = self.kind
        if k == "count":
            return float(st.add(int(now // self.width), 1.0))
        if k == "rate":
            return st.add(int(now // self.width), 1.0) * self.per / self.window
        if k == "sum":
            return float(st.add(int(now // self.width), x))
        if k == "ratio":
            idx = int(now // self.width)
            den = st[1].add(idx, 1.0)
            num = st[0].add(idx, 1.0) if x else st[0].read(idx)
            return num / den if den else 0.0
        if k == "distinct":
            if x in st:
                st.move_to_end(x)  # the young end; pruning pops from the old end
            st[x] = now
            return float(self._prune(st, now))
        if k == "ewma":
            if st[1] < 0:
                st[0] = x
            else:
                a = 1.0 - math.exp(-self.alpha_k * max(0.0, now - st[1]))
                st[0] += a * (x - st[0])
            st[1] = now
            return float(st[0])
        st.add(now)
        return st.stat(self.stat)

    def read(self, st: Any, now: float) -> float:
        k = self.kind
        if k == "count":
            return float(st.read(int(now // self.width)))
        if k == "rate":
            return st.read(int(now // self.width)) * self.per / self.window
        if k == "sum":
            return float(st.read(int(now // self.width)))
        if k == "ratio":
            idx = int(now // self.width)
            den = st[1].read(idx)
            return st[0].read(idx) / den if den else 0.0
        if k == "distinct":
            return float(self._prune(st, now))
        if k == "ewma":
            return float(st[0])
        return st.stat(self.stat)

    def _prune(self, st: OrderedDict[Any, float], now: float) -> int:
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
        if k in ("count", "rate", "sum"):
            return (st.last + 1) * self.width
        if k == "ratio":
            return (st[1].last + 1) * self.width
        if k == "distinct":
            return max(st.values(), default=-1.0)
        if k == "ewma":
            return float(st[1])
        return float(st.last_t)


class Gaps:
    """Last N inter-arrival gaps with running sums."""

    __slots__ = ("gaps", "i", "last_t", "n", "s", "ss")

    def __init__(self, size: int) -> None:
        self.last_t = -1.0
        zero = _ZEROS.get(("d", size))
        if zero is None:
            zero = _ZEROS[("d", size)] = array("d", bytes(8 * size))
        self.gaps = zero[:]
        self.i = 0
        self.n = 0
        self.s = 0.0
        self.ss = 0.0

    def add(self, now: float) -> None:
        if self.last_t >= 0:
            g = max(0.0, now - self.last_t)
            size = len(self.gaps)
            j = self.i % size
            if self.n == size:
                old = self.gaps[j]
                self.s -= old
                self.ss -= old * old
            else:
                self.n += 1
            self.gaps[j] = g
            self.s += g
            self.ss += g * g
            self.i = j + 1
        self.last_t = now

    def stat(self, which: str) -> float:
        n = self.n
        if n < 2:
            # Not enough gaps to judge regularity: report "irregular" values that do not trip thresholds.
            return {"cv": 1.0, "burstiness": 0.0, "mean": 0.0, "min": 0.0}[which]
        mean = self.s / n
        if which == "mean":
            return mean
        if which == "min":
            return min(self.gaps[:n])
        var = max(0.0, self.ss / n - mean * mean)
        cv = math.sqrt(var) / mean if mean > 0 else 0.0
        return cv if which == "cv" else (cv - 1.0) / (cv + 1.0)
