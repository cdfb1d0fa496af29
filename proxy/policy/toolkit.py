"""The policy author's toolkit: check, replay, explain; ``run_tests`` lives in ``ruletests``.

Pure functions returning (exit code, text).

Everything runs offline on event time: the engine gets each request's timestamp, never the wall clock.
Traffic input is the audit-log JSONL (``audit.py``); a record may instead carry a compact ``request``
(model, prompt/messages, params) whose features are recomputed, so new matchers apply to old traffic.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import orjson

from proxy.policy import cel
from proxy.policy.celcode import compile_node, conjuncts
from proxy.policy.clusters import TemplateClusters
from proxy.policy.compiler import CompiledRule, CompiledRuleSet
from proxy.policy.engine import Engine, Verdict
from proxy.policy.loader import load_ruleset, rule_files
from proxy.policy.signals import (
    SKELETON_KEY,
    RequestMeta,
    compute_features,
    features_from_json,
    view_from_record,
)
from proxy.policy.spec import RulesError

# --------------------------------------------------------------------------- check


def run_tests(paths: list[str]) -> tuple[int, str]:
    """Run the ``*.test.yaml`` cases beside ``paths`` (see ``ruletests``)."""
    from proxy.policy.ruletests import run_tests as run

    return run(paths)


def check(paths: list[str], *, as_json: bool = False) -> tuple[int, str]:
    try:
        rs = load_ruleset(paths)
    except RulesError as e:
        if as_json:
            return 1, orjson.dumps(
                {"ok": False, "problems": [p.as_dict() for p in e.problems]}, option=orjson.OPT_INDENT_2
            ).decode()
        return 1, "\n".join(str(p) for p in e.problems) + f"\n{len(e.problems)} problem(s)"
    if as_json:
        return 0, orjson.dumps(
            {"ok": True, "version": rs.version, "files": list(rs.files), "rules": [r.id for r in rs.rules]},
            option=orjson.OPT_INDENT_2,
        ).decode()
    modes: dict[str, int] = {}
    for r in rs.rules:
        modes[r.mode] = modes.get(r.mode, 0) + 1
    summary = ", ".join(f"{n} {m}" for m, n in sorted(modes.items()))
    return 0, f"ok: {len(rs.rules)} rules ({summary}) in {len(rs.files)} file(s), version {rs.version}"


# --------------------------------------------------------------------------- records -> features


def meta_from_record(rec: dict[str, Any]) -> RequestMeta:
    acct = rec.get("account") or {}
    if isinstance(acct, str):
        acct = {"id": acct}
    f = rec.get("features") or {}
    return RequestMeta(
        account_id=str(acct.get("id") or f.get("account.id", "")),
        tier=str(acct.get("tier") or f.get("account.tier", "")),
        org=str(acct.get("org") or f.get("account.org", "") or ""),
        key_id=str(rec.get("key_id") or f.get("account.key", "")),
        ip=str(rec.get("ip") or f.get("client.ip", "")),
        user_agent=str(rec.get("user_agent") or f.get("client.user_agent", "")),
        path=str(rec.get("path") or f.get("request.path", "")),
    )


def features_of(
    rec: dict[str, Any], rs: CompiledRuleSet, ts: float, clusters: TemplateClusters | None = None
) -> dict[str, Any]:
    """Recompute features from a compact ``request`` when present, else take the recorded ones.

    With ``clusters``, ``signals.template_cluster`` reads it as the judge does, and the request's template
    is observed right after (as the judge's ``on_done`` does), so replays see the clusters form."""
    if "request" in rec:
        ctx = compute_features(
            view_from_record(rec["request"]), meta_from_record(rec), ts, rs.matchers, clusters=clusters
        )
        if clusters is not None and ctx.get(SKELETON_KEY):
            clusters.observe(ctx["signals.template"], ctx[SKELETON_KEY])
        return ctx
    ctx = features_from_json(dict(rec.get("features") or {}))
    for name in rs.matchers.names:
        ctx.setdefault("matchers." + name, 0)
    if "prompt" in rec and rs.matchers.names:
        extra: dict[str, Any] = {}
        rs.matchers.run({"prompt": rec["prompt"], "last_user": rec["prompt"]}, extra)
        ctx.update(extra)
    return ctx


def evaluate_record(
    engine: Engine, rs: CompiledRuleSet, rec: dict[str, Any], ts: float, clusters: TemplateClusters | None = None
) -> tuple[dict[str, Any], Verdict]:
    """One logged request through the rules on event time: request phase, then (when the record has a
    response and the set has response rules) the response phase, its hits and actions merged in. Returns
    the request's features and the verdict."""
    ctx = features_of(rec, rs, ts, clusters)
    v = engine.evaluate(ctx, ts)
    resp = response_of(rec)
    if resp is not None and rs.response_rules:
        ctx.update(resp)
        rv = engine.evaluate_response(ctx, ts)
        v.hits.extend(rv.hits)
        v.actions.extend(rv.actions)
    return ctx, v


def response_of(rec: dict[str, Any]) -> dict[str, Any] | None:
    r = rec.get("response")
    if not isinstance(r, dict):
        return None
    return {
        "response.status": int(r.get("status", 200)),
        "response.input_tokens": int(r.get("input_tokens", 0)),
        "response.output_tokens": int(r.get("output_tokens", 0)),
        "response.reasoning_tokens": int(r.get("reasoning_tokens", 0)),
        "response.error": str(r.get("error", "")),
    }


def effective_actions(v: Verdict) -> set[str]:
    """Action kinds this request is subject to: taken now (not shadow) or still in force."""
    kinds = {a["do"] for a in v.actions if not a.get("shadow")}
    kinds |= {
        {
            "throttle": "throttle",
            "pace_tps": "pace",
            "redaction": "redact",
            "harden": "harden",
            "cut_tokens": "cut",
        }[k]
        for k in v.controls
    }
    if v.block is not None:
        kinds.add("block")
    return kinds


def decision(rec: dict[str, Any], ts: float, ctx: dict[str, Any], v: Verdict) -> dict[str, Any]:
    return {
        "ts": ts,
        "request_id": rec.get("request_id"),
        "account": ctx.get("account.id", ""),
        "hits": [{"rule": h.rule, "mode": h.mode, "key": h.key, "values": h.values} for h in v.hits],
        "actions": v.actions,
        "controls": v.controls,
        "scores": v.scores,
        "blocked": v.block.rule if v.block is not None else None,
    }


def read_jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, orjson.loads(line)


# --------------------------------------------------------------------------- replay


def replay(
    rules: list[str],
    input_path: str,
    output_path: str | None = None,
    *,
    shadow: bool = False,
    sweep_every: float = 3600.0,
) -> tuple[int, str]:
    try:
        rs = load_ruleset(rules)
    except RulesError as e:
        return 1, "\n".join(str(p) for p in e.problems)
    engine = Engine(rs, shadow=shadow)
    clusters = TemplateClusters()
    hits: dict[str, list[int]] = {r.id: [0, 0] for r in rs.rules}
    acted: dict[str, set[str]] = {}
    blocked = n = bad = 0
    last_sweep = None
    out = open(output_path, "wb") if output_path else None
    try:
        for lineno, rec in read_jsonl(input_path):
            try:
                ts = float(rec["ts"])
            except (KeyError, TypeError, ValueError):
                bad += 1
                if bad <= 5:
                    print(f"{input_path}:{lineno}: record without a numeric 'ts'; skipped")
                continue
            if last_sweep is None:
                last_sweep = ts
            elif ts - last_sweep >= sweep_every:
                engine.sweep(ts)
                last_sweep = ts
            ctx, v = evaluate_record(engine, rs, rec, ts, clusters)
            n += 1
            for h in v.hits:
                hits[h.rule][0 if h.mode == "enforce" else 1] += 1
            for a in v.actions:
                if not a.get("shadow") and a["do"] not in ("log", "tag", "alert"):
                    acted.setdefault(a["rule"], set()).add(str(ctx.get("account.id", "")))
            if v.block is not None:
                blocked += 1
            if out is not None:
                out.write(orjson.dumps(decision(rec, ts, ctx, v), option=orjson.OPT_APPEND_NEWLINE))
    finally:
        if out is not None:
            out.close()
    lines = [
        f"replayed {n} requests ({bad} skipped), rules version {rs.version}",
        "",
        f"{'rule':<32} {'mode':<8} {'hits':>8} {'shadow':>8} {'accounts acted on':>18}",
    ]
    for r in rs.rules:
        lines.append(
            f"{r.id:<32} {r.mode:<8} {hits[r.id][0]:>8} {hits[r.id][1]:>8} {len(acted.get(r.id, ())):>18}"
        )
    all_acted = set().union(*acted.values()) if acted else set()
    lines += ["", f"blocked requests: {blocked}", f"accounts acted on: {len(all_acted)}"]
    if all_acted:
        lines.append("  " + ", ".join(sorted(all_acted)[:50]) + (" ..." if len(all_acted) > 50 else ""))
    return (1 if bad and not n else 0), "\n".join(lines)


# --------------------------------------------------------------------------- explain


def unparse(n: cel.Node) -> str:
    k = n.kind
    if k == "lit":
        v = n.value
        return (
            ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, str) else str(v)
        )
    if k == "list":
        return "[" + ", ".join(unparse(a) for a in n.args) + "]"
    if k in ("ident", "select"):
        return cel.dotted(n) or "?"
    if k == "unary":
        return f"{n.value}{unparse(n.args[0])}"
    if k == "binary":
        return f"{_paren(n.args[0], n.value)} {n.value} {_paren(n.args[1], n.value)}"
    if k == "cond":
        return f"{unparse(n.args[0])} ? {unparse(n.args[1])} : {unparse(n.args[2])}"
    if k == "call":
        return f"{n.value}({', '.join(unparse(a) for a in n.args)})"
    return f"{unparse(n.args[0])}.{n.value}({', '.join(unparse(a) for a in n.args[1:])})"


