"""Rule evaluation with per-key state: windows, decaying scores, timed actions and escalating blocks.

``Engine.evaluate(features, now)`` runs the request-phase rules over one request's flat feature dict and
returns a ``Verdict``: rule hits, scores, the controls this request gets (its own hits plus every action
still active for its account, key, IP prefix, template, ...), and a block if one applies. It is
synchronous, never awaits and never does I/O; alerts are handed back for a background sender.

Scores (CRS-style anomaly scoring) add per scope (account, org, ip_prefix, template, ...) and decay with
a half-life, so old offences fade; rules reading ``score.*`` run after the others, on updated scores.
Blocks escalate like fail2ban's ``bantime.increment``. Shadow rules count and report what they would
have done without changing scores or actions. Everything runs on the event time passed in.

State lives in a rule store (``proxy.policy.store``): ``MemoryRuleStore`` by default (per process,
``evaluate`` stays synchronous) or a shared one such as ``RedisRuleStore`` (use ``aevaluate``). The
evaluation runs in phases so that a remote store costs one round trip per request: conditions and
aggregate inputs locally, one ``fetch`` that applies the window updates and reads scores and the
action targets' state, then decisions locally on that view, whose writes go back in the background.
Rules reading ``score.*`` that also keep windows need a second fetch (none in the default pack).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Generator
from typing import Any

from proxy.policy import celcode
from proxy.policy.actions import Hit, Verdict, apply_action, collect, collect_local, merge_control
from proxy.policy.cel import CelError, EvalError
from proxy.policy.compiler import CompiledRule, CompiledRuleSet
from proxy.policy.rings import MASK
from proxy.policy.spec import SCOPES, Expr
from proxy.policy.store import (
    SCORE_KEYS,
    SEP,
    Active,
    Fetch,
    MemoryRuleStore,
    RuleView,
    Slot,
    WindowUpdate,
    row_layout,
)

__all__ = ["Active", "Engine", "Hit", "Verdict", "merge_control"]

_ERRORS = (EvalError, KeyError, TypeError, ValueError, ArithmeticError)
_BARE_READ = re.compile(r"c\['[^'\\]*'\]")  # generated source that only reads one feature


# A rule whose ``when`` matched: (rule, key value, index of its window update or -1, whether an
# aggregate input failed to evaluate: counted as an error once the update is done).
_Pending = tuple[CompiledRule, Any, int, bool]


# The memory path's pass over the rules as one generated function (``_program``):
# run(ctx, now, store, verdict, hit, error) -> the store's score_writes when it read the scores, else -1.
Program = Callable[[dict[str, Any], float, MemoryRuleStore, Verdict, Any, Any], int]


def _program(
    rules: tuple[CompiledRule, ...], fill_scores: bool, memo: bool = True, slots: dict[str, Slot] | None = None
) -> Program:
    """Rules in order, each: ``when``; the key (none: skip); every aggregate's input then push; the
    threshold; a runtime error counts as an error of the rule (no hit); a hit is recorded after. With
    ``fill_scores`` the scores are read into ``ctx`` before the first rule that reads them. Conditions,
    inputs and thresholds are inlined (``celcode.expr_source``: the same code as their compiled functions),
    so a rule costs no call until its window is pushed; with ``memo`` a macro several rules use (the
    default pack's ``cot_elicit``, ``wants_reasoning``, ...) is computed once per request, when a rule
    first reaches it (``celcode.Shared``). ``slots``: where each rule's window states sit in its key's row
    (``store.row_layout`` of the whole rule set; by default of ``rules``).

    Per request, the row of each key feature is looked up once and shared by the rules keyed by it, and
    the bucket of each ring width is computed once. ``count`` pushes, the bucket of ``ratio`` pushes and
    the common cases of ``distinct`` pushes are inlined (``Aggregate._push_*``: the same steps); aggregate
    values stay in locals, which the thresholds read (``ctx`` gets no ``agg.*`` keys on this path)."""
    if slots is None:
        slots = row_layout(rules)[0]
    ns = celcode.namespace()
    ns["_E"] = _ERRORS
    ns["_MASK"] = MASK
    shared = celcode.Shared(memo)
    out = ["def run(c, now, store, v, hit, err):", "    rows = store.rows", "    filled = -1", "    h = False"]
    row_vars: dict[str, str] = {}  # key feature -> local holding this request's row of it (_U: not read yet)
    bucket_vars: dict[float, str] = {}  # ring bucket width -> local holding the request's bucket (_U: not yet)

    def source(e: Expr, env: Any, names: dict[str, str] | None = None) -> tuple[str, bool] | None:
        """(Python source, whether it reads what a run changes), or None if it does not compile."""
        reads: set[str] = set()
        with contextlib.suppress(CelError):  # it compiled once already
            return celcode.expr_source(e.src, env, ns, shared, reads, names), any(
                r.startswith(celcode.VOLATILE) for r in reads)
        return None  # pragma: no cover

    # A condition or aggregate input several rules share (the default pack's hydra rules: one ``when``,
    # one owner expression) is computed once per run, as macros are (sources are generated twice: the
    # constants and macro locals they bind are the same both times).
    count: dict[str, int] = {}
    for r in rules if memo else ():
        for e in (r.spec.when, *(a.spec.of if a.kind == "distinct" else a.spec.match if a.kind == "ratio"
                                 else a.spec.value for a in r.aggregates if a.argf is not None)):
            got = source(e, r.env) if e is not None else None
            if got is not None and not got[1] and not _BARE_READ.fullmatch(got[0]):  # a read costs less
                count[got[0]] = count.get(got[0], 0) + 1

    def code(e: Expr | None, env: Any, name: str, fn: Any, names: dict[str, str] | None = None) -> str:
        got = source(e, env, names) if e is not None else None
        if got is not None:
            return "(" + (shared.once(got[0]) if count.get(got[0], 0) > 1 else got[0]) + ")"
        ns[name] = fn  # pragma: no cover - the compiled function instead
        return f"{name}(c)"

    def bucket(width: float) -> str:
        """Source of the request's bucket index for rings of ``width`` (``Aggregate._index``), once."""
        var = bucket_vars.get(width)
        if var is None:
            var = bucket_vars[width] = f"b{len(bucket_vars)}"
            ns[f"_bw{var[1:]}"] = width
        return f"{var} if {var} is not _U else ({var} := int(now // _bw{var[1:]}) & _MASK)"

    ind = " " * 16
    for i, r in enumerate(rules):
        if r.uses_score and fill_scores:
            out += ["    v.scores = store.fill_scores(c)", "    filled = store.score_writes"]
            fill_scores = False
        ns[f"_r{i}"] = r
        out += ["    try:", f"        if {code(r.spec.when, r.env, f'_w{i}', r.when)}:",
                f"            k = c[{r.key!r}]", '            if not (k == "" or k is None):']
        off = 0
        if r.aggregates:  # the key's row, shared by the rules keyed by the same feature (``store.row_layout``)
            feat, off = slots[r.fingerprint]
            rv = row_vars.setdefault(feat, f"row{len(row_vars)}")
            out += [f"{ind}s = {rv} if {rv} is not _U else ({rv} := rows[{feat!r}].get(k))",
                    f"{ind}if s is None or s[{off}] is None:",
                    f"{ind}    s = {rv} = store.row(_r{i}, k)"]
        names = {}
        for j, a in enumerate(r.aggregates):
            g = names[a.ctx_key] = f"g{i}_{j}"
            arg = "None"
            if a.argf is not None:
                e, wrap = {"distinct": (a.spec.of, ""), "ratio": (a.spec.match, "bool")}.get(
                    a.kind, (a.spec.value, "float"))
                arg = wrap + code(e, r.env, f"_a{i}_{j}", a.argf)
            if a.kind == "count":  # ``Aggregate._push_count``
                out += [f"{ind}st = s[{off + j}]", f"{ind}b = {bucket(a.width)}",
                        f"{ind}if b != st[1]:", f"{ind}    st.step(b)",
                        f"{ind}if len(st) > 3:", f"{ind}    st[-1] += 1",
                        f"{ind}st[0] = x = st[0] + 1", f"{ind}{g} = float(x)"]
            elif a.kind == "ratio":  # ``Aggregate._push_ratio``
                out += [f"{ind}st = s[{off + j}]", f"{ind}b = {bucket(a.width)}", f"{ind}{g} = st.push(b, {arg})"]
            elif a.kind == "distinct" and a.window > 0 and a.max_values >= 1:
                # ``Aggregate._push_distinct``'s two common cases inline, the rest through it: a new set
                # ([x, now]: nothing to prune) and the value seen last (only its time moves) with nothing
                # past the window (for one value: the slow path checks after the update, as it does).
                ns[f"_p{i}_{j}"], ns[f"_dw{i}_{j}"] = a.push, a.window
                out += [f"{ind}st = s[{off + j}]", f"{ind}x = {arg}", f"{ind}n = len(st)",
                        f"{ind}if not n:", f"{ind}    st += (x, now)", f"{ind}    {g} = 1.0",
                        f"{ind}elif not n & 1 and st[(n >> 1) - 1] == x and st[n >> 1] >= now - _dw{i}_{j}:",
                        f"{ind}    st[-1] = now", f"{ind}    {g} = float(n >> 1)",
                        f"{ind}else:", f"{ind}    {g} = _p{i}_{j}(st, now, x)"]
            else:
                ns[f"_p{i}_{j}"] = a.push
                out.append(f"{ind}{g} = _p{i}_{j}(s[{off + j}], now, {arg})")
        if r.threshold is not None:
            thr = code(r.spec.threshold, r.env, f"_t{i}", r.threshold, names)
            out += [f"{ind}if {thr}:", f"{ind}    h = True"]
        else:
            out.append(f"{ind}h = True")
        values = ", ".join(f"{a.name!r}: {names[a.ctx_key]}" for a in r.aggregates)
        out += ["    except _E:", f"        err(_r{i}, v)",
                "    if h:", "        h = False", f"        hit(_r{i}, k, {{{values}}}, c, now, v, store)"]
    out.append("    return filled")
    init = [*(shared.memo.values() if shared.memo else ()), *row_vars.values(), *bucket_vars.values()]
    if init:
        out.insert(1, "    " + " = ".join([*init, "_U"]))
    exec(compile("\n".join(out), "<rules>", "exec"), ns)  # source built above from checked expressions
    run: Program = ns["run"]
    return run


class _Plan:
    """Per rule set: rules split by whether they read scores, and the action targets a request reads."""

    __slots__ = ("memory_request", "memory_response", "request_post", "request_pre", "request_rules",
                 "response_post", "response_pre", "response_rules", "score_keys", "slots", "targets")

    def __init__(self, rs: CompiledRuleSet) -> None:
        self.request_pre = tuple(r for r in rs.request_rules if not r.uses_score)
        self.request_post = tuple(r for r in rs.request_rules if r.uses_score)
        self.response_pre = tuple(r for r in rs.response_rules if not r.uses_score)
        self.response_post = tuple(r for r in rs.response_rules if r.uses_score)
        self.request_rules = self.request_pre + self.request_post
        self.response_rules = self.response_pre + self.response_post
        self.slots = row_layout(rs.rules)[0]  # as the memory store lays out its rows
        self.memory_request = _program(self.request_rules, True, slots=self.slots)
        self.memory_response = _program(self.response_rules, False, slots=self.slots)
        feats = set(rs.action_keys)
        for r in rs.rules:
            for a in r.actions:
                if a.kind in ("alert", "block"):
                    feats.add(r.key if a.on == "key" else SCOPES[a.on])
        self.targets = tuple(sorted(feats))
        # Scopes some rule adds points to: the only ones that can have a score (a remote store reads
        # just these; scores of scopes no rule of this set feeds any more are not reported).
        scored = {s for r in rs.rules if r.score is not None for s in r.score.to}
        self.score_keys = tuple(k for k in SCORE_KEYS if k[1] in scored)


Steps = Generator[Fetch, RuleView, None]


class Engine:
    """Holds the live rule set and a rule store; ``swap`` replaces the rules and keeps the state.

    ``store`` defaults to a per-process ``MemoryRuleStore``; ``use_store`` installs a shared one
    (``proxy.policy.store_redis``). Hit and error counts are per process.
    """

    def __init__(self, ruleset: CompiledRuleSet, *, shadow: bool = False, store: Any = None) -> None:
        self.ruleset = ruleset
        self.shadow = shadow  # global dry-run: every rule behaves as mode: shadow
        self.store: Any = store if store is not None else MemoryRuleStore(ruleset)
        self.hit_counts: dict[str, list[int]] = {}  # rule id -> [hits, shadow hits]
        self.errors: dict[str, int] = {}
        self._plan = _Plan(ruleset)
        self._on_hit, self._on_error = self._hit, self._error  # bound once: passed to every run

    def use_store(self, store: Any) -> None:
        """Keep rule state in ``store`` from now on (built for the current rule set)."""
        store.swap(self.ruleset)
        self.store = store

    # -- the memory store's tables (tools, tests, explain) --------------------------------------

    def _memory(self) -> MemoryRuleStore:
        store = self.store
        if not isinstance(store, MemoryRuleStore):
            raise RuntimeError("this engine keeps its rule state in a shared store: use the async methods")
        return store

    @property
    def windows(self) -> dict[str, dict[Any, tuple[Any, ...]]]:
        return self._memory().windows

    @property
    def scores(self) -> dict[str, dict[str, complex]]:
        return self._memory().scores

    @property
    def active(self) -> dict[str, Active | dict[tuple[str, str], Active]]:
        return self._memory().active

    @property
    def bans(self) -> dict[str, list[float]]:
        return self._memory().bans

    # -- rule set -------------------------------------------------------------------------------

    def swap(self, new: CompiledRuleSet) -> None:
        """Install ``new`` atomically (call on the event loop). Window state of rules whose id, key,
        condition and aggregates are unchanged is kept; scores and active actions always are."""
        self.store.swap(new)
        self._plan = _Plan(new)
        self.ruleset = new

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, ctx: dict[str, Any], now: float) -> Verdict:
        """Run request-phase rules on ``ctx`` (mutated: score.* keys are added). Memory store: one pass
        over the rules (``_program``), windows updated in place. It takes the same decisions in the same
        order as the phased path (``_steps``): rules that do not read scores first, scores read once
        before the first rule that does."""
        store = self.store
        if not isinstance(store, MemoryRuleStore):
            store = self._memory()  # (raises)
        v = Verdict()
        store.now = now
        filled_at = self._plan.memory_request(ctx, now, store, v, self._on_hit, self._on_error)
        collect_local(self.ruleset.action_keys, ctx, now, v, store)
        if filled_at != store.score_writes:  # scores changed after they were read (or never read)
            v.scores = store.fill_scores(ctx)
        return v

    def evaluate_response(self, ctx: dict[str, Any], now: float) -> Verdict:
        """Run response-phase rules once usage and status are known (``response.*`` set in ``ctx``)."""
        return self._respond_now(self._memory(), ctx, now)

    async def aevaluate(self, ctx: dict[str, Any], now: float, limits: Any = None) -> Verdict:
        """``evaluate`` on any store: one ``fetch`` (one round trip for Redis) on the hot path.
        ``limits`` (a ``proxy.state.joint.LimitsPart``, remote stores only) rides along with that fetch."""
        store = self.store
        if not store.remote:
            return self.evaluate(ctx, now)
        return await self._run(store, ctx, now, response=False, limits=limits)

    async def aevaluate_response(self, ctx: dict[str, Any], now: float) -> Verdict:
        store = self.store
        if not store.remote:
            return self.evaluate_response(ctx, now)
        if not self.ruleset.response_rules:
            return Verdict()
        return await self._run(store, ctx, now, response=True)

    def _respond_now(self, store: MemoryRuleStore, ctx: dict[str, Any], now: float) -> Verdict:
        """The memory store's response phase (``evaluate`` is its request phase): response rules read the
        scores as they were before all of them."""
        v = Verdict()
        plan = self._plan
        store.now = now
        if plan.response_rules:
            store.fill_scores(ctx)
            plan.memory_response(ctx, now, store, v, self._on_hit, self._on_error)
        return v

    async def _run(self, store: Any, ctx: dict[str, Any], now: float, *, response: bool,
                   limits: Any = None) -> Verdict:
        v = Verdict()
        steps = self._steps(ctx, now, v, response)
        with contextlib.suppress(StopIteration):  # the steps ended: the verdict is complete
            req = next(steps)
            if limits is not None:  # the first fetch carries the request's limiter ops
                req = steps.send(await store.fetch(req, now, limits))
            while True:
                req = steps.send(await store.fetch(req, now))
        return v

    def _steps(self, ctx: dict[str, Any], now: float, v: Verdict, response: bool) -> Steps:
        """The phases of one evaluation on a remote store; yields what it needs, receives the view."""
        plan = self._plan
        pre, post = (plan.response_pre, plan.response_post) if response else (plan.request_pre, plan.request_post)
        if response and not (pre or post):
            return
        req = Fetch()
        pending = self._match(pre, ctx, v, req.updates)
        for _, scope, feat in plan.score_keys:
            val = ctx.get(feat)
            if val:
                req.scores.append((scope, str(val)))
        for feat in plan.targets:
            val = ctx.get(feat)
            if val:
                req.targets.append(feat + SEP + str(val))
        view = yield req
        if response:
            view.fill_scores(ctx)  # response rules read the scores as they were when the phase began
        self._decide(pending, view.values, ctx, now, v, view)
        filled_at = -1
        if post:
            if not response:
                v.scores = view.fill_scores(ctx)
                filled_at = view.score_writes
            updates: list[WindowUpdate] = []
            pending = self._match(post, ctx, v, updates)
            values = (yield Fetch(updates)).values if updates else []
            self._decide(pending, values, ctx, now, v, view)
        if not response:
            collect(self.ruleset.action_keys, ctx, now, v, view)
            if filled_at != view.score_writes:  # scores changed after they were read (or never read)
                v.scores = view.fill_scores(ctx)
        view.commit()

    def _match(
        self, rules: tuple[CompiledRule, ...], ctx: dict[str, Any], v: Verdict, updates: list[WindowUpdate]
    ) -> list[_Pending]:
        """Phase 1: conditions and aggregate inputs (pure functions of the features)."""
        out: list[_Pending] = []
        for rule in rules:
            try:
                if not rule.when(ctx):
                    continue
                keyval = ctx[rule.key]
                if keyval == "" or keyval is None:
                    continue
            except _ERRORS:
                self._error(rule, v)
                continue
            idx, failed = -1, False
            if rule.aggregates:
                args: list[Any] = []
                try:
                    for a in rule.aggregates:
                        f = a.argf
                        args.append(None if f is None else f(ctx))
                except _ERRORS:
                    failed = True
                if args:
                    idx = len(updates)
                    updates.append((rule, keyval, args))
            out.append((rule, keyval, idx, failed))
        return out

    def _error(self, rule: CompiledRule, v: Verdict) -> None:
        # A runtime error (division by zero, a missing feature) reads as "no match", as in CEL.
        v.errors += 1
        self.errors[rule.id] = self.errors.get(rule.id, 0) + 1

    def _decide(
        self,
        pending: list[_Pending],
        windows: list[list[float]],
        ctx: dict[str, Any],
        now: float,
        v: Verdict,
        view: RuleView,
    ) -> None:
        """Phase 4: thresholds on the window values, hits, scores and actions (through the view)."""
        for rule, keyval, update, failed in pending:
            if failed:
                self._error(rule, v)
                continue
            values: dict[str, float] = {}
            try:
                if update >= 0:
                    for a, x in zip(rule.aggregates, windows[update], strict=True):
                        values[a.name] = ctx["agg." + a.name] = x
                if rule.threshold is not None and not rule.threshold(ctx):
                    continue
            except _ERRORS:
                self._error(rule, v)
                continue
            self._hit(rule, keyval, values, ctx, now, v, view)

    def _hit(
        self,
        rule: CompiledRule,
        keyval: Any,
        values: dict[str, float],
        ctx: dict[str, Any],
        now: float,
        v: Verdict,
        view: RuleView,
    ) -> None:
        """A rule fired: record the hit, add its score points, take its actions (through the view)."""
        shadow = self.shadow or rule.mode == "shadow"
        v.hits.append(Hit(rule.id, "shadow" if shadow else "enforce", str(keyval), values))
        hc = self.hit_counts.get(rule.id)
        if hc is None:
            hc = self.hit_counts[rule.id] = [0, 0]
        hc[1 if shadow else 0] += 1
        if rule.score is not None:
            for scope in rule.score.to:
                sval = ctx.get(SCOPES[scope])
                if sval:
                    if shadow:
                        v.actions.append(
                            {"rule": rule.id, "do": "score", "on": scope, "points": rule.score.points, "shadow": True}
                        )
                    else:
                        view.add_score(scope, str(sval), rule.score.points)
        for act in rule.actions:
            apply_action(rule, act, str(keyval), ctx, now, v, shadow, view)

    # -- operations -----------------------------------------------------------------------------

    def score(self, scope: str, value: str, now: float) -> float:
        return self._memory().score_at(scope, value, now)

    def _fill_scores(self, ctx: dict[str, Any], now: float) -> dict[str, float]:
        """Set ``score.<scope>`` in ``ctx`` from the memory store (explain); returns the non-zero ones."""
        mem = self._memory()
        mem.now = now
        return mem.fill_scores(ctx)

    def pardon(self, scope: str, value: str) -> int:
        """Lift every action on ``scope``/``value``, forget its ban history and score; returns the count."""
        feat = SCOPES.get(scope, scope)
        return self._memory().pardon_now(scope, feat + SEP + value, value)

    async def apardon(self, scope: str, value: str, now: float) -> int:
        """``pardon`` on any store (``now`` tells a Redis store which actions are still in force)."""
        feat = SCOPES.get(scope, scope)
        return int(await self.store.pardon(scope, feat + SEP + value, value, now))

    def sweep(self, now: float) -> int:
        """Drop idle per-key state held in this process (a Redis store's keys expire by themselves)."""
        return int(self.store.sweep_now(now))

    def state_of(self, scope: str, value: str, now: float) -> dict[str, Any]:
        """Scores, active actions and window values for one scope value (admin API, explain)."""
        return self._memory().state_now(scope, SCOPES.get(scope, scope), value, now)

    async def astate_of(self, scope: str, value: str, now: float) -> dict[str, Any]:
        """``state_of`` on any store."""
        out: dict[str, Any] = await self.store.state(scope, SCOPES.get(scope, scope), value, now)
        return out

    async def close(self) -> None:
        await self.store.close()

