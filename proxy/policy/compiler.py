"""Compile a merged ``RuleSetSpec``: conditions to closures, matchers to RE2 sets, aggregates to states.

All errors are collected (``RulesError``), each located at the YAML scalar, with the exact column
inside single-line expressions. The result is immutable and safe to build in a worker thread.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.policy import cel
from proxy.policy.cel import BOOL, DOUBLE, INT, LIST_INT, LIST_STRING, STRING, CelError, Env
from proxy.policy.celcode import compile_expr
from proxy.policy.matchers import PARTS, CompiledMatchers, PatternSet
from proxy.policy.signals import SCHEMA
from proxy.policy.spec import (
    SCOPES,
    ActionSpec,
    Expr,
    Problem,
    RulesError,
    RuleSetSpec,
    RuleSpec,
    ScoreSpec,
    Where,
)
from proxy.policy.windows import Aggregate

Cond = Callable[[Mapping[str, Any]], Any]
DEFAULT_HALF_LIFE = 3600.0


@dataclass(slots=True)
class CompiledRule:
    id: str
    description: str
    mode: str
    phase: str
    key: str
    when: Cond
    threshold: Cond | None
    aggregates: tuple[Aggregate, ...]
    score: ScoreSpec | None
    actions: tuple[ActionSpec, ...]
    tags: tuple[str, ...]
    uses_score: bool
    fingerprint: str
    spec: RuleSpec
    env: Env = field(repr=False)


@dataclass(slots=True)
class CompiledRuleSet:
    """What the engine runs. ``request_rules`` are ordered: score-independent rules first."""

    spec: RuleSetSpec
    rules: tuple[CompiledRule, ...]
    request_rules: tuple[CompiledRule, ...]
    response_rules: tuple[CompiledRule, ...]
    matchers: CompiledMatchers
    half_life: dict[str, float]
    action_keys: tuple[str, ...]  # feature names active actions can be attached to
    version: str
    # Feature names the live rules read (conditions, aggregates, keys): work for a feature no rule reads,
    # such as template clustering for ``signals.template_cluster``, can be skipped.
    reads: frozenset[str] = frozenset()
    # Features the engine looks up directly (rule keys, action targets, score scopes): never left lazy.
    key_features: frozenset[str] = frozenset()

    @property
    def files(self) -> tuple[str, ...]:
        return self.spec.files

    def rule(self, rid: str) -> CompiledRule | None:
        return next((r for r in self.rules if r.id == rid), None)


def _loc(e: Expr, err: CelError) -> tuple[Where, str]:
    if "\n" not in e.src.strip():
        return Where(e.where.file, e.where.line, e.where.col + e.col_shift + err.col - 1), err.message
    return e.where, f"{err.message} (column {err.col} of the expression)"


# The detector's trace-noun part leaves the prompt's sets: the request's own search for trace nouns answers the
# group (``cot.prompt_spans``, run by ``signals.compute_features`` when the prompt's set does not carry the group).
# What is left of its part (hiddenness words, dataset pretexts) is small enough to share the shapes' set: one
# pass less over every prompt (tests/benchmarks/bench_rules.py --pattern-groups).
_WORDS_PART, _SHAPES_PART = "cot:words", "cot:shapes"


def builtin_groups() -> list[tuple[str, tuple[str, ...]]]:
    """The built-in groups the prompt's sets carry (every one but the trace group)."""
    from proxy.policy.cot import TRACE_GROUP
    from proxy.policy.signals import BUILTIN_GROUPS

    return [(n, p) for n, p in BUILTIN_GROUPS if n != TRACE_GROUP]


def builtin_layout() -> dict[str, str]:
    """``matchers.PARTS`` with the words part (now without the trace group) in the shapes' set."""
    return {n: _SHAPES_PART if p == _WORDS_PART else p for n, p in PARTS.items()}


def compile_spec(spec: RuleSetSpec) -> CompiledRuleSet:
    problems: list[Problem] = []

    # Matchers: one RE2 set per text source; a refused pattern is a load error at the pattern.
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for m in spec.matchers.values():
        ok = []
        for pat, where in m.patterns:
            from proxy.policy.matchers import check_pattern

            reason = check_pattern(pat)
            if reason is not None:
                problems.append(
                    Problem(where, f"matchers.{m.name}.patterns", f"RE2 refuses '{pat}': {reason}")
                )
            else:
                ok.append(pat)
        groups.setdefault(m.source, []).append((m.name, ok))
    builtin = ((f"builtin:{n}", list(p)) for n, p in builtin_groups())
    groups["prompt"] = [*builtin, *groups.get("prompt", [])]
    by_source = {}
    for source, gs in groups.items():
        try:
            by_source[source] = PatternSet.build(gs, builtin_layout() if source == "prompt" else None)
        except ValueError as e:  # pragma: no cover - every pattern was checked above
            problems.append(Problem(Where("<matchers>", 1, 1), "matchers", str(e)))
    matchers = CompiledMatchers(by_source)

    lists: dict[str, tuple[str, frozenset[Any]]] = {}
    for name, (items, _) in spec.lists.items():
        lists[name] = (LIST_INT if items and isinstance(items[0], int) else LIST_STRING, frozenset(items))
    base_features: dict[str, str] = dict(SCHEMA)
    base_features.update({f"matchers.{n}": INT for n in spec.matchers})
    base_features.update({f"score.{s}": DOUBLE for s in SCOPES})

    # Macros are parsed once; type errors surface where they are used (and once here, standalone).
    macros: dict[str, cel.Node] = {}
    for name, mexpr in spec.macros.items():
        try:
            macros[name] = cel.parse(mexpr.src)
        except CelError as err:
            where, msg = _loc(mexpr, err)
            problems.append(Problem(where, f"macros.{name}", msg))
    for name, mexpr in spec.macros.items():
        if name in macros:
            try:
                compile_expr(mexpr.src, Env(base_features, lists, macros), want=None)
            except CelError as err:
                where, msg = _loc(mexpr, err)
                problems.append(Problem(where, f"macros.{name}", msg))

    rules: list[CompiledRule] = []
    for rs in spec.rules:
        rule = _compile_rule(rs, base_features, lists, macros, problems)
        if rule is not None:
            rules.append(rule)
    if problems:
        raise RulesError(problems)

    live = [r for r in rules if r.mode != "off"]
    req = [r for r in live if r.phase == "request"]
    req.sort(key=lambda r: r.uses_score)  # stable: file order within each group
    action_keys = sorted(
        {
            r.key if a.on == "key" else SCOPES[a.on]
            for r in live
            for a in r.actions
            if a.duration is not None and a.kind not in ("log", "alert")
        }
    )
    half_life = {s: spec.half_life.get(s, DEFAULT_HALF_LIFE) for s in SCOPES}
    # Everything the files say (lists, macros, matchers, rules, scoring), so any edit gives a new version;
    # the spec's repr holds no addresses and no sets, so it is the same in every process.
    version = hashlib.blake2b(repr(spec).encode(), digest_size=6).hexdigest()
    return CompiledRuleSet(
        spec,
        tuple(rules),
        tuple(req),
        tuple(r for r in live if r.phase == "response"),
        matchers,
        half_life,
        tuple(action_keys),
        version,
        frozenset(
            {r.key for r in live} | {f for r in live if r.env.refs is not None for f in r.env.refs}
        ),
        frozenset({r.key for r in live} | set(action_keys) | set(SCOPES.values())),
    )


