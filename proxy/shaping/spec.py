"""``limits:`` config section -> frozen ``LimitSpec``s, with every error collected and located.

```yaml
limits:
  - name: per-account-rpm
    scope: [account]              # combine: [account, model]; [ip_prefix]; [feature:template_fp]
    requests: {rate: 60/m, burst: 10}
    delay: {max: 2s, queue: 16}   # wait (nginx limit_req delay) before rejecting; also for tokens and
                                  # concurrency limits (wait for the reservation / a free slot)
    mode: enforce                 # or shadow: count and log, never delay or reject
    match: {tier: [standard, restricted]}
  - name: per-account-tpm
    scope: [account]
    tokens: {limit: 200000, window: 1m, count: total, reserve: 1024, cut_stream: false}
  - name: per-account-concurrency
    scope: [account]
    concurrency: {max: 4, ttl: 10m}
  - name: suspects-pace
    scope: [account]
    pace: {tokens_per_second: 20}
    match: {tier: [restricted]}
```

Errors read ``limits[1] 'per-account-tpm': tokens.window: expected a duration like '30s', got '1 min'``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

SCOPES = ("account", "key", "org", "tier", "ip", "ip_prefix", "model", "route")
FEATURE_PREFIX = "feature:"
KINDS = ("requests", "tokens", "concurrency", "pace")
COUNTS = ("input", "output", "reasoning", "total")
MODES = ("enforce", "shadow")
MATCH_KEYS = ("tier", "org", "model", "route", "account", "key")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*(ms|s|m|h|d)\s*$")


@dataclass(frozen=True, slots=True)
class LimitProblem:
    """One problem: which limit (index, name if known), the field path inside it, the message."""

    index: int | None
    name: str | None
    path: str
    message: str

    def __str__(self) -> str:
        where = "limits" if self.index is None else f"limits[{self.index}]"
        if self.name:
            where += f" {self.name!r}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class LimitSpecError(ValueError):
    """All problems found in a ``limits`` section (``errors``: one message each; ``problems``: parts)."""

    def __init__(self, problems: list[LimitProblem]) -> None:
        self.problems = problems
        self.errors = [str(p) for p in problems]
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One named limit. ``kind`` picks which of the kind fields are meaningful.

    requests: ``interval`` seconds per request, ``capacity`` = burst (requests admitted at once).
    tokens: ``interval`` seconds per token (window / limit), ``capacity`` = limit, ``count``,
    ``reserve`` (reservation when the request states no max tokens), ``cut_stream``.
    concurrency: ``max_inflight``, ``lease_ttl``. pace: ``interval`` seconds per token, ``capacity``.
    """

    name: str
    kind: str
    scope: tuple[str, ...]
    interval: float = 0.0
    capacity: float = 1.0
    # the configured figures, for headers (RateLimit-Policy q / w)
    quota: float = 0.0
    window: float = 0.0
    delay_max: float = 0.0
    queue: int = 0
    count: str = "total"
    reserve: int = 1024
    cut_stream: bool = False
    max_inflight: int = 0
    lease_ttl: float = 600.0
    mode: str = "enforce"
    match: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def shadow(self) -> bool:
        return self.mode == "shadow"


def parse_duration(v: Any) -> float | None:
    if isinstance(v, str):
        m = _DURATION.match(v)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    return None


def parse_rate(v: Any) -> tuple[float, float] | None:
    """``'60/m'`` or ``'100/10s'`` -> (count, seconds)."""
    if isinstance(v, str):
        m = _RATE.match(v)
        if m:
            n = float(m.group(1))
            per = float(m.group(2) or 1) * _UNITS[m.group(3)]
            if n > 0 and per > 0:
                return n, per
    return None


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


