"""Fault behaviour of the shared rule store, the same as for limits (``proxy.state.faults``): a timeout
per call, a circuit breaker, and ``on_failure`` from the ``state:`` section.

``open``    the request is evaluated on a local ``MemoryRuleStore`` instead: rules then see only this
            process's traffic. Logged at ERROR when it starts and visible as
            ``distillguard_rule_state_up 0`` and ``distillguard_rule_state_fallback_total``. On
            recovery the local state is dropped (Redis is the truth again).
``closed``  ``StateUnavailable`` is raised; the judge filter answers 503 ``state_unavailable`` in the
            caller's dialect.

``rule_store_from_config`` builds the store the ``state:`` section asks for (None for ``memory://``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.policy.store import Fetch, MemoryRuleStore, RuleView
from proxy.state.faults import Breaker, StateUnavailable, guarded_call

if TYPE_CHECKING:
    from proxy.policy.compiler import CompiledRuleSet
    from proxy.policy.store_redis import RedisRuleStore
    from proxy.state.joint import LimitsPart

log = logging.getLogger("distillguard.rules.state")


class RuleStateMetrics:
    def __init__(self, registry: CollectorRegistry | None, backend: str) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.up = Gauge("distillguard_rule_state_up",
                        "1 while the shared rule state store answers, 0 while degraded.",
                        ["backend"], registry=registry).labels(backend)
        self.failures = Counter("distillguard_rule_state_failures",
                                "Rule state calls that failed, by reason.", ["backend", "reason"],
                                registry=registry)
        self.fallback = Counter("distillguard_rule_state_fallback",
                                "Requests whose rules ran on local in-memory state (fail-open).",
                                ["backend"], registry=registry).labels(backend)
        self.refused = Counter("distillguard_rule_state_refused",
                               "Requests refused while the rule state store was unavailable (fail-closed).",
                               ["backend"], registry=registry).labels(backend)
        self.breaker_opened = Counter("distillguard_rule_state_breaker_opened",
                                      "Times the rule state store's circuit breaker opened.",
                                      ["backend"], registry=registry).labels(backend)
        self.writes = Counter("distillguard_rule_state_writes",
                              "Rule state writes (scores, actions, bans, alert cooldowns) by outcome: "
                              "sent, failed, dropped (queue full or store down).", ["outcome"], registry=registry)
        self.calls = Counter("distillguard_rule_state_calls",
                             "Script calls to the rule state store: fetch (one per request, on its hot path; "
                             "it carries the request's limits too when they are in the same Redis), flush "
                             "(background batches of queued writes) and corrections (background batches of "
                             "limit corrections for throttles and blocks a request decided).", ["kind"],
                             registry=registry)
        self.backend = backend
        self.up.set(1)


class FaultTolerantRuleStore:
    """A rule store around ``RedisRuleStore`` with timeout, breaker and fail-open/closed behaviour."""

    remote = True

    def __init__(
        self,
        primary: RedisRuleStore,
        *,
        on_failure: str = "open",
        timeout: float = 0.25,
        failures: int = 3,
        open_for: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
        name: str = "redis",
        describe: str = "",
    ) -> None:
        if on_failure not in ("open", "closed"):
            raise ValueError(f"state: on_failure must be 'open' or 'closed', got {on_failure!r}")
        self.primary = primary
        self.fail_open = on_failure == "open"
        self.timeout = timeout
        self.clock = clock
        self.breaker = Breaker(failures, open_for, clock)
        self.metrics = RuleStateMetrics(registry, name)
        primary.metrics = self.metrics
        primary.writes_allowed = lambda: self.breaker.state == "closed"
        self.describe = describe or name
        self.fallback = MemoryRuleStore(primary.ruleset)
        self.degraded = False

    def swap(self, new: CompiledRuleSet) -> None:
        self.primary.swap(new)
        self.fallback.swap(new)

    async def _call(self, coro_fn: Any) -> tuple[bool, Any]:
        """(True, result) from the store, or (False, None) when it failed or the breaker is open."""
        ok, res, closed = await guarded_call(self.breaker, self.timeout, coro_fn, self._failed)
        if ok and (closed or self.degraded):
            self._recovered()
        return ok, res

    def _degraded(self) -> None:
        if not self.degraded:
            self.degraded = True
            self.metrics.up.set(0)
        if not self.fail_open:
            self.metrics.refused.inc()
            raise StateUnavailable(f"rule state store {self.describe} is unavailable")
        self.metrics.fallback.inc()

    async def fetch(self, req: Fetch, now: float, limits: LimitsPart | None = None) -> RuleView:
        """``limits``: the request's limiter ops in the same call (``proxy.state.joint``); when the call
        fails they are marked failed (nothing reached Redis) and the shaper runs them locally."""
        ok, view = await self._call(lambda: self.primary.fetch(req, now, limits))
        if ok:
            return view
        if limits is not None:
            limits.joint.failed(limits)
        self._degraded()
        return self.fallback.fetch_now(req, now)

    async def pardon(self, scope: str, target: str, value: str, now: float) -> int:
        ok, n = await self._call(lambda: self.primary.pardon(scope, target, value, now))
        if ok:
            return int(n)
        self._degraded()
        return self.fallback.pardon_now(scope, target, value)

    async def state(self, scope: str, feat: str, value: str, now: float) -> dict[str, Any]:
        ok, st = await self._call(lambda: self.primary.state(scope, feat, value, now))
        if ok:
            return st
        self._degraded()
        return self.fallback.state_now(scope, feat, value, now)

    def _failed(self, reason: str, e: BaseException) -> None:
        self.metrics.failures.labels(self.metrics.backend, reason).inc()
        if self.breaker.failure():
            self.metrics.breaker_opened.inc()
            log.error(
                "rule state: %s failed (%s: %s); circuit open for %.1fs; %s", self.describe, type(e).__name__,
                e or reason, self.breaker.open_for,
                "FALLING BACK to local in-memory rule state: windows and scores now hold per process"
                if self.fail_open else "refusing requests with 503 state_unavailable")

    def _recovered(self) -> None:
        self.degraded = False
        self.metrics.up.set(1)
        log.warning("rule state: %s recovered; local fallback rule state discarded", self.describe)
        self.fallback = MemoryRuleStore(self.primary.ruleset)

    def sweep_now(self, now: float) -> int:
        return self.fallback.sweep_now(now)

    async def flush(self) -> None:
        await self.primary.flush()

    async def close(self) -> None:
        await self.primary.close()


def rule_store_from_config(
    cfg: Any, ruleset: CompiledRuleSet, *, registry: CollectorRegistry | None = None, clock: Clock = SYSTEM_CLOCK
) -> FaultTolerantRuleStore | None:
    """The shared rule store the ``state:`` section asks for; None for ``memory://`` (per process)."""
    from proxy.state import redact_url
    from proxy.state.config import state_spec
    from proxy.state.redis import redis_client

    spec = state_spec(cfg)
    if not spec.shared:
        return None
    from proxy.policy.store_redis import RedisRuleStore

    client = redis_client(spec.url, timeout=spec.timeout, connections=spec.connections)
    primary = RedisRuleStore(client, ruleset, namespace=spec.namespace, timeout=spec.timeout)
    return FaultTolerantRuleStore(
        primary, on_failure=spec.on_failure, timeout=spec.timeout, failures=spec.breaker_failures,
        open_for=spec.breaker_open_for, clock=clock, registry=registry, name=spec.scheme,
        describe=redact_url(spec.url),
    )
