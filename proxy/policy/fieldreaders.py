"""Readers for a rule's nested fields: aggregates, score, actions (with block escalation).

Each reads PyYAML nodes through a ``NodeReader``, reports every problem with its location and the rule
id, and returns a frozen spec or None.
"""

from __future__ import annotations

from typing import Any

import yaml

from proxy.policy import spec as S
from proxy.policy.reader import NodeReader, node_kind

AGG_KEYS = (
    "kind",
    "window",
    "half_life",
    "buckets",
    "value",
    "of",
    "match",
    "per",
    "stat",
    "samples",
    "max_values",
)
ACTION_KEYS = {
    "log": ("message",),
    "tag": ("tag",),
    "throttle": ("factor",),
    "pace": ("tps",),
    "redact": ("mode",),
    "harden": ("profile",),
    "cut": ("tokens",),
    "block": ("increment", "message"),
    "alert": ("channel",),
}
INCREMENT_KEYS = ("factor", "multipliers", "max", "jitter", "forget")


def read_aggregates(r: NodeReader, node: yaml.Node) -> tuple[S.AggregateSpec, ...]:
    out = []
    for name, (knode, vnode) in (r.mapping(node, "aggregates", None) or {}).items():
        field = f"aggregates.{name}"
        if r.name(knode, field) is None:
            continue
        m = r.mapping(vnode, field, AGG_KEYS, ("kind",))
        if not m or "kind" not in m:
            continue
        kind = r.enum(m["kind"][1], f"{field}.kind", S.AGG_KINDS)
        if kind is None:
            continue
        need = {
            "sum": ("window", "value"),
            "ewma": ("half_life", "value"),
            "distinct": ("window", "of"),
            "ratio": ("window", "match"),
            "interarrival": (),
        }.get(kind, ("window",))
        for req in need:
            if req not in m:
                r.err(vnode, field, f"kind '{kind}' needs '{req}'")
        allowed = {
            "kind",
            *need,
            "buckets",
            "per" if kind == "rate" else "",
            "stat" if kind == "interarrival" else "",
            "samples" if kind == "interarrival" else "",
            "max_values" if kind == "distinct" else "",
        }
        kw: dict[str, Any] = {}
        for key, (k2, v2) in m.items():
            f2 = f"{field}.{key}"
            if key not in allowed:
                r.err(k2, f2, f"'{key}' does not apply to kind '{kind}'")
            elif key in ("window", "half_life", "per"):
                d = r.duration(v2, f2)
                if d is not None:
                    kw["window" if key == "half_life" else key] = d
            elif key in ("value", "of", "match"):
                kw[key] = r.expr(v2, f2)
            elif key in ("buckets", "samples", "max_values"):
                lo = {"buckets": 2, "samples": 2, "max_values": 1}[key]
                hi = {"buckets": 600, "samples": 1024, "max_values": 100_000}[key]
                num = r.number(v2, f2, integer=True, minimum=lo)
                if num is not None and num > hi:
                    r.err(v2, f2, f"must be at most {hi}, got {int(num)}")
                elif num is not None:
                    kw[key] = int(num)
            elif key == "stat":
                kw[key] = r.enum(v2, f2, S.INTERARRIVAL_STATS)
        kw.setdefault("window", 86400.0 if kind == "interarrival" else 0.0)
        out.append(S.AggregateSpec(name=name, kind=kind, where=r.where(knode), **kw))
    return tuple(out)


def read_score(r: NodeReader, node: yaml.Node) -> S.ScoreSpec | None:
    if isinstance(node, yaml.ScalarNode):
        pts = r.number(node, "score")
        return None if pts is None else S.ScoreSpec(pts)
    m = r.mapping(node, "score", ("points", "to"), ("points",))
    if not m or "points" not in m:
        return None
    pts = r.number(m["points"][1], "score.points")
    to: list[str] = ["account"]
    if "to" in m:
        to = [
            x
            for x in (r.enum(n, "score.to", tuple(S.SCOPES)) for n in r.seq(m["to"][1], "score.to") or [])
            if x
        ]
    return None if pts is None else S.ScoreSpec(pts, tuple(to))


def read_action(r: NodeReader, node: yaml.Node) -> S.ActionSpec | None:
    if not isinstance(node, yaml.MappingNode):
        r.err(
            node,
            "actions[]",
            f"expected a mapping like {{do: throttle, factor: 0.5, for: 1h}}, got {node_kind(node)}",
        )
        return None
    do_node = next((v for k, v in node.value if getattr(k, "value", None) == "do"), None)
    if do_node is None:
        r.err(node, "actions[]", "missing required key 'do'")
        return None
    kind = r.enum(do_node, "actions[].do", S.ACTION_KINDS)
    if kind is None:
        return None
    field = f"actions[{kind}]"
    m = r.mapping(node, field, ("do", "for", "on", *ACTION_KEYS[kind]))
    if m is None:
        return None
    duration = r.duration(m["for"][1], f"{field}.for") if "for" in m else None
    on = r.enum(m["on"][1], f"{field}.on", ("key", *S.SCOPES)) if "on" in m else "key"
    params: list[tuple[str, Any]] = []
    increment = None
    required = {
        "tag": "tag",
        "throttle": "factor",
        "pace": "tps",
        "redact": "mode",
        "harden": "profile",
        "cut": "tokens",
    }.get(kind)
    if required and required not in m:
        r.err(node, field, f"missing required key '{required}'")
        return None
    for key, (_, v) in m.items():
        f2 = f"{field}.{key}"
        if key in ("do", "for", "on"):
            continue
        if key == "factor":
            val = r.number(v, f2, above=0)
            if val is not None and val > 1:
                r.err(
                    v, f2, f"a throttle factor multiplies the rate limit and must be in (0, 1], got {val:g}"
                )
                val = None
            params.append((key, val))
        elif key in ("tps", "tokens"):
            if key == "tokens":
                params.append((key, r.number(v, f2, integer=True, minimum=0)))
            else:
                params.append((key, r.number(v, f2, above=0)))
        elif key == "mode":
            params.append((key, r.enum(v, f2, S.REDACTION_MODES)))
        elif key in ("tag", "profile", "channel", "message"):
            params.append((key, r.scalar(v, f2)))
        elif key == "increment":
            increment = read_increment(r, v, f2)
    if any(v is None for _, v in params):
        return None
    return S.ActionSpec(kind, duration, on or "key", tuple(params), increment, r.where(node))


def read_increment(r: NodeReader, node: yaml.Node, field: str) -> S.IncrementSpec | None:
    m = r.mapping(node, field, INCREMENT_KEYS)
    if m is None:
        return None
    kw: dict[str, Any] = {}
    for key, (_, v) in m.items():
        f2 = f"{field}.{key}"
        if key == "factor":
            kw[key] = r.number(v, f2, minimum=1)
        elif key == "multipliers":
            kw[key] = tuple(r.number(x, f2, above=0) or 1.0 for x in r.seq(v, f2) or [])
        else:
            kw[key] = r.duration(v, f2)
    if any(v is None for v in kw.values()):
        return None
    return S.IncrementSpec(**kw)
