"""The rules step of the chain: features, rule evaluation, actions for this request, audit record.

``on_request`` computes the request's features once (``ex.features``), evaluates the live rule set on
event time, merges the resulting controls into ``ex.controls`` (throttle, pace_tps, redaction, harden,
cut_tokens: read by the shaping, hardening and redaction filters that run after it), adds tags and a
decision, and answers 403 ``policy_blocked`` with ``x-should-retry: false`` when a block applies.
``on_done`` clusters the request's prompt template (``signals.template_cluster`` of later requests),
runs response-phase rules with the usage and status, then writes the audit record. Features a condition
never read (``signals.lang``) are computed only for the audit record. Counters for ``/metrics`` are plain
numbers (``proxy.policy.rule_metrics``), rendered at scrape time.

Fails open: an exception inside rule evaluation is logged and the request proceeds without rule
controls (redaction has its own fail-closed guard). Pass ``fail_closed=True`` to answer 403 instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.errors import POLICY_BLOCKED, STATE_UNAVAILABLE, Reply
from proxy.exchange import Exchange
from proxy.pipeline import Filter
from proxy.policy.alerts import AlertSink
from proxy.policy.audit import AuditLog, audit_record
from proxy.policy.clusters import TemplateClusters
from proxy.policy.compiler import CompiledRuleSet
from proxy.policy.engine import Engine, Verdict, merge_control
from proxy.policy.loader import load_ruleset, rule_files
from proxy.policy.rule_metrics import RuleMetrics, families
from proxy.policy.signals import LAST_USER_KEY, SKELETON_KEY, RequestMeta, compute_features
from proxy.policy.spec import Problem, RulesError
from proxy.shaping.remote import COUPLE, prepare, settle
from proxy.state.faults import StateUnavailable
from proxy.state.joint import Joint, couple
from proxy.tasks import cancel_and_wait, spawn

if TYPE_CHECKING:
    from proxy.shaping.limiter import Shaper

log = logging.getLogger("distillguard.judge")
CLUSTER_FEATURE = "signals.template_cluster"
PRIVATE_KEYS = (SKELETON_KEY, LAST_USER_KEY)
_KIND_OF_CONTROL = {
    "throttle": "throttle",
    "pace_tps": "pace",
    "redaction": "redact",
    "harden": "harden",
    "cut_tokens": "cut",
}


def meta_of(ex: Exchange) -> RequestMeta:
    acct = ex.account
    # Positional: keyword arguments cost a dataclass ``__init__`` noticeably more (every request).
    if acct is None:
        return RequestMeta("", "", "", ex.key_id or "", ex.client_ip or "", ex.user_agent or "", ex.path)
    return RequestMeta(acct.id, acct.tier, acct.org or "", ex.key_id or "", ex.client_ip or "", ex.user_agent or "",
                       ex.path)


class JudgeFilter(Filter):
    """Per-account anomaly rules; build with ``JudgeFilter.from_paths(paths, ...)`` or around an Engine."""

    name = "judge"

    def __init__(
        self,
        engine: Engine,
        *,
        paths: Sequence[str | Path] = (),
        clock: Clock = SYSTEM_CLOCK,
        audit: AuditLog | None = None,
        alerts: AlertSink | None = None,
        fail_closed: bool = False,
        sweep_every: float = 60.0,
        watch_every: float | None = None,
    ) -> None:
        self.engine = engine
        self.paths = [Path(p) for p in paths]
        self.clock = clock
        self.audit = audit
        self.alerts = alerts
        self.fail_closed = fail_closed
        self.sweep_every = sweep_every
        self.last_reload_problems: list[Problem] = []
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.watch_every = watch_every
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._stamp = self._file_stamp()
        # Near-duplicate template clusters: read while computing features, updated in on_done. Kept
        # across reloads (they describe traffic, not rules).
        self.clusters = TemplateClusters()
        self.metrics = RuleMetrics()
        # Rule state and limits on one Redis: one call per request for both (``couple``).
        self.joint: Joint | None = None
        self._offer = True

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        *,
        clock: Clock = SYSTEM_CLOCK,
        shadow: bool = False,
        audit_path: str | Path | None = None,
        audit_prompts: bool = False,
        alert_url: str | None = None,
        fail_closed: bool = False,
        watch_every: float | None = None,
    ) -> JudgeFilter:
        """Load and compile the rule files (``RulesError`` lists every problem) and wire the parts."""
        ruleset = load_ruleset(list(paths))
        return cls(
            Engine(ruleset, shadow=shadow),
            paths=paths,
            clock=clock,
            audit=AuditLog(audit_path, include_prompt=audit_prompts) if audit_path else None,
            alerts=AlertSink(alert_url) if alert_url else None,
            fail_closed=fail_closed,
            watch_every=watch_every,
        )

    # -- reload ---------------------------------------------------------------------------------

    async def reload(self, paths: Sequence[str | Path] | None = None) -> list[Problem]:
        """Recompile the rule files in a worker thread and swap them in atomically.

        Returns ``[]`` on success; on errors the last good rule set stays and the problems are returned
        (and kept in ``last_reload_problems``). State of unchanged rules survives the swap.
        """
        async with self._reload_lock:
            use = [Path(p) for p in paths] if paths is not None else self.paths
            try:
                ruleset: CompiledRuleSet = await asyncio.to_thread(load_ruleset, use)
            except RulesError as e:
                self.reloads_failed += 1
                self.last_reload_problems = e.problems
                log.error("rules reload failed; keeping version %s:\n%s", self.engine.ruleset.version, e)
                return e.problems
            self.engine.swap(ruleset)  # one assignment on the loop thread: requests see old or new
            if use != self.paths:
                self.paths = use
                self._stamp = await asyncio.to_thread(self._file_stamp)
            self.reloads_ok += 1
            self.last_reload_problems = []
            log.info("rules reloaded: version %s, %d rules", ruleset.version, len(ruleset.rules))
            return []

    def _file_stamp(self) -> tuple[tuple[str, int, int, int], ...]:
        out = []
        for p in rule_files(list(self.paths)):
            try:
                st = p.stat()
            except OSError:
                out.append((str(p), -1, -1, -1))
            else:
                out.append((str(p), st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    async def check_files(self) -> list[Problem] | None:
        """Reload if a rule file changed (mtime, size, inode) or was added/removed; None if unchanged."""
        stamp = await asyncio.to_thread(self._file_stamp)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return await self.reload()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_every or 5.0)
            try:
                await self.check_files()
            except Exception:
                log.exception("rule file watch failed")

    # -- hooks ----------------------------------------------------------------------------------

    async def on_request(self, ex: Exchange) -> Reply | None:
        """Evaluate rules; may set ``ex.controls``, add tags/decisions, or answer 403 policy_blocked."""
        now = self.clock.now()
        t0 = time.perf_counter()
        joint = self.joint
        st = None
        try:
            rs = self.engine.ruleset
            ctx = compute_features(
                ex.view, meta_of(ex), now, rs.matchers, lazy=True, eager=rs.key_features, clusters=self.clusters
            )
            if joint is None:
                engine = self.engine
                if not engine.store.remote:  # the memory store: synchronous, no coroutine
                    verdict = engine.evaluate(ctx, now)
                else:
                    if self._offer:
                        ex.state[COUPLE] = self  # a shape filter on the same Redis may couple (``couple``)
                    verdict = await engine.aevaluate(ctx, now)
            else:  # this request's limits go in the same call as its rules (``proxy.shaping.remote``)
                st = prepare(joint.shaper, joint, ex)
                verdict = await self.engine.aevaluate(ctx, now, st.part if st is not None else None)
        except StateUnavailable:  # shared rule state down with ``state: on_failure: closed``
            if st is not None:
                settle(ex, st, blocked=True)
            return ex.error(STATE_UNAVAILABLE, "Rule state is unavailable; retry shortly.",
                            headers={"retry-after": "1"})
        except Exception:
            self.metrics.eval_failures += 1
            log.exception("rule evaluation failed", extra={"request_id": ex.request_id})
            if st is not None:
                settle(ex, st, blocked=self.fail_closed)
            if self.fail_closed:
                return ex.error(
                    POLICY_BLOCKED,
                    "Request refused: policy evaluation failed.",
                    headers={"x-should-retry": "false"},
                )
            return None
        h = self.metrics.eval_time  # ``Histogram.observe``, inlined (every request)
        dt = time.perf_counter() - t0
        h.counts[bisect_left(h.bounds, dt)] += 1
        h.total += dt
        if verdict.actions:
            self.metrics.count_actions(verdict.actions)
        feats = ex.features
        if feats:
            feats.update(ctx)
        else:  # the usual case: a copy of a dict is one block copy, ``update`` one insert per key
            feats = ex.features = ctx.copy()
        for private in PRIVATE_KEYS:  # the masked skeleton and the last user turn stay in ctx only
            feats.pop(private, None)
        ex.state[self.name] = (now, ctx, verdict)
        self.apply(ex, verdict)
        if st is not None:
            settle(ex, st, blocked=verdict.block is not None)
        if verdict.alerts and self.alerts is not None:
            self.alerts.submit(verdict.alerts)
        if verdict.block is not None:
            return ex.error(
                POLICY_BLOCKED, "Request blocked by usage policy.", headers={"x-should-retry": "false"}
            )
        return None

    def couple(self, shaper: Shaper) -> bool:
        """Send the limits of ``shaper`` (the shape filter after this one) with the rules' state call
        from now on, if both keep their state on the same Redis; False (and no more offers) if not.
        The shape filter calls it on the first request that reaches it; ``build_filters`` may too."""
        if self.joint is None:
            joint = couple(self.engine.store, shaper)
            if joint is None:
                self._offer = False
                return False
            self.joint = joint
            log.info("rules and limits share one Redis call per request")
        return True

    @staticmethod
    def apply(ex: Exchange, verdict: Verdict) -> None:
        """Merge the verdict into the exchange: controls (strictest wins), tags, one decision entry."""
        if verdict.controls:
            for name, value in verdict.controls.items():
                kind = _KIND_OF_CONTROL.get(name)
                if kind is not None:
                    merge_control(ex.controls, kind, value)
        if verdict.tags:  # ``ex.tags`` makes its set on first use: only when there is something to add
            ex.tags |= verdict.tags
        if verdict.hits or verdict.actions or verdict.block is not None:
            ex.decisions.append(
                {
                    "filter": "judge",
                    "hits": [h.rule for h in verdict.hits if h.mode == "enforce"],
                    "shadow_hits": [h.rule for h in verdict.hits if h.mode == "shadow"],
                    "controls": dict(verdict.controls),
                    "blocked": verdict.block.rule if verdict.block is not None else None,
                }
            )

    async def on_done(self, ex: Exchange) -> None:
        """Cluster the request's template, feed the outcome to response-phase rules, write the audit record."""
        st = ex.state.get(self.name)
        if st is None:
            return
        _, ctx, verdict = st
        self.observe_template(ctx)
        if self.audit is None and not self.engine.ruleset.response_rules:
            return  # nothing reads the outcome: no response rules, no audit record
        now = self.clock.now()
        u = ex.usage
        response = {
            "status": ex.status,
            "input_tokens": u.input or 0,
            "output_tokens": u.output or 0,
            "reasoning_tokens": u.reasoning or 0,
            "error": ex.error_code or "",
        }
        rverdict: Verdict | None = None
        if self.engine.ruleset.response_rules:
            ctx.update({f"response.{k}": v for k, v in response.items()})
            try:
                rverdict = await self.engine.aevaluate_response(ctx, now)
            except StateUnavailable:  # fail-closed, but the response has gone out: nothing to refuse
                rverdict = Verdict()
            if rverdict.actions:
                self.metrics.count_actions(rverdict.actions)
            if rverdict.alerts and self.alerts is not None:
                self.alerts.submit(rverdict.alerts)
        if self.audit is not None:
            self.audit.write(
                audit_record(
                    ts=now,
                    request_id=ex.request_id,
                    features=ctx,
                    verdict=verdict,
                    response_verdict=rverdict,
                    prompt=ex.view.prompt_text,
                    include_prompt=self.audit.include_prompt,
                    response=response,
                )
            )

    def observe_template(self, ctx: dict[str, Any]) -> None:
        """After the request: map its exact template to a near-duplicate cluster (a SimHash when the
        template is new), so later requests read ``signals.template_cluster``. Only while a live rule reads
        that feature (no cost otherwise). Fails open."""
        skeleton = ctx.get(SKELETON_KEY)
        if not skeleton or CLUSTER_FEATURE not in self.engine.ruleset.reads:
            return
        try:
            self.clusters.observe(ctx["signals.template"], skeleton)
        except Exception:
            log.exception("template clustering failed")

    def metric_families(self) -> Any:
        """Prometheus families for this step (``ProxyMetrics.add_source(judge.metric_families)``)."""
        return families(self)

    # -- lifecycle ------------------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            try:
                self.engine.sweep(self.clock.now())
            except Exception:
                log.exception("rule state sweep failed")

    async def start(self) -> None:
        if self._sweeper is None:
            self._sweeper = spawn(self._sweep(), "judge-sweep")
        if self._watcher is None and self.watch_every and self.paths:
            self._watcher = spawn(self._watch(), "judge-watch")
        for part in (self.audit, self.alerts):
            if part is not None:
                await part.start()

    async def stop(self) -> None:
        for task in (self._sweeper, self._watcher):
            await cancel_and_wait(task)
        self._sweeper = self._watcher = None
        for part in (self.audit, self.alerts):
            if part is not None:
                await part.stop()
        if self.joint is not None:
            await self.joint.close()  # queued limit corrections
        await self.engine.close()  # a shared rule store sends its queued writes, then disconnects

    def status(self) -> dict[str, Any]:
        """Rule set version, files, hit counts (admin API)."""
        rs = self.engine.ruleset
        return {
            "version": rs.version,
            "files": list(rs.files),
            "shadow": self.engine.shadow,
            "rules": [
                {
                    "id": r.id,
                    "mode": r.mode,
                    "phase": r.phase,
                    "key": r.key,
                    "hits": self.engine.hit_counts.get(r.id, [0, 0])[0],
                    "shadow_hits": self.engine.hit_counts.get(r.id, [0, 0])[1],
                    "errors": self.engine.errors.get(r.id, 0),
                }
                for r in rs.rules
            ],
            "reloads_ok": self.reloads_ok,
            "reloads_failed": self.reloads_failed,
            "last_reload_problems": [p.as_dict() for p in self.last_reload_problems],
        }