def _paren(n: cel.Node, parent: str) -> str:
    s = unparse(n)
    return f"({s})" if n.kind in ("binary", "cond") and n.value in ("||", "&&") and n.value != parent else s


def explain_rule(engine: Engine, rule: CompiledRule, ctx: dict[str, Any], now: float) -> dict[str, Any]:
    """Each top-level clause of ``when`` and ``threshold`` with its result and the values it read."""
    out: dict[str, Any] = {
        "rule": rule.id,
        "mode": rule.mode,
        "key": rule.key,
        "key_value": ctx.get(rule.key),
    }
    local = dict(ctx)
    aggs: dict[str, float] = {}
    sts = engine.windows.get(rule.fingerprint, {}).get(str(ctx.get(rule.key)))
    for a in rule.aggregates:
        val = a.read(sts[rule.aggregates.index(a)], now) if sts is not None else 0.0
        aggs[a.name] = local["agg." + a.name] = val
    engine._fill_scores(local, now)
    clauses = []
    for label, e in (("when", rule.spec.when), ("threshold", rule.spec.threshold)):
        if e is None:
            continue
        for node in conjuncts(cel.parse(e.src)):
            refs: set[str] = set()
            env = cel.Env(rule.env.features, rule.env.lists, rule.env.macros, refs)
            fn, _ = compile_node(node, env)
            try:
                result: Any = bool(fn(local))
            except Exception as err:  # an erroring clause is reported, not raised
                result = f"error: {err}"
            vals = {r: _jsonable(local.get(r)) for r in sorted(refs)}
            clauses.append({"part": label, "clause": unparse(node), "result": result, "values": vals})
    out["clauses"] = clauses
    out["aggregates"] = aggs
    out["matched"] = all(c["result"] is True for c in clauses)
    return out


