"""``rules test``: run the ``*.test.yaml`` cases beside rule files on a fake clock.

A test file lists cases; each case sends timestamped requests (with ``repeat``/``every``) through a
fresh engine and checks expectations on the last repetition of a request: rule hits, actions in force,
controls, tags, blocked. Test files are read as strictly as rule files (unknown keys are errors).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from proxy.policy.clusters import TemplateClusters
from proxy.policy.compiler import CompiledRuleSet
from proxy.policy.engine import Engine, Verdict
from proxy.policy.loader import load_ruleset, parse_duration
from proxy.policy.reader import CLoader, NodeReader
from proxy.policy.spec import Problem, RulesError, Where
from proxy.policy.toolkit import effective_actions, evaluate_record

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: test cases start here unless they say otherwise

TEST_KEYS = ("format", "rules", "shadow", "cases")
CASE_KEYS = ("name", "start", "requests")
REQ_KEYS = (
    "at",
    "after",
    "repeat",
    "every",
    "account",
    "tier",
    "org",
    "key_id",
    "ip",
    "user_agent",
    "path",
    "model",
    "prompt",
    "system",
    "messages",
    "stream",
    "max_tokens",
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "reasoning",
    "reasoning_budget",
    "reasoning_effort",
    "reasoning_display",
    "tools",
    "response",
    "expect",
)
EXPECT_KEYS = ("hits", "no_hits", "actions", "no_actions", "blocked", "controls", "tags")


def test_files_for(paths: list[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(p.glob("*.test.yaml")))
        elif p.name.endswith(".test.yaml"):
            out.append(p)
        else:
            cand = p.with_name(p.name[: -len(".yaml")] + ".test.yaml") if p.name.endswith(".yaml") else None
            if cand is not None and cand.exists():
                out.append(cand)
    return list(dict.fromkeys(out))


def _start(text: str) -> float | None:
    with contextlib.suppress(ValueError):
        return float(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _py(node: yaml.Node) -> Any:
    return yaml.SafeLoader(io.StringIO("")).construct_object(node, deep=True)  # plain data for a subtree


def run_tests(paths: list[str]) -> tuple[int, str]:
    files = test_files_for(paths)
    if not files:
        return 1, "no *.test.yaml files found beside " + ", ".join(paths)
    lines: list[str] = []
    failed = passed = 0
    for tf in files:
        problems: list[Problem] = []
        cases = _read_test_file(tf, problems)
        if problems or cases is None:
            lines += [str(p) for p in problems]
            failed += 1
            continue
        rule_paths, shadow, case_list = cases
        try:
            rs = load_ruleset(rule_paths)
        except RulesError as e:
            lines += [str(p) for p in e.problems]
            failed += 1
            continue
        covered: set[str] = set()
        for name, start, reqs in case_list:
            engine = Engine(rs, shadow=shadow)
            errs = _run_case(engine, rs, start, reqs)
            covered |= {rid for rid, counts in engine.hit_counts.items() if sum(counts)}
            if errs:
                failed += 1
                lines.append(f"FAIL {tf}: {name}")
                lines += [f"  {e}" for e in errs]
            else:
                passed += 1
                lines.append(f"ok   {tf}: {name}")
        live = [r.id for r in rs.rules if r.mode != "off"]
        missed = [rid for rid in live if rid not in covered]
        lines.append(
            f"coverage {tf}: {len(live) - len(missed)}/{len(live)} rules hit by some case"
            + (f"; never hit: {', '.join(missed)}" if missed else "")
        )
    lines.append(f"{passed} passed, {failed} failed")
    return (1 if failed else 0), "\n".join(lines)


def _read_test_file(tf: Path, problems: list[Problem]) -> tuple[list[str], bool, list[Any]] | None:
    r = NodeReader(str(tf), problems)
    try:
        root = yaml.compose(tf.read_text(encoding="utf-8"), Loader=CLoader)
    except (OSError, yaml.YAMLError) as e:
        problems.append(Problem(Where(str(tf), 1, 1), "", f"cannot read test file: {e}"))
        return None
    if root is None:
        problems.append(Problem(Where(str(tf), 1, 1), "", "empty test file"))
        return None
    top = r.mapping(root, "", TEST_KEYS, ("format", "cases"))
    if top is None:
        return None
    if "format" in top and r.scalar(top["format"][1], "format") != "1":
        r.err(top["format"][1], "format", "unsupported format; expected 1")
    default = tf.with_name(tf.name[: -len(".test.yaml")] + ".yaml")
    rule_paths = [str(default)]
    if "rules" in top:
        rule_paths = [
            str(tf.parent / (r.scalar(x, "rules") or "")) for x in r.seq(top["rules"][1], "rules") or []
        ]
    shadow = "shadow" in top and top["shadow"][1].value in ("true", "True")
    cases = []
    for cnode in (r.seq(top["cases"][1], "cases") or []) if "cases" in top else []:
        c = r.mapping(cnode, "cases[]", CASE_KEYS, ("name", "requests"))
        if not c or "name" not in c or "requests" not in c:
            continue
        r.rule = r.scalar(c["name"][1], "name")
        start = DEFAULT_START
        if "start" in c:
            s = _start(str(c["start"][1].value))
            if s is None:
                r.err(
                    c["start"][1],
                    "start",
                    "expected epoch seconds or an ISO 8601 time like 2026-01-01T00:00:00Z",
                )
            else:
                start = s
        reqs = []
        for rnode in r.seq(c["requests"][1], "requests") or []:
            m = r.mapping(rnode, "requests[]", REQ_KEYS)
            if m is None:
                continue
            for f in ("at", "after", "every"):
                if f in m and str(m[f][1].value) not in ("0", "0s"):
                    r.duration(m[f][1], f)
            if "expect" in m:
                r.mapping(m["expect"][1], "expect", EXPECT_KEYS)
            line = rnode.start_mark.line + 1
            reqs.append((line, _py(rnode)))
        cases.append((r.rule, start, reqs))
        r.rule = None
    if problems:
        return None
    return rule_paths, shadow, cases


def _secs(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    d = parse_duration(str(v))
    return d if d is not None else 0.0


def _run_case(
    engine: Engine, rs: CompiledRuleSet, start: float, reqs: list[tuple[int, dict[str, Any]]]
) -> list[str]:
    errs: list[str] = []
    clusters = TemplateClusters()  # one per case, like the engine's state
    t = start
    for line, req in reqs:
        if "at" in req:
            t = start + _secs(req["at"])
        elif "after" in req:
            t += _secs(req["after"])
        repeat = int(req.get("repeat", 1))
        every = _secs(req.get("every", 0))
        v: Verdict | None = None
        for i in range(repeat):
            if i:
                t += every
            rec = {
                "ts": t,
                "request": req,
                "account": {
                    "id": req.get("account", "acct"),
                    "tier": req.get("tier", "free"),
                    "org": req.get("org", ""),
                },
                "key_id": req.get("key_id", ""),
                "ip": req.get("ip", "203.0.113.7"),
                "user_agent": req.get("user_agent", "test-client"),
                "path": req.get("path", "/v1/chat/completions"),
                "response": req.get("response"),
            }
            _, v = evaluate_record(engine, rs, rec, t, clusters)
        if "expect" in req and v is not None:
            errs += [f"line {line}: {e}" for e in _check_expect(req["expect"] or {}, v)]
    return errs


def _check_expect(exp: dict[str, Any], v: Verdict) -> Iterable[str]:
    hit = set(v.hit_ids)
    acts = effective_actions(v)
    for rid in exp.get("hits", []) or []:
        if rid not in hit:
            yield f"expected a hit of {rid!r}; hits were {sorted(hit) or 'none'}"
    for rid in exp.get("no_hits", []) or []:
        if rid in hit:
            yield f"expected no hit of {rid!r}"
    for a in exp.get("actions", []) or []:
        if a not in acts:
            yield f"expected action {a!r}; actions were {sorted(acts) or 'none'}"
    for a in exp.get("no_actions", []) or []:
        if a in acts:
            yield f"expected no action {a!r}"
    if "blocked" in exp and bool(exp["blocked"]) != (v.block is not None):
        yield f"expected blocked={bool(exp['blocked'])}, got {v.block is not None}"
    for k, want in (exp.get("controls") or {}).items():
        if v.controls.get(k) != want:
            yield f"expected control {k}={want!r}, got {v.controls.get(k)!r}"
    for tag in exp.get("tags", []) or []:
        if tag not in v.tags:
            yield f"expected tag {tag!r}; tags were {sorted(v.tags) or 'none'}"
