"""Fault behaviour of a remote state backend: a timeout per call, a circuit breaker, and what to do
while the store is unreachable (``on_failure``).

``FaultTolerantBackend`` wraps a remote backend (Redis). Every ``apply`` runs under ``timeout``; after
``failures`` consecutive failures the breaker opens and no call goes to the store for ``open_for``
seconds, so a dead store adds at most ``timeout`` to a request (and nothing once the breaker is
open). When ``open_for`` has passed, the next call is a probe (half-open): success closes the
breaker, failure opens it again. While the breaker is open or a call failed:

``open``    the batch runs on a local in-memory backend instead. Limits then hold per process, not
            fleet-wide: logged at ERROR when it starts, at WARNING every ``log_every`` seconds while
            it lasts, and visible as ``distillguard_state_up 0`` and
            ``distillguard_state_fallback_ops_total``. On recovery the local state is dropped (the
            store is the truth again; leases taken locally are forgotten, the store's expire by TTL).
``closed``  ``StateUnavailable`` is raised; the shape filter (built with ``fail_open=False``) answers
            503 ``state_unavailable`` in the caller's dialect.

``settle`` takes a finished request's settlement (lease releases, token reconciliation) off its path:
the ops are queued and sent without the request waiting, in one batch with the others queued in the
same event-loop turn (a background ``apply``, with the same timeout, breaker and fail-open/closed
behaviour), or earlier, riding along with the next ``apply`` of this process (prepended to its ops,
so a slot released before an admission is free for it). The queue is bounded; every outcome is
counted in ``distillguard_state_settlements_total{outcome}``: ``sent``, ``local`` (on the fail-open
fallback, where a lease taken while the store was down is freed at once), ``failed`` (lost with a
failed call, or refused in fail-closed mode: the store's leases expire by their TTL) and ``dropped``
(queue full). ``close`` sends what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.state.base import Op, Result, StateBackend
from proxy.state.memory import MemoryBackend
from proxy.tasks import spawn

log = logging.getLogger("distillguard.state")

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class StateUnavailable(Exception):
    """The shared state store cannot be used right now (fail-closed mode)."""


class Breaker:
    """Consecutive-failure circuit breaker on a monotonic clock. ``allow()`` says whether a call may
    go to the store; in half-open state only one probe is let through at a time."""

    def __init__(self, failures: int = 3, open_for: float = 5.0, clock: Clock = SYSTEM_CLOCK) -> None:
        if failures < 1 or open_for <= 0:
            raise ValueError("breaker: failures must be >= 1 and open_for > 0")
        self.threshold = failures
        self.open_for = open_for
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        if self.state == CLOSED:
            return True
        if self.state == OPEN and self.clock.mono() - self.opened_at >= self.open_for:
            self.state = HALF_OPEN
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> bool:
        """Record a success; True if this closed an open breaker."""
        self._probing = False
        self.failures = 0
        if self.state != CLOSED:
            self.state = CLOSED
            return True
        return False

    def failure(self) -> bool:
        """Record a failure; True if this opened the breaker (from closed)."""
        self._probing = False
        self.failures += 1
        was = self.state
        if was == HALF_OPEN or self.failures >= self.threshold:
            self.state = OPEN
            self.opened_at = self.clock.mono()
            return was == CLOSED
        return False

    def abandon(self) -> None:
        """A probe was cancelled before it finished: let the next call probe."""
        self._probing = False


async def guarded_call(
    breaker: Breaker,
    timeout: float,
    call: Callable[[], Awaitable[Any]],
    failed: Callable[[str, BaseException], None],
) -> tuple[bool, Any, bool]:
    """Run ``call()`` under ``timeout`` if ``breaker`` lets it through.

    Returns ``(ok, result, closed)``: ``closed`` says the success closed a breaker that was open. A
    timeout or an error is reported to ``failed(reason, error)``; a call cancelled mid-way (the client
    left) counts neither as a success nor as the store's fault."""
    if not breaker.allow():
        return False, None, False
    done = False
    try:
        async with asyncio.timeout(timeout):
            res = await call()
        done = True
    except TimeoutError as e:
        done = True
        failed("timeout", e)
        return False, None, False
    except Exception as e:
        done = True
        failed("error", e)
        return False, None, False
    finally:
        if not done:
            breaker.abandon()
    return True, res, breaker.success()


