"""Window aggregates kept per (rule, key): bounded memory, O(1) per event, on event time.

Counts, sums, rates and ratios use a ring of ``buckets`` slots covering the window with a running total
(accurate to one bucket); ``distinct`` keeps its values ordered by last sighting, pruned from the oldest
end; ``ewma`` is time-decayed with a half-life; ``interarrival`` keeps the last N gaps with running sums
(mean, coefficient of variation, burstiness ``(cv-1)/(cv+1)``, minimum).
``arg(ctx)`` computes what one event adds (pure), ``push(state, now, arg)`` adds it and returns the new
value, ``read(state, now)`` reads without adding. The Redis rule store (``proxy.policy.store_redis``)
mirrors these operations in ``proxy/state/lua/rules.lua``.

Each state is as few objects as it can be, so per-account state stays small (``bench_rules.py``'s memory
figures): a ring or a ratio is one flat uint32 array (a header, then slots from the oldest bucket still
holding an event to the head: none while every event fell in one bucket, at most ``buckets``;
``proxy.policy.rings``), the gaps of ``interarrival`` and their running sums one array('d') that grows to
``samples`` (``proxy.policy.gaps``), and a distinct set
of up to ``SMALL_DISTINCT`` values one flat list of values then sighting times (the times are the
requests' ``now`` objects, one per request whichever sets it updates). Beyond, ``[tier]``: a plain dict
value -> last sighting in sighting order (~25 B a value against ~73 for an ``OrderedDict``; copied afresh
when its deleted entries grew its table, ``distinct.FRESH_SIZE``) holding the ``EXACT_DISTINCT`` most
recently seen values. A set with a larger ``max_values`` that spills a value still inside its window
becomes ``[tier, spill time, DistinctSample]``: the sample (exact up to ``SAMPLE_SIZE`` values, a hash
sample past it) counts until every spilled value has left the window, then the tier counts exactly
again. No ring or gaps state holds a float or int object of its own. The rule store keeps the states of
the rules keyed by one feature in one row per key value (``proxy.policy.store.row_layout``).
Each kind's ``push`` is a method of its own, bound once (``Aggregate.push``), so the hot path does not
dispatch on the kind.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

from proxy.policy.distinct import FRESH_SIZE, DistinctSample
from proxy.policy.gaps import Gaps
from proxy.policy.rings import MASK, Ratio, Ring, SumRing
from proxy.policy.spec import AggregateSpec

__all__ = ["EXACT_DISTINCT", "MASK", "SMALL_DISTINCT", "Aggregate", "Gaps", "Ratio", "Ring", "SumRing"]

Fn = Callable[[Mapping[str, Any]], Any]
SMALL_DISTINCT = 16  # values kept in a flat list (32 slots: 312 B; a dict of 16 takes 632); more move to a dict
EXACT_DISTINCT = 64  # values a distinct set's dict keeps (its most recent); past it the sample counts

_getsizeof = sys.getsizeof


class Aggregate:
    """Compiled aggregate: spec plus compiled expressions; creates and updates per-key states."""

    __slots__ = ("alpha_k", "argf", "cap", "ctx_key", "fresh", "kind", "match_fn", "max_values", "n", "name", "of_fn",
                 "per", "push", "samples", "spec", "stat", "value_fn", "width", "window")

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
        self.value_fn, self.of_fn, self.match_fn = value_fn, of_fn, match_fn
        self.per = spec.per
        self.stat = spec.stat
        self.samples = spec.samples
        self.max_values = spec.max_values
        self.cap = min(EXACT_DISTINCT, spec.max_values)  # values a large distinct set's dict keeps
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
            self.fresh = Ring.maker(n)
        elif k == "sum":
            self.fresh = SumRing.maker(n)
        elif k == "ratio":
            self.fresh = Ratio.maker(n)
        elif k == "distinct":
            self.fresh = list
        elif k == "ewma":
            self.fresh = lambda: [0.0, -1.0]
        else:
            self.fresh = Gaps.maker(self.samples)

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
        """The bucket of ``now``, modulo 2**32 (as the rings keep it)."""
        return int(now // self.width) & MASK

    # -- push, one per kind: add one event (``x`` from ``arg``) at ``now``, return the new value ----

    def _push_count(self, st: Ring, now: float, x: Any) -> float:
        idx = int(now // self.width) & MASK
        if idx != st[1]:
            st.step(idx)
        if len(st) > 3:  # ``Ring.add`` inlined: the hot path of the default pack
            st[-1] += 1
        total = st[0] = st[0] + 1
        return float(total)

    def _push_rate(self, st: Ring, now: float, x: Any) -> float:
        return st.add(self._index(now), 1) * self.per / self.window

    def _push_sum(self, st: Ring, now: float, x: Any) -> float:
        return float(st.add(self._index(now), x))

    def _push_ratio(self, st: Ratio, now: float, x: Any) -> float:
        return st.push(self._index(now), x)

    def _push_distinct(self, st: list[Any], now: float, x: Any) -> float:
        # Small: [v0, ..., vk-1, t0, ..., tk-1], oldest sighting first (the times are the requests' own
        # ``now`` objects, shared by every distinct set a request updates). Large: [dict value -> time]
        # or [dict, spill time, DistinctSample] (odd lengths: a small list is never odd).
        if len(st) & 1:
            tier = st[0]
            n = len(tier)
            if _getsizeof(tier) > FRESH_SIZE[n + n // 3]:  # deleted entries grew its table (``FRESH_SIZE``)
                tier = st[0] = dict(tier.items())
            known = x in tier
            if known:
                del tier[x]  # to the young end; pruning pops from the old end
            tier[x] = now
            if len(st) == 3:
                st[2].add(x, now, now - self.window, known)
            elif len(tier) <= self.cap and tier[next(iter(tier))] >= now - self.window:
                return float(len(tier))  # nothing to drop: the usual case
            return float(self._prune_large(st, now))
        k = len(st) >> 1
        if k:
            if st[k - 1] == x:  # seen last: only its time moves
                st[-1] = now
                if st[k] < now - self.window:
                    k = self._prune_small(st, k, now)
                return float(k)
            try:  # (among the values only: comparing a value to the times costs more)
                i = st.index(x, 0, k - 1)
            except ValueError:
                i = -1
            if i >= 0:
                del st[k + i]
                del st[i]
                k -= 1
        st.insert(k, x)
        st.append(now)
        k += 1
        if k > SMALL_DISTINCT:
            st[:] = [dict(zip(st[:k], st[k:], strict=True))]
            return float(self._prune_large(st, now))
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
            if len(st) & 1:
                return float(self._prune_large(st, now))
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

    def _prune_large(self, st: list[Any], now: float) -> float:
        """Drop the tier's values past the window or past its cap, and count. A value spilled by the cap
        while still inside the window hands the count to a sample (created from the tier) until the
        last spilled value leaves the window: exact again."""
        tier: dict[Any, float] = st[0]
        cutoff = now - self.window
        cap = self.cap
        while tier:
            oldest = next(iter(tier))
            t = tier[oldest]
            if t >= cutoff and len(tier) <= cap:
                break
            del tier[oldest]
            if t >= cutoff and self.max_values > cap:  # spilled while live
                if len(st) == 1:
                    st += [t, DistinctSample(tier, oldest, t)]
                else:
                    st[1] = t
        if len(st) == 1:
            return len(tier)
        if st[1] < cutoff:  # every spilled value has left the window: the tier holds them all
            del st[1:]
            return len(tier)
        return min(max(st[2].count(cutoff), len(tier)), self.max_values)

    def last_seen(self, st: Any, now: float = 0.0) -> float:
        """Latest event time in this state (for idle sweeps, which pass ``now``: a ring keeps its bucket
        modulo 2**32); -1 when unknown."""
        k = self.kind
        if k in ("count", "rate", "sum", "ratio"):
            if not st[0]:
                return -1.0
            cur = int(now // self.width)
            return (cur - ((cur - int(st[1])) & MASK) + 1) * self.width
        if k == "distinct":
            if len(st) & 1:
                return max(st[0].values(), default=-1.0)
            return max(st[len(st) >> 1 :], default=-1.0)
        if k == "ewma":
            return float(st[1])
        return float(st.last_t)

    def values_of(self, st: Any) -> list[Any]:
        """A distinct state's values, oldest sighting first (tests, state dumps)."""
        return list(st[0]) if len(st) & 1 else st[: len(st) >> 1]
