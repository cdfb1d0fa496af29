"""The shaper: compiled limits, one batched state call per request, fair delays, reconciliation, pacing.

Per request: pick the limits whose ``match`` fits, build each one's state key from its scope, and send
every check in **one** ``apply`` (all or nothing for enforced limits, shadow limits counted
alongside). On the embedded backend this happens synchronously (``admit_now``: no coroutine, no
awaits); ``admit`` is the general path (a remote backend, or a limit said no). A request over a limit
that may delay waits in that key's fair queue (``queue.DelayQueues``). After the response
(``finish_now`` / ``finish``) token reservations are reconciled with the real usage (or with what was
streamed, for streams cut short) and concurrency leases are released — whatever happened to the
request — and a queue waiting for one of those slots is told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.shaping.fast import FastPath
from proxy.shaping.headers import HeaderPlan, retry_after
from proxy.shaping.metrics import ShapeMetrics
from proxy.shaping.queue import DelayQueues, Sleep
from proxy.shaping.request import ShapeState, Verdict, actual_usage, apply_controls, is_anthropic
from proxy.shaping.scopes import (
    CONCURRENCY,
    PACE,
    REQUESTS,
    SCOPE_GETTERS,
    TOKENS,
    CompiledLimit,
    ip_prefix,
    multiplier_key,
)
from proxy.shaping.slow import over_limit
from proxy.shaping.spec import LimitSpec
from proxy.state.base import (
    ACQUIRE,
    ADJUST,
    GCRA,
    RELEASE,
    SEP,
    Op,
    Result,
    StateBackend,
    gcra,
    set_multiplier,
)

if TYPE_CHECKING:
    from proxy.exchange import Exchange

log = logging.getLogger("distillguard.shaping")

INF = float("inf")
_NO_PLAN: Any = object()
_UNBUILT = "\x00unbuilt"  # a scope part not built yet (None: built, the request has no such value)
_QUEUED_KINDS = (REQUESTS, TOKENS, CONCURRENCY)


class Shaper:
    """All compiled limits plus the backend, clock and sleep they run on. Holds no per-request state."""

    def __init__(
        self,
        limits: Sequence[LimitSpec],
        backend: StateBackend,
        *,
        clock: Clock = SYSTEM_CLOCK,
        metrics: ShapeMetrics | None = None,
        sleep: Sleep = asyncio.sleep,
        throttle_scopes: Sequence[str] = ("account", "key"),
        fail_open: bool = True,
        fast_path: bool = True,
    ) -> None:
        """``fast_path``: on a ``MemoryBackend``, serve the common case through ``proxy.shaping.fast``
        (``fast`` is None when off or when the limits need the general path)."""
        self.backend = backend
        self.clock = clock
        # the system clock read without its method's frame (an injected clock is always asked)
        self._now = time.time if type(clock) is Clock else clock.now
        self.metrics = metrics or ShapeMetrics()
        self.sleep = sleep
        self.fail_open = fail_open
        self.throttle_scopes = tuple((s, SCOPE_GETTERS[s]) for s in throttle_scopes)
        self._mult_prefixes = tuple((multiplier_key(s, ""), get) for s, get in self.throttle_scopes)
        self.limits: list[CompiledLimit] = []
        self.pace_limits: list[CompiledLimit] = []
        scopes: dict[tuple[str, ...], int] = {}
        for spec in limits:
            queues = None
            if spec.kind in _QUEUED_KINDS and spec.delay_max > 0 and not spec.shadow:
                gauge = self.metrics.queue_depth.labels(spec.name)
                queues = DelayQueues(spec.name, backend, clock, sleep, max_delay=spec.delay_max,
                                     max_queue=spec.queue, on_depth=gauge.set)
            if spec.kind == PACE:
                self.pace_limits.append(CompiledLimit(spec, self.metrics, None))
            else:
                sid = scopes.setdefault(spec.scope, len(scopes))
                self.limits.append(CompiledLimit(spec, self.metrics, queues, 1 << len(self.limits), sid))
        self._unbuilt: list[str | None] = [_UNBUILT] * len(scopes)
        self.has_shadow = any(cl.shadow for cl in self.limits)
        self.has_queues = any(cl.queues is not None for cl in self.limits)
        # A backend whose ``apply`` never awaits may expose it synchronously as ``apply_now``.
        self._apply_sync = getattr(backend, "apply_now", None)
        # A remote backend that settles off the request's path (``FaultTolerantBackend.settle``).
        self._settle = None if self._apply_sync is not None else getattr(backend, "settle", None)
        # a backend that knows no multiplier was ever set saves building their keys per request
        self._mult_hint = backend if hasattr(backend, "may_have_multipliers") else None
        # admissions by the set of enforced limits that admitted a request (one count per request)
        self._admits = self.metrics.hot.by_mask([(cl.spec.name, cl.spec.mode) for cl in self.limits])
        self._enforced = sum(cl.bit for cl in self.limits if not cl.shadow)
        # header plans by the set (bit mask) of limits a request applied
        self._header_plans: dict[int, HeaderPlan | None] = {}
        self._all_mask = (1 << len(self.limits)) - 1
        self.fast = FastPath.build(self) if fast_path else None

    # -- admission --------------------------------------------------------------------------------

    def new_state(self) -> ShapeState:
        return ShapeState(self)

    def admit_now(self, ex: Exchange, st: ShapeState) -> bool:
        """Plan and, on the embedded backend, decide synchronously. True: admitted at once (``st``
        holds what ``finish`` needs). False: not decided here (a remote backend, a key with waiters,
        or a limit said no): await ``admit(ex, st)``, which goes on from where this stopped."""
        ops = self._plan(ex, st)
        if not ops:
            return True
        sync = self._apply_sync
        if sync is None:
            return False
        if self.has_queues and self._queued(st):
            return False
        now = st.now = self._now()
        try:
            results = sync(ops, now, all_or_nothing=True)
        except Exception:
            return False  # ``admit`` retries through ``apply`` and reports the failure
        st.results = results
        if self.has_shadow:
            self.count_shadow(st.plan, results)
        for r in results:
            if not r[0]:
                break
        else:
            self.admitted(st, results)
            return True
        plan = st.plan
        for i, r in enumerate(results):
            if not r[0] and not plan[i][0].shadow:  # the first limit that says no
                if plan[i][0].queues is None:  # no queue to wait in: rejected (``admit`` returns it)
                    st.verdict = self.reject(ex, st, results, i)
                break
        return False

    async def admit(self, ex: Exchange, st: ShapeState | None = None) -> Verdict:
        """Decide (and if need be wait) for one request. Pass ``st`` already stored in ``ex.state`` so
        a cancellation at any await still lets ``finish`` release what was taken."""
        if st is None:
            st = ShapeState(self)
        if st.ops is None and self.admit_now(ex, st):
            return Verdict(True, st)
        if st.verdict is not None:
            return st.verdict
        ops = st.ops
        assert ops is not None
        if not ops:
            return Verdict(True, st)
        plan = st.plan
        results = st.results
        if results is None:
            now = st.now = self.clock.now()
            if self.has_queues:
                # While a key has waiters, newcomers queue behind them (round-robin) instead of racing
                # the dispatcher for the next free slot.
                forced = [i for i, (cl, key, _) in enumerate(plan)
                          if cl.queues is not None and cl.queues.queued(key)]
                if forced:
                    results = [(i not in forced, 0.0, 0.0, 0.0, 1.0) for i in range(len(ops))]
                    return await over_limit(self, ex, st, results, forced, fresh=True)
            apply = self.backend.apply
            if st.local:  # the combined call just failed: no second try (``proxy.shaping.remote``)
                apply = getattr(self.backend, "apply_local", apply)
            try:
                results = st.results = await apply(ops, now, all_or_nothing=True)
            except Exception:
                return self.state_failed(st)
            if self.has_shadow:
                self.count_shadow(plan, results)
        blocking = [i for i, r in enumerate(results) if not r[0] and not plan[i][0].shadow]
        if not blocking:
            self.admitted(st, results)
            return Verdict(True, st)
        return await over_limit(self, ex, st, list(results), blocking)

    def _plan(self, ex: Exchange, st: ShapeState, rules_pending: bool = False) -> list[Op]:
        """The state ops of this request (also kept in ``st.ops``; ``st.plan`` says whose they are).
        ``rules_pending``: the rules have not decided yet (their controls are taken later, see
        ``proxy.shaping.remote``): plan at throttle 1."""
        controls = ex.controls
        if controls and not rules_pending:
            throttle = apply_controls(controls, st)
            st.throttle = throttle
            cost1 = 1.0 / throttle
        else:
            cost1 = 1.0  # ``st.throttle`` keeps its default (1.0)
        hint = self._mult_hint
        if self._mult_prefixes and (hint is None or hint.may_have_multipliers):
            mult_keys: tuple[str, ...] = tuple(
                prefix + (v if SEP not in v else v.replace(SEP, ""))
                for prefix, get in self._mult_prefixes if (v := get(ex)) is not None
            )
        else:
            mult_keys = ()
        ops: list[Op] = []
        plan: list[tuple[CompiledLimit, str, float]] = []
        st.plan = plan
        leases = None
        max_tokens: Any = _UNBUILT  # read once, for the first token limit that needs it
        built: list[str | None] = self._unbuilt.copy()  # per distinct scope: limits sharing it build once
        for cl in self.limits:
            if cl.match and not cl.matches(ex):
                continue
            suffix = built[cl.sid]
            if suffix is _UNBUILT:
                suffix = built[cl.sid] = cl.build(ex)
            if suffix is None:
                continue
            key = cl.prefix + suffix
            kind = cl.kind
            if kind is REQUESTS:
                ops.append((GCRA, key, cl.interval, cl.capacity, cost1, cl.shadow_wait, mult_keys, True,
                            cl.required))
                plan.append((cl, key, 1.0))
            elif kind is TOKENS:
                # the reservation before the request: input estimate and/or output cap (or ``reserve``)
                est = st.input_estimate
                if not est:
                    est = st.input_estimate = max(1, len(ex.body) // 4)
                count = cl.count
                if count == "input":
                    raw = float(est)
                else:
                    if max_tokens is _UNBUILT:
                        max_tokens = ex.max_tokens
                    out = max_tokens or cl.reserve
                    if count == "total":
                        raw = float(est + out)
                    elif count == "output":
                        raw = float(out)
                    else:
                        raw = float(ex.view.reasoning_budget or out)
                if st.tokens:
                    st.tokens.append(len(ops))
                else:
                    st.tokens = [len(ops)]
                ops.append((GCRA, key, cl.interval, cl.capacity, (raw if raw < cl.capacity else cl.capacity) * cost1,
                            cl.shadow_wait, mult_keys, True, cl.required))
                plan.append((cl, key, raw))
                st.count_stream = True
            else:
                ops.append((ACQUIRE, key, ex.request_id, cl.max_inflight, cl.lease_ttl, cl.required))
                plan.append((cl, key, 1.0))
                # released in finish whatever happens (releasing a lease not held is a no-op)
                if leases is None:
                    leases = st.leases = [(cl, key)]
                else:
                    leases.append((cl, key))
        if self.pace_limits:
            pace_keys = [(cl, k) for cl in self.pace_limits if not cl.shadow and (k := cl.key(ex)) is not None]
            if pace_keys:
                st.pace_keys = pace_keys
                st.paced = st.count_stream = True
        st.ops = ops
        return ops

    def _queued(self, st: ShapeState) -> bool:
        for cl, key, _ in st.plan:
            if cl.queues is not None and cl.queues.queued(key):
                return True
        return False

    def admitted(self, st: ShapeState, results: Sequence[Result]) -> None:
        plan = st.plan
        if len(plan) == len(self.limits):  # every limit applied: the usual case
            mask = self._all_mask
        else:
            mask = 0
            for cl, _, _ in plan:
                mask |= cl.bit
        st.mask = mask
        mask &= self._enforced
        if mask:
            admits = self._admits
            admits[mask] = admits.get(mask, 0) + 1
        if not st.tokens:
            return
        ops = st.ops
        assert ops is not None
        for i in st.tokens:
            cl, key, raw = plan[i]
            r = results[i]
            if not r[0]:
                continue
            f = r[4]
            charge = (cl, key, ops[i][4] / f, st.throttle * f)
            if st.charges:
                st.charges.append(charge)
            else:
                st.charges = [charge]
            if cl.cuts:
                spec = cl.spec
                room = int(r[2] * st.throttle * f + min(raw, spec.capacity))
                if spec.count == "total":
                    room -= st.input_estimate
                if st.budget is None or room < st.budget:
                    st.budget, st.budget_limit = max(0, room), spec.name

    def reject(self, ex: Exchange, st: ShapeState, results: Sequence[Result], i: int) -> Verdict:
        """The verdict for limit ``i`` of the plan saying no (nothing was taken: all or nothing)."""
        cl = st.plan[i][0]
        cl.counts[1] += 1
        r = results[i]
        retry = r[1] if cl.kind is not CONCURRENCY else 1.0
        headers: dict[str, str] = {}
        # formatted afresh: a rejection's retry time rarely repeats, caching it would only churn
        self._write_headers(headers, st, results, self._now(), is_anthropic(ex), cache=False)
        headers.update(retry_after(retry))
        st.charges = []
        return Verdict(False, st, cl.spec.name, max(retry, 0.001), headers)

    def write_headers(self, ex: Exchange, st: ShapeState) -> None:
        """Put this admitted request's limit headers into ``ex.reply_headers`` (before the first byte)."""
        results = st.results
        if results is None:
            return
        d = ex.dialect
        anthropic = d is not None and d.name.startswith("anthropic")
        hp = self._header_plans.get(st.mask, _NO_PLAN)
        if hp is _NO_PLAN:  # first request with this set of limits
            self._write_headers(ex.reply_headers, st, results, st.now, anthropic)
        elif hp is not None:
            hp.write(ex.reply_headers, results, st.now, anthropic)

    def _write_headers(self, h: dict[str, str], st: ShapeState, results: Sequence[Result], now: float,
                       anthropic: bool, *, cache: bool = True) -> None:
        plan = st.plan
        mask = st.mask
        if mask < 0:  # not admitted (a rejection): the set of limits this request applied
            mask = 0
            for cl, _, _ in plan:
                mask |= cl.bit
        hp = self._header_plans.get(mask, _NO_PLAN)
        if hp is _NO_PLAN:
            shown = [(cl.spec, i) for i, (cl, _, _) in enumerate(plan) if cl.shows]
            hp = self._header_plans[mask] = HeaderPlan(shown) if shown else None
        if hp is not None:
            if cache:
                hp.write(h, results, now, anthropic)
            else:
                hp.format(h, results, now, anthropic)

    def count_shadow(self, plan: list[tuple[CompiledLimit, str, float]], results: Sequence[Result]) -> None:
        for (cl, key, _), r in zip(plan, results, strict=True):
            if not cl.shadow:
                continue
            if not r[0]:
                cl.counts[1] += 1
                log.info("shadow limit %s would reject %s (retry in %.3fs)", cl.spec.name, key, r[1])
            else:
                cl.counts[0] += 1
                if r[1] > 0:
                    cl.m_delayed.inc()
                    cl.m_delay.observe(r[1])

    def state_failed(self, st: ShapeState) -> Verdict:
        """The verdict when the backend failed (call from an ``except`` block: it logs the error)."""
        self.metrics.state_errors.inc()
        log.exception("state backend failed; shaping %s", "skipped" if self.fail_open else "refused")
        st.results = None  # no headers from a decision that was not taken
        if self.fail_open:
            return Verdict(True, st)
        return Verdict(False, st, "state_unavailable", 1.0)

    # -- after the response -------------------------------------------------------------------------

    def _finish_ops(self, st: ShapeState, ex: Exchange) -> list[Op]:
        st.done = True
        ops: list[Op] = []
        if st.leases:
            rid = ex.request_id
            for _, key in st.leases:
                ops.append((RELEASE, key, rid))
        for cl, key, charged, divisor in st.charges:
            units = actual_usage(ex, st, cl.spec.count) / divisor - charged
            if units > 1e-9 or units < -1e-9:
                ops.append((ADJUST, key, cl.interval, cl.capacity, units))
        return ops

    def finish_now(self, st: ShapeState, ex: Exchange) -> bool:
        """``finish`` without a coroutine on the embedded backend; False when ``finish`` must run."""
        if st.done:
            return True
        if st.fast:
            self.fast.finish(st, ex)  # type: ignore[union-attr]
            return True
        sync = self._apply_sync
        if sync is None and (st.leases or st.charges):
            if self._settle is None:
                return False
            self._settle(self._finish_ops(st, ex), self.clock.now())
            if self.has_queues:
                self._notify(st)
            return True
        ops = self._finish_ops(st, ex)
        if ops and sync is not None:
            try:
                sync(ops, self._now())
            except Exception:
                self.metrics.state_errors.inc()
                log.exception("state backend failed while releasing; leases expire by their TTL")
        if self.has_queues:
            self._notify(st)
        return True

    async def finish(self, st: ShapeState, ex: Exchange) -> None:
        """Reconcile token reservations with real usage and release leases. Idempotent."""
        if st.done or self.finish_now(st, ex):
            return
        ops = self._finish_ops(st, ex)
        try:
            await self.backend.apply(ops, self.clock.now())
        except Exception:
            self.metrics.state_errors.inc()
            log.exception("state backend failed while releasing; leases expire by their TTL")
        self._notify(st)

    @staticmethod
    def _notify(st: ShapeState) -> None:
        for cl, key in st.leases:
            if cl.queues is not None:
                cl.queues.notify(key)

    # -- pacing ----------------------------------------------------------------------------------------

    async def pace(self, st: ShapeState) -> float:
        n = st.pending
        if n <= 0 or not st.paced:
            return 0.0
        st.pending = 0
        now = self.clock.now()
        delay = 0.0
        if st.pace_interval > 0.0:
            st.pace_due = max(st.pace_due, now) + n * st.pace_interval
            delay = st.pace_due - now
        if st.pace_keys:
            ops = [gcra(k, cl.spec.interval, cl.spec.capacity, float(n), INF) for cl, k in st.pace_keys]
            try:
                for r in await self.backend.apply(ops, now):
                    delay = max(delay, r[1])
            except Exception:
                self.metrics.state_errors.inc()
                log.exception("state backend failed while pacing")
        if delay > 0.0:
            self.metrics.paced.inc(delay)
            await self.sleep(delay)
        return delay

    # -- adaptive throttling ----------------------------------------------------------------------------

    async def set_multiplier(
        self, scope: str, value: str, factor: float, duration: float, recover: float = 0.0
    ) -> None:
        """Scale request and token limits for every request of ``scope`` = ``value`` (an account id,
        a key id) by ``factor`` (0.25 = a quarter of normal) for ``duration`` seconds, then ramp
        back to normal over ``recover`` seconds. Shared through the backend (all replicas see it)."""
        if scope not in dict(self.throttle_scopes):
            raise ValueError(f"throttle scope {scope!r} is not one of {[s for s, _ in self.throttle_scopes]}")
        if not factor > 0:
            raise ValueError("a throttle factor must be > 0")
        now = self.clock.now()
        op = set_multiplier(multiplier_key(scope, value), float(factor), now + duration, recover)
        await self.backend.apply([op], now)

    async def close(self) -> None:
        for cl in self.limits:
            if cl.queues is not None:
                await cl.queues.close()


__all__ = ["CompiledLimit", "ShapeState", "Shaper", "Verdict", "ip_prefix", "multiplier_key"]