class _Ctx:
    def __init__(self, index: int, name: str | None) -> None:
        self.index = index
        self.name = name
        self.errors: list[LimitProblem] = []

    def err(self, path: str, msg: str) -> None:
        self.errors.append(LimitProblem(self.index, self.name, path, msg))

    def keys(self, path: str, d: dict[str, Any], allowed: tuple[str, ...]) -> None:
        for k in d:
            if k not in allowed:
                hint = difflib.get_close_matches(str(k), allowed, n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                where = f"{path}.{k}" if path else str(k)
                self.err(where, f"unknown key{extra}; expected one of {', '.join(allowed)}")

    def mapping(self, path: str, v: Any) -> dict[str, Any] | None:
        if not isinstance(v, dict):
            self.err(path, f"expected a mapping, got {_fmt(v)}")
            return None
        return v

    def duration(self, path: str, v: Any) -> float:
        d = parse_duration(v)
        if d is None:
            self.err(path, f"expected a duration like '30s', got {_fmt(v)}")
            return 0.0
        return d

    def pos_int(self, path: str, v: Any, *, zero: bool = False) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero else 1):
            self.err(path, f"expected an integer >= {0 if zero else 1}, got {_fmt(v)}")
            return 0 if zero else 1
        return v

    def pos_num(self, path: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0 or math.isinf(v):
            self.err(path, f"expected a positive number, got {_fmt(v)}")
            return 1.0
        return float(v)

    def choice(self, path: str, v: Any, options: tuple[str, ...]) -> str:
        if v not in options:
            self.err(path, f"expected one of {', '.join(options)}, got {_fmt(v)}")
            return options[0]
        return str(v)


_TOP = ("name", "scope", "mode", "match", "delay", *KINDS)


def parse_limits(data: Any) -> list[LimitSpec]:
    """Validate and compile a ``limits`` list; raises ``LimitSpecError`` listing every problem."""
    errors: list[LimitProblem] = []
    if data is None:
        return []
    if not isinstance(data, list):
        raise LimitSpecError([LimitProblem(None, None, "", f"expected a list of limits, got {_fmt(data)}")])
    out: list[LimitSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        name = item.get("name") if isinstance(item, dict) else None
        ctx = _Ctx(i, name if isinstance(name, str) else None)
        spec = _parse_one(ctx, item)
        if spec is not None and spec.name in seen:
            ctx.err("name", f"duplicate limit name {spec.name!r}")
        errors.extend(ctx.errors)
        if spec is not None and not ctx.errors:
            seen.add(spec.name)
            out.append(spec)
    if errors:
        raise LimitSpecError(errors)
    return out


def _parse_one(ctx: _Ctx, item: Any) -> LimitSpec | None:
    d = ctx.mapping("", item)
    if d is None:
        return None
    ctx.keys("", d, _TOP)
    name = d.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        ctx.err("name", f"expected a name of letters, digits, '-', '_', '.', got {_fmt(name)}")
        name = "?"
    scope = _parse_scope(ctx, d.get("scope"))
    kinds = [k for k in KINDS if k in d]
    if len(kinds) != 1:
        ctx.err("", f"expected exactly one of {', '.join(KINDS)}, got {', '.join(kinds) or 'none'}")
        return None
    kind = kinds[0]
    mode = ctx.choice("mode", d.get("mode", "enforce"), MODES)
    match = _parse_match(ctx, d.get("match"))
    fields: dict[str, Any] = {}
    body = ctx.mapping(kind, d[kind])
    if body is None:
        return None
    if kind == "requests":
        ctx.keys(kind, body, ("rate", "burst"))
        rate = parse_rate(body.get("rate"))
        if rate is None:
            ctx.err("requests.rate", f"expected a rate like '60/m', got {_fmt(body.get('rate'))}")
            rate = (1.0, 1.0)
        burst = ctx.pos_int("requests.burst", body.get("burst", 1))
        fields.update(interval=rate[1] / rate[0], capacity=float(burst), quota=rate[0], window=rate[1])
    elif kind == "tokens":
        ctx.keys(kind, body, ("limit", "window", "count", "reserve", "cut_stream"))
        limit = ctx.pos_int("tokens.limit", body.get("limit"))
        window = ctx.duration("tokens.window", body.get("window")) or 60.0
        cut = body.get("cut_stream", False)
        if not isinstance(cut, bool):
            ctx.err("tokens.cut_stream", f"expected true or false, got {_fmt(cut)}")
        fields.update(
            interval=window / limit, capacity=float(limit), quota=float(limit), window=window,
            count=ctx.choice("tokens.count", body.get("count", "total"), COUNTS),
            reserve=ctx.pos_int("tokens.reserve", body.get("reserve", 1024), zero=True),
            cut_stream=cut is True,
        )
    elif kind == "concurrency":
        ctx.keys(kind, body, ("max", "ttl"))
        fields.update(
            max_inflight=ctx.pos_int("concurrency.max", body.get("max")),
            lease_ttl=ctx.duration("concurrency.ttl", body.get("ttl", "10m")) or 600.0,
        )
    else:
        ctx.keys(kind, body, ("tokens_per_second", "burst"))
        tps = ctx.pos_num("pace.tokens_per_second", body.get("tokens_per_second"))
        burst = ctx.pos_int("pace.burst", body.get("burst", max(1, int(tps))))
        fields.update(interval=1.0 / tps, capacity=float(burst), quota=tps, window=1.0)
    if "delay" in d:
        if kind == "pace":
            ctx.err("delay", "a pace limit cannot delay requests (only requests, tokens and concurrency limits)")
        delay = ctx.mapping("delay", d["delay"])
        if delay is not None:
            ctx.keys("delay", delay, ("max", "queue"))
            fields["delay_max"] = ctx.duration("delay.max", delay.get("max"))
            fields["queue"] = ctx.pos_int("delay.queue", delay.get("queue", 16))
    return LimitSpec(name=name, kind=kind, scope=scope, mode=mode, match=match, **fields)


def _parse_scope(ctx: _Ctx, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v:
        ctx.err("scope", f"expected a list of scopes like [account, model], got {_fmt(v)}")
        return ("account",)
    out = []
    for j, s in enumerate(v):
        ok = isinstance(s, str) and (
            s in SCOPES or (s.startswith(FEATURE_PREFIX) and len(s) > len(FEATURE_PREFIX))
        )
        if not ok:
            hint = difflib.get_close_matches(str(s), SCOPES, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            ctx.err(f"scope[{j}]", f"unknown scope {_fmt(s)}{extra}; expected one of "
                    f"{', '.join(SCOPES)} or feature:<name>")
        elif s in out:
            ctx.err(f"scope[{j}]", f"scope {s!r} listed twice")
        else:
            out.append(s)
    return tuple(out) or ("account",)


def _parse_match(ctx: _Ctx, v: Any) -> dict[str, frozenset[str]]:
    if v is None:
        return {}
    d = ctx.mapping("match", v)
    if d is None:
        return {}
    ctx.keys("match", d, MATCH_KEYS)
    out = {}
    for k, vals in d.items():
        if k not in MATCH_KEYS:
            continue
        if isinstance(vals, str):
            vals = [vals]
        if not isinstance(vals, list) or not vals or not all(isinstance(x, str) for x in vals):
            ctx.err(f"match.{k}", f"expected a list of strings, got {_fmt(vals)}")
            continue
        out[k] = frozenset(vals)
    return out


# --------------------------------------------------------------------------- config section

_PATH_PART = re.compile(r"[^.\[\]]+|\[\d+\]")


def limits_section(value: Any, at: Any, problems: Any) -> tuple[LimitSpec, ...]:
    """The ``limits:`` top-level config section parser (``proxy.config.register_section``): reports
    every problem into ``problems`` at the line and column of the offending value."""
    try:
        return tuple(parse_limits(value))
    except LimitSpecError as e:
        for p in e.problems:
            mark, field_path = _locate(value, at, p)
            context = f"limit {p.name!r}" if p.name else None
            problems.add(mark, field_path, p.message, context=context)
        return ()


def _locate(value: Any, at: Any, p: LimitProblem) -> tuple[Any, str]:
    """The mark of the value a problem is about (YAML-located values know where they sit)."""
    base = at.field or "limits"
    if p.index is None:
        return at.mark, base
    mark = value.item_mark(p.index) if hasattr(value, "item_mark") else at.mark
    node: Any = value[p.index]
    for part in _PATH_PART.findall(p.path):
        if part.startswith("["):
            i = int(part[1:-1])
            if not isinstance(node, list) or i >= len(node):
                break
            mark = node.item_mark(i) if hasattr(node, "item_mark") else mark
            node = node[i]
        else:
            if not isinstance(node, dict) or part not in node:
                break
            mark = node.value_mark(part) if hasattr(node, "value_mark") else mark
            node = node[part]
    field_path = f"{base}[{p.index}]" + (f".{p.path}" if p.path else "")
    return mark, field_path