class StateMetrics:
    def __init__(self, registry: CollectorRegistry | None, backend: str) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge("distillguard_state_up",
                        "1 while the shared state store answers, 0 while degraded (breaker open).",
                        ["backend"], registry=registry).labels(backend)
        self.failures = Counter("distillguard_state_failures",
                                "Calls to the shared state store that failed, by reason.",
                                ["backend", "reason"], registry=registry)
        self.fallback = Counter("distillguard_state_fallback_ops",
                                "State batches served by the local in-memory fallback (fail-open).",
                                ["backend"], registry=registry).labels(backend)
        self.refused = Counter("distillguard_state_refused",
                               "State batches refused while the store was unavailable (fail-closed).",
                               ["backend"], registry=registry).labels(backend)
        self.breaker_opened = Counter("distillguard_state_breaker_opened",
                                      "Times the state store's circuit breaker opened.",
                                      ["backend"], registry=registry).labels(backend)
        self.settlements = Counter("distillguard_state_settlements",
                                   "Settlement ops of finished requests (lease releases, token reconciliation) "
                                   "sent off the request's path, by outcome: sent, local (fail-open fallback), "
                                   "failed (lost: leases expire by TTL), dropped (queue full).",
                                   ["backend", "outcome"], registry=registry)
        self.settle_batches = Counter("distillguard_state_settlement_batches",
                                      "Background script calls that carried only settlements.",
                                      ["backend"], registry=registry).labels(backend)
        self.backend = backend
        self.up.set(1)


