"""The shaper: compiled limits, one batched state call per request, fair delays, reconciliation, pacing.

Per request (``admit``): pick the limits whose ``match`` fits, build each one's state key from its
scope, and send every check in **one** ``backend.apply`` (all or nothing for enforced limits, shadow
limits counted alongside). Over a requests limit that may delay, the request waits in that key's
fair queue (``queue.DelayQueues``). After the response (``finish``) token reservations are reconciled
with the real usage (or with what was streamed, for streams cut short) and concurrency leases are
released — whatever happened to the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.shaping.headers import Reading, limit_headers
from proxy.shaping.metrics import ShapeMetrics
from proxy.shaping.queue import DelayQueues, Sleep
from proxy.shaping.request import Charge, ShapeState, Verdict, actual_usage, is_anthropic
from proxy.shaping.scopes import SCOPE_GETTERS, CompiledLimit, ip_prefix, multiplier_key
from proxy.shaping.spec import LimitSpec
from proxy.state.base import (
    SEP,
    Acquire,
    Adjust,
    Gcra,
    Op,
    Release,
    Result,
    SetMultiplier,
    StateBackend,
)

if TYPE_CHECKING:
    from proxy.exchange import Exchange

log = logging.getLogger("distillguard.shaping")

INF = float("inf")


# --------------------------------------------------------------------------- the shaper


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
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.metrics = metrics or ShapeMetrics()
        self.sleep = sleep
        self.fail_open = fail_open
        self.throttle_scopes = tuple((s, SCOPE_GETTERS[s]) for s in throttle_scopes)
        self._mult_prefixes = tuple((multiplier_key(s, ""), get) for s, get in self.throttle_scopes)
        self.limits: list[CompiledLimit] = []
        self.pace_limits: list[CompiledLimit] = []
        for spec in limits:
            queues = None
            if spec.kind == "requests" and spec.delay_max > 0 and not spec.shadow:
                gauge = self.metrics.queue_depth.labels(spec.name)
                queues = DelayQueues(spec.name, backend, clock, sleep, max_delay=spec.delay_max,
                                     max_queue=spec.queue, on_depth=gauge.set)
            cl = CompiledLimit(spec, self.metrics, queues)
            (self.pace_limits if spec.kind == "pace" else self.limits).append(cl)
        self.has_shadow = any(cl.shadow for cl in self.limits)
        self.has_queues = any(cl.queues is not None for cl in self.limits)
        # A backend whose ``apply`` never awaits may expose it synchronously as ``apply_now``.
        self._apply_sync = getattr(backend, "apply_now", None)

    # -- admission --------------------------------------------------------------------------------

    def new_state(self) -> ShapeState:
        return ShapeState(self)

    async def admit(self, ex: Exchange, st: ShapeState | None = None) -> Verdict:
        """Decide (and if need be wait) for one request. Pass ``st`` already stored in ``ex.state`` so
        a cancellation at any await still lets ``finish`` release what was taken."""
        if st is None:
            st = ShapeState(self)
        controls = ex.controls
        throttle = float(controls.get("throttle") or 1.0)
        if throttle <= 0:
            throttle = 1e-6
        if getattr(self.backend, "may_have_multipliers", True):
            mult_keys = tuple(
                prefix + (v if SEP not in v else v.replace(SEP, ""))
                for prefix, get in self._mult_prefixes if (v := get(ex)) is not None
            )
        else:
            mult_keys = ()
        ops: list[Op] = []
        applied: list[tuple[CompiledLimit, str, float]] = []  # (limit, key, raw cost)
        suffixes: dict[tuple[str, ...], str | None] = {}  # limits sharing a scope build its part once
        for cl in self.limits:
            scope = cl.spec.scope
            if scope in suffixes:
                suffix = suffixes[scope]
                if suffix is None or (cl.match and not cl.matches(ex)):
                    continue
                key = cl.prefix + suffix
            else:
                if cl.match and not cl.matches(ex):
                    continue
                suffix = suffixes[scope] = cl.suffix(ex)
                if suffix is None:
                    continue
                key = cl.prefix + suffix
            spec = cl.spec
            kind = cl.kind
            if kind == "requests":
                ops.append(Gcra(key, spec.interval, spec.capacity, 1.0 / throttle,
                                spec.delay_max if cl.shadow else 0.0, mult_keys, True, not cl.shadow))
                applied.append((cl, key, 1.0))
            elif kind == "tokens":
                raw = float(self._reservation(ex, st, spec))
                cost = min(raw, spec.capacity) / throttle
                ops.append(Gcra(key, spec.interval, spec.capacity, cost, 0.0, mult_keys, True,
                                not cl.shadow))
                applied.append((cl, key, raw))
                st.count_stream = True
            else:
                ops.append(Acquire(key, ex.request_id, spec.max_inflight, spec.lease_ttl, not cl.shadow))
                applied.append((cl, key, 1.0))
                st.leases.append(key)  # released in finish whatever happens (releasing unheld is a no-op)
        for cl in self.pace_limits:
            pace_key = cl.key(ex)
            if pace_key is not None and not cl.shadow:
                st.pace_keys.append((cl, pace_key))
        tps = controls.get("pace_tps")
        if tps:
            st.pace_interval = 1.0 / float(tps)
        cut = controls.get("cut_tokens")
        if cut is not None:
            st.budget, st.budget_limit = int(cut), "cut_tokens"
        if st.paced or st.budget is not None:
            st.count_stream = True
        if not ops:
            return Verdict(True, st)
        now = self.clock.now()
        if self.has_queues:
            # While a key has waiters, newcomers queue behind them (round-robin) instead of racing the
            # dispatcher for the next free slot.
            forced = [i for i, (cl, key, _) in enumerate(applied)
                      if cl.queues is not None and cl.queues.queued(key)]
            if forced:
                results = [Result(i not in forced) for i in range(len(ops))]
                return await self._over(ex, st, applied, results, ops, forced, throttle, now, fresh=True)
        try:
            sync = self._apply_sync
            if sync is not None:  # the embedded backend: skip a coroutine per decision
                results = sync(ops, now, all_or_nothing=True)
            else:
                results = await self.backend.apply(ops, now, all_or_nothing=True)
        except Exception:
            return self._state_failed(st)
        if self.has_shadow:
            self._count_shadow(applied, results)
        for r in results:
            if not r.ok:
                break
        else:  # the common case: every limit admits at once
            self._admitted(ex, st, applied, results, ops, throttle, now)
            return Verdict(True, st)
        blocking = [i for i, r in enumerate(results) if not r.ok and not applied[i][0].shadow]
        if not blocking:
            self._admitted(ex, st, applied, results, ops, throttle, now)
            return Verdict(True, st)
        return await self._over(ex, st, applied, results, ops, blocking, throttle, now)

    async def _over(
        self, ex: Exchange, st: ShapeState, applied: list[tuple[CompiledLimit, str, float]],
        results: list[Result], ops: list[Op], blocking: list[int], throttle: float, now: float,
        *, fresh: bool = False,
    ) -> Verdict:
        """Some limit said no. Queue where the limit allows (each queue takes its slot when it admits
        us), then take the other limits all or nothing. ``fresh``: nothing was applied yet (shadow
        limits included), so they are applied with the rest."""
        flow = ex.account_id or ex.key_id or ex.client_ip or "-"
        waits: list[int] = []
        for i in blocking:
            cl, key, _ = applied[i]
            q = cl.queues
            op = ops[i]
            if q is None or not isinstance(op, Gcra):
                return self._reject(ex, st, applied, results, i)
            est = q.estimate(key, flow, results[i].wait, op.interval * op.cost)
            if est > cl.spec.delay_max:
                return self._reject(ex, st, applied, results, i)
            waits.append(i)
        t0 = self.clock.now()
        taken: list[Gcra] = []
        try:
            for i in waits:
                cl, key, _ = applied[i]
                assert cl.queues is not None
                op = ops[i]
                assert isinstance(op, Gcra)
                if not await cl.queues.wait(op, flow):
                    results[i] = Result(False, op.interval, 0.0, op.interval)
                    return self._reject(ex, st, applied, results, i)
                taken.append(op)
            # Every queue admitted us (each took its slot); now take the others, all or nothing.
            rest = [j for j, (cl, _, _) in enumerate(applied) if j not in waits and (fresh or not cl.shadow)]
            now = self.clock.now()
            if rest:
                try:
                    again = await self.backend.apply([ops[j] for j in rest], now, all_or_nothing=True)
                except Exception:
                    return self._state_failed(st)
                for j, r in zip(rest, again, strict=True):
                    results[j] = r
                if fresh and self.has_shadow:
                    self._count_shadow(applied, results)
                bad = [j for j in rest if not results[j].ok and not applied[j][0].shadow]
                if bad:
                    return self._reject(ex, st, applied, results, bad[0])
            taken.clear()
        finally:
            if taken:  # rejected or cancelled after some queue gave us its slot: give it back
                refund: list[Op] = [Adjust(o.key, o.interval, o.capacity, -o.cost) for o in taken]
                try:
                    await self.backend.apply(refund, self.clock.now())
                except Exception:
                    log.exception("state backend failed while refunding a queue slot")
        waited = now - t0
        for i in waits:
            cl = applied[i][0]
            cl.m_delayed.inc()
            cl.m_delay.observe(waited)
            results[i] = Result(True, 0.0, 0.0, applied[i][0].spec.interval)
        self._admitted(ex, st, applied, results, ops, throttle, now)
        return Verdict(True, st, delayed=waited)

    def _admitted(
        self, ex: Exchange, st: ShapeState, applied: list[tuple[CompiledLimit, str, float]],
        results: list[Result], ops: list[Op], throttle: float, now: float,
    ) -> None:
        readings = st.readings
        for (cl, key, raw), r, op in zip(applied, results, ops, strict=True):
            kind = cl.kind
            if kind == "concurrency":
                if not cl.shadow:
                    cl.counts[0] += 1
                continue
            if kind == "tokens" and r.ok:
                st.charges.append(Charge(cl, key, op.cost / r.value, throttle * r.value))  # type: ignore[union-attr]
                if cl.spec.cut_stream and not cl.shadow and cl.spec.count != "input":
                    room = int(r.remaining * throttle * r.value + min(raw, cl.spec.capacity))
                    if cl.spec.count == "total":
                        room -= st.input_estimate
                    if st.budget is None or room < st.budget:
                        st.budget, st.budget_limit = max(0, room), cl.spec.name
            if cl.shadow:
                continue
            cl.counts[0] += 1
            readings.append(Reading(cl.spec, r.remaining, r.reset, r.wait))
        if readings:
            st.hdr_now = now
            st.anthropic = is_anthropic(ex)

    def _reject(
        self, ex: Exchange, st: ShapeState, applied: list[tuple[CompiledLimit, str, float]],
        results: list[Result], i: int,
    ) -> Verdict:
        cl = applied[i][0]
        cl.counts[1] += 1
        r = results[i]
        retry = r.wait if cl.kind != "concurrency" else 1.0
        now = self.clock.now()
        readings = [Reading(c.spec, results[j].remaining, results[j].reset, results[j].wait)
                    for j, (c, _, _) in enumerate(applied) if not c.shadow and c.kind != "concurrency"]
        headers = limit_headers(readings, now, anthropic=is_anthropic(ex))
        st.charges.clear()  # nothing was reserved (all or nothing); leases are released in finish
        return Verdict(False, st, cl.spec.name, max(retry, 0.001), headers)

    def _count_shadow(self, applied: list[tuple[CompiledLimit, str, float]], results: list[Result]) -> None:
        for (cl, key, _), r in zip(applied, results, strict=True):
            if not cl.shadow:
                continue
            if not r.ok:
                cl.counts[1] += 1
                log.info("shadow limit %s would reject %s (retry in %.3fs)", cl.spec.name, key, r.wait)
            else:
                cl.counts[0] += 1
                if r.wait > 0:
                    cl.m_delayed.inc()
                    cl.m_delay.observe(r.wait)

    def _state_failed(self, st: ShapeState) -> Verdict:
        self.metrics.state_errors.inc()
        log.exception("state backend failed; shaping %s", "skipped" if self.fail_open else "refused")
        if self.fail_open:
            return Verdict(True, st)
        return Verdict(False, st, "state_unavailable", 1.0)

    def _reservation(self, ex: Exchange, st: ShapeState, spec: LimitSpec) -> int:
        if not st.input_estimate:
            st.input_estimate = max(1, len(ex.body) // 4)
        count = spec.count
        if count == "input":
            return st.input_estimate
        out = ex.max_tokens or spec.reserve
        if count == "reasoning":
            return ex.view.reasoning_budget or out
        if count == "output":
            return out
        return st.input_estimate + out

    # -- after the response -------------------------------------------------------------------------

    async def finish(self, st: ShapeState, ex: Exchange) -> None:
        """Reconcile token reservations with real usage and release leases. Idempotent."""
        if st.done:
            return
        st.done = True
        ops: list[Op] = [Release(k, ex.request_id) for k in st.leases]
        if st.charges:
            used = actual_usage(ex, st)
            for c in st.charges:
                actual = used[c.limit.spec.count]
                units = actual / c.divisor - c.charged
                if abs(units) > 1e-9:
                    ops.append(Adjust(c.key, c.limit.spec.interval, c.limit.spec.capacity, units))
        if not ops:
            return
        try:
            sync = self._apply_sync
            if sync is not None:
                sync(ops, self.clock.now())
            else:
                await self.backend.apply(ops, self.clock.now())
        except Exception:
            self.metrics.state_errors.inc()
            log.exception("state backend failed while releasing; leases expire by their TTL")

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
            ops = [Gcra(k, cl.spec.interval, cl.spec.capacity, float(n), INF) for cl, k in st.pace_keys]
            try:
                for r in await self.backend.apply(ops, now):
                    delay = max(delay, r.wait)
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
        op = SetMultiplier(multiplier_key(scope, value), float(factor), now + duration, recover)
        await self.backend.apply([op], now)

    async def close(self) -> None:
        for cl in self.limits:
            if cl.queues is not None:
                await cl.queues.close()


__all__ = ["CompiledLimit", "ShapeState", "Shaper", "Verdict", "ip_prefix", "multiplier_key"]