def _jsonable(v: Any) -> Any:
    return sorted(v) if isinstance(v, frozenset) else v


def explain(
    rules: list[str],
    input_path: str,
    *,
    request_id: str | None = None,
    account: str | None = None,
    as_json: bool = False,
    limit: int = 20,
) -> tuple[int, str]:
    """Replay ``input_path`` and explain every rule for the selected request(s)."""
    try:
        rs = load_ruleset(rules)
    except RulesError as e:
        return 1, "\n".join(str(p) for p in e.problems)
    engine = Engine(rs)
    clusters = TemplateClusters()
    reports: list[dict[str, Any]] = []
    for _, rec in read_jsonl(input_path):
        ts = float(rec.get("ts", 0.0))
        ctx = features_of(rec, rs, ts, clusters)
        v = engine.evaluate(dict(ctx), ts)
        selected = (request_id is not None and rec.get("request_id") == request_id) or (
            account is not None and ctx.get("account.id") == account
        )
        if not selected:
            continue
        reports.append(
            {
                "ts": ts,
                "request_id": rec.get("request_id"),
                "account": ctx.get("account.id"),
                "hits": v.hit_ids,
                "blocked": v.block.rule if v.block else None,
                "controls": v.controls,
                "scores": v.scores,
                "rules": [explain_rule(engine, r, ctx, ts) for r in rs.rules if r.mode != "off"],
            }
        )
        if len(reports) >= limit:
            break
    if not reports:
        return 1, "no matching request in the input"
    if as_json:
        return 0, orjson.dumps(reports, option=orjson.OPT_INDENT_2).decode()
    buf = io.StringIO()
    for rep in reports:
        buf.write(
            f"request {rep['request_id']} account={rep['account']} ts={rep['ts']}: hits={rep['hits']} "
            f"blocked={rep['blocked']} controls={rep['controls']} scores={rep['scores']}\n"
        )
        for r in rep["rules"]:
            buf.write(
                f"  {'HIT ' if r['rule'] in rep['hits'] else '    '}{r['rule']} [{r['mode']}] "
                f"key {r['key']}={r['key_value']!r}\n"
            )
            for c in r["clauses"]:
                mark = "yes" if c["result"] is True else "no " if c["result"] is False else "ERR"
                vals = ", ".join(f"{k}={v!r}" for k, v in c["values"].items())
                buf.write(
                    f"      {mark} {c['part']}: {c['clause']}" + (f"   [{vals}]" if vals else "") + "\n"
                )
    return 0, buf.getvalue().rstrip()


def rule_files_of(paths: list[str]) -> list[str]:
    return [str(p) for p in rule_files(list(paths))]
