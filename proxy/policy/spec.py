"""Frozen specs: what a rule file says, after reading and validation, before compilation.

Every spec keeps ``where`` (file, line, column) so compile errors and ``explain`` point back at the YAML.
The loader builds these from PyYAML nodes; the engine never sees YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FORMAT = 1

MODES = ("enforce", "shadow", "off")
PHASES = ("request", "response")
AGG_KINDS = ("count", "sum", "rate", "ratio", "distinct", "ewma", "interarrival")
INTERARRIVAL_STATS = ("cv", "mean", "burstiness", "min")
# Strictness order: a stricter mode wins when several rules set redaction for one request.
REDACTION_MODES = ("pass", "seal", "placeholder", "omit", "drop")
ACTION_KINDS = ("log", "tag", "throttle", "pace", "redact", "harden", "cut", "block", "alert")
# Score scopes and the feature that identifies each.
SCOPES = {
    "account": "account.id",
    "key": "account.key",
    "org": "account.org",
    "ip": "client.ip",
    "ip_prefix": "client.ip_prefix",
    "template": "signals.template",
    "prefix": "signals.prefix",
    "user_agent": "client.user_agent",
}
# Shorthands accepted by a rule's ``key``.
KEY_SHORTHANDS = {
    **SCOPES,
    "model": "request.model",
    "global": "global",
    "template_cluster": "signals.template_cluster",
}
# Key values with window state kept per rule; past it the least recently created key is dropped.
DEFAULT_MAX_KEYS = 100_000
MATCHER_SOURCES = ("prompt", "last_user", "system", "user_agent")


@dataclass(frozen=True, slots=True)
class Where:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Expr:
    """A CEL expression as written, with where its text starts (for column-exact errors)."""

    src: str
    where: Where
    col_shift: int = 0  # columns between ``where`` and the first character of ``src`` (quotes)


@dataclass(frozen=True, slots=True)
class MatcherSpec:
    name: str
    source: str  # one of MATCHER_SOURCES
    patterns: tuple[tuple[str, Where], ...]
    where: Where


@dataclass(frozen=True, slots=True)
class AggregateSpec:
    name: str
    kind: str
    window: float  # seconds (for ewma: the half-life)
    buckets: int = 20
    value: Expr | None = None  # sum, ewma: numeric expression
    of: Expr | None = None  # distinct: expression whose distinct values are counted
    match: Expr | None = None  # ratio: numerator condition
    per: float = 60.0  # rate: unit in seconds
    stat: str = "cv"  # interarrival
    samples: int = 32  # interarrival: gaps kept
    max_values: int = 1024  # distinct: values kept per key
    where: Where | None = None


@dataclass(frozen=True, slots=True)
class IncrementSpec:
    """fail2ban ``bantime.increment``: duration = base * factor**n (or multipliers[n]), capped, jittered."""

    factor: float = 2.0
    multipliers: tuple[float, ...] = ()
    max: float = 7 * 86400.0
    jitter: float = 0.0
    forget: float = 86400.0  # prior blocks older than this no longer count


@dataclass(frozen=True, slots=True)
class ActionSpec:
    kind: str
    duration: float | None = None  # None: this request only
    on: str = "key"  # "key" (the rule's key) or a scope name
    params: tuple[tuple[str, Any], ...] = ()
    increment: IncrementSpec | None = None
    where: Where | None = None

    def param(self, name: str, default: Any = None) -> Any:
        for k, v in self.params:
            if k == name:
                return v
        return default


@dataclass(frozen=True, slots=True)
class ScoreSpec:
    points: float
    to: tuple[str, ...] = ("account",)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: str
    description: str
    mode: str
    phase: str
    when: Expr
    key: str
    aggregates: tuple[AggregateSpec, ...] = ()
    threshold: Expr | None = None
    score: ScoreSpec | None = None
    actions: tuple[ActionSpec, ...] = ()
    tags: tuple[str, ...] = ()
    max_keys: int = 100_000
    where: Where | None = None


@dataclass(frozen=True, slots=True)
class RuleSetSpec:
    """All files merged: later files override earlier ones where they say so."""

    files: tuple[str, ...]
    lists: dict[str, tuple[tuple[Any, ...], Where]] = field(default_factory=dict)
    macros: dict[str, Expr] = field(default_factory=dict)
    matchers: dict[str, MatcherSpec] = field(default_factory=dict)
    rules: tuple[RuleSpec, ...] = ()
    half_life: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Problem:
    """One load error. ``str()`` gives ``file:line:col: rule 'id': field: message``."""

    where: Where
    field: str
    message: str
    rule: str | None = None

    def __str__(self) -> str:
        rule = f"rule '{self.rule}': " if self.rule else ""
        fld = f"{self.field}: " if self.field else ""
        return f"{self.where}: {rule}{fld}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.where.file,
            "line": self.where.line,
            "col": self.where.col,
            "rule": self.rule,
            "field": self.field,
            "message": self.message,
        }


class RulesError(Exception):
    """Loading failed; ``problems`` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