class FaultTolerantBackend:
    """A ``StateBackend`` around a remote one, with timeout, breaker and fail-open/closed behaviour."""

    def __init__(
        self,
        primary: StateBackend,
        *,
        on_failure: str = "open",
        timeout: float = 0.25,
        failures: int = 3,
        open_for: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
        name: str = "redis",
        describe: str = "",
        log_every: float = 10.0,
        max_settling: int = 10_000,
    ) -> None:
        if on_failure not in ("open", "closed"):
            raise ValueError(f"state: on_failure must be 'open' or 'closed', got {on_failure!r}")
        self.primary = primary
        self.fail_open = on_failure == "open"
        self.timeout = timeout
        self.clock = clock
        self.breaker = Breaker(failures, open_for, clock)
        self.metrics = StateMetrics(registry, name)
        self.describe = describe or name
        self.log_every = log_every
        self.fallback = MemoryBackend()
        self._degraded_since: float | None = None
        self._last_log = 0.0
        self._local_ops = 0
        self.max_settling = max_settling
        self._settling: list[Op] = []  # queued settlement ops (see ``settle``)
        self._settle_now = 0.0
        self._settle_task: asyncio.Task[None] | None = None
        self._drop_logged = -log_every

    may_have_multipliers = True

    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    async def apply(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        settled = self._settling
        if settled:  # queued settlements ride along, first: a slot they free is free for these ops
            self._settling = []
            ops = [*settled, *ops]
        else:
            settled = []  # not the live queue: settle() may extend that one while this call waits
        try:
            ok, res, closed = await guarded_call(
                self.breaker,
                self.timeout,
                lambda: self.primary.apply(ops, now, all_or_nothing=all_or_nothing),
                self._failed,
            )
            if ok:
                if closed or self._degraded_since is not None:
                    self._recovered()
                if settled:
                    self._settled("sent", len(settled))
                return res[len(settled):] if settled else res
            res = self._degraded_apply(ops, now, all_or_nothing)
        except StateUnavailable:
            if settled:
                self._settled("failed", len(settled))
            raise
        except BaseException:  # cancelled (the client left): the call may or may not have run
            if settled:
                self._settled("failed", len(settled))
            raise
        if settled:
            self._settled("local", len(settled))
        return res[len(settled):] if settled else res

    # -- settlements, off the request's path ------------------------------------------------------

    def settle(self, ops: Sequence[Op], now: float) -> None:
        """Queue a finished request's settlement (``release`` and ``adjust`` ops; their results are
        not needed) and return at once; see the module docstring."""
        if not ops:
            return
        if len(self._settling) + len(ops) > self.max_settling:
            self._settled("dropped", len(ops))
            t = self.clock.mono()
            if t - self._drop_logged >= self.log_every:
                self._drop_logged = t
                log.warning("state: settlement queue full (%d ops); settlements dropped (leases expire by "
                            "TTL; see distillguard_state_settlements_total)", len(self._settling))
            return
        self._settling.extend(ops)
        if now > self._settle_now:
            self._settle_now = now
        if self._settle_task is None:
            self._settle_task = spawn(self._flush_settlements(), "state-settlements")

    async def _flush_settlements(self) -> None:
        try:
            while self._settling:
                ops, self._settling = self._settling, []
                self.metrics.settle_batches.inc()
                try:
                    await self._send_settlements(ops)
                except StateUnavailable:
                    self._settled("failed", len(ops))
                except Exception as e:
                    self._settled("failed", len(ops))
                    log.warning("state: %d settlement op(s) lost: %s: %s (leases expire by TTL)", len(ops),
                                type(e).__name__, e)
        finally:
            self._settle_task = None

    async def _send_settlements(self, ops: list[Op]) -> None:
        now = self._settle_now
        ok, _, closed = await guarded_call(self.breaker, self.timeout, lambda: self.primary.apply(ops, now),
                                           self._failed)
        if ok:
            if closed or self._degraded_since is not None:
                self._recovered()
            self._settled("sent", len(ops))
            return
        self._degraded_apply(ops, now, False)  # fail-closed: raises StateUnavailable
        self._settled("local", len(ops))

    def _settled(self, outcome: str, n: int) -> None:
        self.metrics.settlements.labels(self.metrics.backend, outcome).inc(n)

    async def drain_settlements(self) -> None:
        """Wait until every queued settlement has been sent (tests, shutdown)."""
        while self._settle_task is not None:
            await asyncio.shield(self._settle_task)

    async def apply_local(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        """``apply`` for a request whose combined call (``proxy.state.joint``) has just failed: straight
        to the fail-open/closed behaviour, without trying the store a second time."""
        return self._degraded_apply(ops, now, all_or_nothing)

    def note_up(self) -> None:
        """A combined call reached the store: recover if degraded."""
        if self._degraded_since is not None:
            self._recovered()

    def _degraded_apply(self, ops: Sequence[Op], now: float, all_or_nothing: bool) -> list[Result]:
        if self._degraded_since is None:
            self._degraded_since = self.clock.mono()
            self.metrics.up.set(0)
        self._local_ops += 1
        t = self.clock.mono()
        if t - self._last_log >= self.log_every:
            self._last_log = t
            log.warning("state: %s still unavailable (%.0fs); %d batch(es) %s", self.describe,
                        t - self._degraded_since, self._local_ops,
                        "served from local in-memory state" if self.fail_open else "refused (503)")
        if not self.fail_open:
            self.metrics.refused.inc()
            raise StateUnavailable(f"state store {self.describe} is unavailable")
        self.metrics.fallback.inc()
        return self.fallback.apply_now(ops, now, all_or_nothing=all_or_nothing)

    def _failed(self, reason: str, e: BaseException) -> None:
        self.metrics.failures.labels(self.metrics.backend, reason).inc()
        if self.breaker.failure():
            self.metrics.breaker_opened.inc()
            self._last_log = self.clock.mono()
            log.error(
                "state: %s failed (%s: %s); circuit open for %.1fs; %s", self.describe, type(e).__name__,
                e or reason, self.breaker.open_for,
                "FALLING BACK to local in-memory state: limits now hold per process, not fleet-wide"
                if self.fail_open else "refusing rate-limited requests with 503 state_unavailable")

    def _recovered(self) -> None:
        since = self._degraded_since
        self._degraded_since = None
        self.metrics.up.set(1)
        log.warning("state: %s recovered%s; %d batch(es) were %s; local fallback state discarded",
                    self.describe, f" after {self.clock.mono() - since:.1f}s" if since is not None else "",
                    self._local_ops, "served locally" if self.fail_open else "refused")
        self._local_ops = 0
        self.fallback = MemoryBackend()

    async def sweep(self, now: float) -> int:
        dropped = await self.fallback.sweep(now)
        if self.breaker.state == CLOSED:
            try:
                async with asyncio.timeout(self.timeout):
                    dropped += await self.primary.sweep(now)
            except Exception:
                pass  # the next apply reports and counts the failure
        return dropped

    async def close(self) -> None:
        try:
            await self.drain_settlements()
        finally:
            await self.fallback.close()
            await self.primary.close()