def _compile_rule(
    rs: RuleSpec,
    base: dict[str, str],
    lists: dict[str, tuple[str, frozenset[Any]]],
    macros: dict[str, cel.Node],
    problems: list[Problem],
) -> CompiledRule | None:
    n0 = len(problems)
    where = rs.where or Where("<rules>", 1, 1)
    features = dict(base)
    if rs.phase == "request":
        for k in [k for k in features if k.startswith("response.")]:
            del features[k]
    if rs.key not in SCHEMA or SCHEMA[rs.key] not in (STRING, INT):
        keys = [k for k, t in SCHEMA.items() if t in (STRING, INT)]
        from proxy.policy.loader import suggest

        problems.append(
            Problem(
                where,
                "key",
                f"cannot aggregate by {rs.key!r}: use one of account, key, org, ip, "
                f"ip_prefix, template, template_cluster, prefix, user_agent, model, global, or a string "
                f"feature{suggest(rs.key, keys)}",
                rs.id,
            )
        )

    def comp(e: Expr | None, field_name: str, env: Env, want: str | None) -> tuple[Cond | None, str]:
        if e is None:
            return None, ""
        try:
            fn, typ = compile_expr(e.src, env, want=want)
            return fn, typ
        except CelError as err:
            w, msg = _loc(e, err)
            if "response." in msg or (
                err.message.startswith("unknown name 'response.") and rs.phase == "request"
            ):
                msg += " (response.* is known only in rules with phase: response)"
            problems.append(Problem(w, field_name, msg, rs.id))
            return None, ""

    refs: set[str] = set()
    env = Env(features, lists, macros, refs)
    when, _ = comp(rs.when, "when", env, BOOL)
    aggs: list[Aggregate] = []
    for a in rs.aggregates:
        f = f"aggregates.{a.name}"
        value_fn, _ = comp(a.value, f + ".value", env, DOUBLE)
        of_fn, of_t = comp(a.of, f + ".of", env, None)
        if a.of is not None and of_t and of_t not in (STRING, INT, BOOL):
            problems.append(
                Problem(a.where or where, f + ".of", f"distinct needs a string or int, got {of_t}", rs.id)
            )
        match_fn, _ = comp(a.match, f + ".match", env, BOOL)
        aggs.append(Aggregate(a, value_fn, of_fn, match_fn))
    env_t = Env({**features, **{f"agg.{a.name}": DOUBLE for a in rs.aggregates}}, lists, macros, refs)
    threshold, _ = comp(rs.threshold, "threshold", env_t, BOOL)
    if rs.aggregates and rs.threshold is None:
        problems.append(
            Problem(where, "threshold", "a rule with aggregates needs a threshold over agg.*", rs.id)
        )
    for act in rs.actions:
        if act.kind == "block" and act.increment is not None and act.duration is None:
            problems.append(
                Problem(
                    act.where or where,
                    "actions[block].increment",
                    "an escalating block needs a base duration in 'for'",
                    rs.id,
                )
            )
    if len(problems) > n0 or when is None:
        return None
    uses_score = any(r.startswith("score.") for r in refs)
    fp_src = repr(
        (
            rs.id,
            rs.phase,
            rs.key,
            [
                (
                    a.name,
                    a.kind,
                    a.window,
                    a.buckets,
                    a.samples,
                    a.value and a.value.src,
                    a.of and a.of.src,
                    a.match and a.match.src,
                )
                for a in rs.aggregates
            ],
            rs.when.src,
        )
    )
    fingerprint = hashlib.blake2b(fp_src.encode(), digest_size=8).hexdigest()
    return CompiledRule(
        rs.id,
        rs.description,
        rs.mode,
        rs.phase,
        rs.key,
        when,
        threshold,
        tuple(aggs),
        rs.score,
        rs.actions,
        rs.tags,
        uses_score,
        fingerprint,
        rs,
        env_t,
    )


def type_names() -> tuple[str, ...]:
    return (INT, DOUBLE, BOOL, STRING, LIST_STRING, LIST_INT)
