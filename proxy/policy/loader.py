"""Read rule files into specs: strict, located, every error collected.

``read_files`` walks PyYAML nodes (composed once with the C loader, so every value keeps its line and
column), refuses unknown keys with a suggestion, detects duplicate keys (PyYAML would silently keep the
last), and checks durations and enums on the raw text, so the YAML 1.1 traps (``1:30`` is a number,
``off`` is false) cannot slip through. Files are layered in order: a later file may extend a list
(``{append: [...]}``), replace a macro or list (``{replace: ...}``), or change fields of an existing
rule (``override: true``). ``load_ruleset`` then compiles the merged spec (see ``compiler``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from proxy.policy import spec as S
from proxy.policy.fieldreaders import read_action, read_aggregates, read_score
from proxy.policy.reader import ID_PATTERN, CLoader, NodeReader, parse_duration, suggest
from proxy.policy.spec import Problem, RulesError, Where

__all__ = ["load_ruleset", "load_text", "parse_duration", "read_files", "read_text", "rule_files", "suggest"]

RULE_KEYS = (
    "id",
    "description",
    "mode",
    "phase",
    "when",
    "key",
    "aggregates",
    "threshold",
    "score",
    "actions",
    "tags",
    "max_keys",
    "override",
)
# --------------------------------------------------------------------------- files


def rule_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand directories (sorted ``*.yaml``, tests excluded) and put ``*.local.yaml`` last."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(x for x in p.glob("*.yaml") if not x.name.endswith(".test.yaml")))
        else:
            out.append(p)
    return [p for p in out if not p.name.endswith(".local.yaml")] + [
        p for p in out if p.name.endswith(".local.yaml")
    ]


class _Merge:
    """Accumulates the layered spec across files."""

    def __init__(self) -> None:
        self.lists: dict[str, tuple[tuple[Any, ...], Where]] = {}
        self.macros: dict[str, S.Expr] = {}
        self.matchers: dict[str, S.MatcherSpec] = {}
        self.rules: dict[str, S.RuleSpec] = {}
        self.half_life: dict[str, float] = {}


def read_files(paths: Sequence[str | Path]) -> tuple[S.RuleSetSpec, list[Problem]]:
    """Read and validate rule files; returns the merged spec of what read cleanly, and every problem."""
    problems: list[Problem] = []
    merge = _Merge()
    files = rule_files(paths)
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            problems.append(Problem(Where(str(path), 1, 1), "", f"cannot read: {e.strerror or e}"))
            continue
        _read_one(str(path), text, merge, problems)
    spec = S.RuleSetSpec(
        files=tuple(str(p) for p in files),
        lists=merge.lists,
        macros=merge.macros,
        matchers=merge.matchers,
        rules=tuple(merge.rules.values()),
        half_life=merge.half_life,
    )
    return spec, problems


def read_text(file: str, text: str) -> tuple[S.RuleSetSpec, list[Problem]]:
    """Read one document given as text (tests, the admin API)."""
    problems: list[Problem] = []
    merge = _Merge()
    _read_one(file, text, merge, problems)
    return S.RuleSetSpec(
        (file,), merge.lists, merge.macros, merge.matchers, tuple(merge.rules.values()), merge.half_life
    ), problems


def _read_one(file: str, text: str, merge: _Merge, problems: list[Problem]) -> None:
    try:
        root = yaml.compose(text, Loader=CLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = Where(file, mark.line + 1, mark.column + 1) if mark else Where(file, 1, 1)
        problems.append(Problem(where, "", f"YAML syntax error: {e.problem or e}"))
        return
    except yaml.YAMLError as e:
        problems.append(Problem(Where(file, 1, 1), "", f"YAML error: {e}"))
        return
    r = NodeReader(file, problems)
    if root is None:
        problems.append(Problem(Where(file, 1, 1), "", "empty file; expected 'format: 1'"))
        return
    top = r.mapping(root, "", ("format", "lists", "macros", "matchers", "scoring", "rules"), ("format",))
    if top is None:
        return
    if "format" in top:
        fnode = top["format"][1]
        if r.scalar(fnode, "format") != str(S.FORMAT):
            r.err(
                fnode, "format", f"unsupported format {fnode.value!r}; this version reads format: {S.FORMAT}"
            )
            return
    if "lists" in top:
        _read_lists(r, top["lists"][1], merge)
    if "macros" in top:
        _read_macros(r, top["macros"][1], merge)
    if "matchers" in top:
        _read_matchers(r, top["matchers"][1], merge)
    if "scoring" in top:
        sc = r.mapping(top["scoring"][1], "scoring", ("half_life",))
        if sc and "half_life" in sc:
            hl = r.mapping(sc["half_life"][1], "scoring.half_life", tuple(S.SCOPES))
            for scope, (_, vnode) in (hl or {}).items():
                d = r.duration(vnode, f"scoring.half_life.{scope}")
                if d is not None:
                    merge.half_life[scope] = d
    if "rules" in top:
        for node in r.seq(top["rules"][1], "rules") or []:
            _read_rule(r, node, merge)
            r.rule = None


def _read_lists(r: NodeReader, node: yaml.Node, merge: _Merge) -> None:
    for name, (knode, vnode) in (r.mapping(node, "lists", None) or {}).items():
        field = f"lists.{name}"
        if r.name(knode, field) is None:
            continue
        mode = "define"
        if isinstance(vnode, yaml.MappingNode):
            m = r.mapping(vnode, field, ("append", "replace"))
            if not m or len(m) != 1:
                if m is not None:
                    r.err(vnode, field, "give exactly one of 'append' or 'replace'")
                continue
            mode, (_, vnode) = next(iter(m.items()))
        items_nodes = r.seq(vnode, field)
        if items_nodes is None:
            continue
        items: list[Any] = []
        for it in items_nodes:
            if not isinstance(it, yaml.ScalarNode):
                r.err(it, field, "list items must be scalars")
                continue
            items.append(int(it.value) if it.tag == "tag:yaml.org,2002:int" else str(it.value))
        if len({type(x) for x in items}) > 1:
            r.err(vnode, field, "a list must hold only strings or only integers")
            continue
        if mode == "define":
            if name in merge.lists:
                r.err(
                    knode,
                    field,
                    f"list '{name}' is already defined at {merge.lists[name][1]}; "
                    "use {append: [...]} or {replace: [...]}",
                )
                continue
            merge.lists[name] = (tuple(items), r.where(knode))
        elif name not in merge.lists:
            r.err(knode, field, f"cannot {mode} unknown list '{name}'{suggest(name, merge.lists)}")
        elif mode == "append":
            old, where = merge.lists[name]
            merge.lists[name] = (old + tuple(x for x in items if x not in old), where)
        else:
            merge.lists[name] = (tuple(items), r.where(knode))


def _read_macros(r: NodeReader, node: yaml.Node, merge: _Merge) -> None:
    for name, (knode, vnode) in (r.mapping(node, "macros", None) or {}).items():
        field = f"macros.{name}"
        if r.name(knode, field) is None:
            continue
        replace = False
        if isinstance(vnode, yaml.MappingNode):
            m = r.mapping(vnode, field, ("replace",), ("replace",))
            if not m:
                continue
            vnode, replace = m["replace"][1], True
        e = r.expr(vnode, field)
        if e is None:
            continue
        if name in merge.macros and not replace:
            r.err(
                knode,
                field,
                f"macro '{name}' is already defined at {merge.macros[name].where}; use {{replace: ...}}",
            )
        elif replace and name not in merge.macros:
            r.err(knode, field, f"cannot replace unknown macro '{name}'{suggest(name, merge.macros)}")
        else:
            merge.macros[name] = e


def _read_matchers(r: NodeReader, node: yaml.Node, merge: _Merge) -> None:
    for name, (knode, vnode) in (r.mapping(node, "matchers", None) or {}).items():
        field = f"matchers.{name}"
        if r.name(knode, field) is None:
            continue
        m = r.mapping(vnode, field, ("on", "patterns", "override"), ())
        if m is None:
            continue
        override = "override" in m and m["override"][1].value in ("true", "True", "yes")
        old = merge.matchers.get(name)
        if old is not None and not override:
            r.err(knode, field, f"matcher '{name}' is already defined at {old.where}; add 'override: true'")
            continue
        if old is None and override:
            r.err(knode, field, f"cannot override unknown matcher '{name}'{suggest(name, merge.matchers)}")
            continue
        source = old.source if old else None
        if "on" in m:
            source = r.enum(m["on"][1], f"{field}.on", S.MATCHER_SOURCES)
        elif old is None:
            r.err(vnode, field, "missing required key 'on'")
        patterns = old.patterns if old else ()
        if "patterns" in m:
            pats = []
            for p in r.seq(m["patterns"][1], f"{field}.patterns") or []:
                text = r.scalar(p, f"{field}.patterns")
                if text is not None:
                    pats.append((text, r.where(p)))
            patterns = tuple(pats)
        elif old is None:
            r.err(vnode, field, "missing required key 'patterns'")
        if source is not None and patterns:
            merge.matchers[name] = S.MatcherSpec(name, source, patterns, r.where(knode))


def _read_rule(r: NodeReader, node: yaml.Node, merge: _Merge) -> None:
    if isinstance(node, yaml.MappingNode):  # name the rule in every error, even those about its keys
        id_node = next((v for k, v in node.value if getattr(k, "value", None) == "id"), None)
        if isinstance(id_node, yaml.ScalarNode):
            r.rule = str(id_node.value)
    n_before = len(r.problems)
    m = r.mapping(node, "", RULE_KEYS, ("id",))
    if m is None or "id" not in m:
        return
    rid = r.name(m["id"][1], "id", ID_PATTERN)
    if rid is None:
        return
    r.rule = rid
    override = False
    if "override" in m:
        ov = r.scalar(m["override"][1], "override")
        if ov not in ("true", "True", "false", "False"):
            r.err(m["override"][1], "override", f"expected true or false, got {ov!r}")
        override = ov in ("true", "True")
    old = merge.rules.get(rid)
    if old is not None and not override:
        r.err(
            m["id"][1],
            "id",
            f"duplicate rule id (first defined at {old.where}); "
            "to change it from a later file, add 'override: true'",
        )
        return
    if old is None and override:
        r.err(m["id"][1], "override", f"no earlier rule with this id to override{suggest(rid, merge.rules)}")
        return
    if old is None:
        for req in ("when", "key"):
            if req not in m:
                r.err(node, "", f"missing required key '{req}'")
    fields: dict[str, Any] = {}
    for key, (_, v) in m.items():
        if key == "description":
            fields[key] = r.scalar(v, key) or ""
        elif key == "mode":
            fields[key] = r.enum(v, key, S.MODES)
        elif key == "phase":
            fields[key] = r.enum(v, key, S.PHASES)
        elif key in ("when", "threshold"):
            fields[key] = r.expr(v, key)
        elif key == "key":
            text = r.scalar(v, key)
            fields[key] = S.KEY_SHORTHANDS.get(text, text) if text else None
        elif key == "aggregates":
            fields[key] = read_aggregates(r, v)
        elif key == "score":
            fields[key] = read_score(r, v)
        elif key == "actions":
            fields[key] = tuple(a for a in (read_action(r, x) for x in r.seq(v, key) or []) if a)
        elif key == "tags":
            fields[key] = tuple(r.scalar(x, key) or "" for x in r.seq(v, key) or [])
        elif key == "max_keys":
            num = r.number(v, key, integer=True, minimum=1)
            fields[key] = int(num) if num is not None else None
    fields = {k: v for k, v in fields.items() if v is not None}
    if old is not None:
        if len(r.problems) == n_before:
            merge.rules[rid] = dataclasses.replace(old, **fields)
        return
    if "when" not in fields or "key" not in fields:
        return
    # A rule with errors is still merged, so its expressions get checked too: every problem is reported in
    # one run, and the load fails anyway because problems were recorded.
    merge.rules[rid] = S.RuleSpec(
        id=rid,
        description=fields.get("description", ""),
        mode=fields.get("mode") or "enforce",
        phase=fields.get("phase") or "request",
        when=fields["when"],
        key=fields["key"],
        aggregates=fields.get("aggregates", ()),
        threshold=fields.get("threshold"),
        score=fields.get("score"),
        actions=fields.get("actions", ()),
        tags=fields.get("tags", ()),
        max_keys=fields.get("max_keys", S.DEFAULT_MAX_KEYS),
        where=r.where(node),
    )


def load_ruleset(paths: Sequence[str | Path]) -> Any:
    """Read, validate and compile; raises ``RulesError`` with every problem. Returns a ``CompiledRuleSet``."""
    spec, problems = read_files(paths)
    return compile_checked(spec, problems)


def load_text(file: str, text: str) -> Any:
    """``load_ruleset`` for one document given as text."""
    spec, problems = read_text(file, text)
    return compile_checked(spec, problems)


def compile_checked(spec: S.RuleSetSpec, problems: list[Problem]) -> Any:
    """Compile what read cleanly too, so one run reports YAML and expression errors together."""
    from proxy.policy.compiler import compile_spec

    try:
        compiled = compile_spec(spec)
    except RulesError as e:
        problems = [*problems, *e.problems]
        compiled = None
    if problems:
        problems.sort(key=lambda p: (p.where.file, p.where.line, p.where.col))
        raise RulesError(problems)
    return compiled
