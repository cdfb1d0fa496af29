"""Limit headers clients read: IETF ``RateLimit-Policy``/``RateLimit``, OpenAI ``x-ratelimit-*``,
Anthropic ``anthropic-ratelimit-*`` and ``Retry-After`` (+ ``retry-after-ms``, read by the OpenAI SDK).

Values come from the GCRA results of this request: ``remaining`` is what the bucket admits right now,
``reset`` the seconds until it is full again. The vendor headers describe the most constrained
requests limit and the most constrained tokens limit (lowest remaining).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from proxy.shaping.spec import LimitSpec


@dataclass(slots=True)
class Reading:
    """One limit's state as seen by this request."""

    spec: LimitSpec
    remaining: float
    reset: float  # seconds until full
    retry: float = 0.0  # seconds until the next unit conforms (when remaining < 1)


def policy_item(spec: LimitSpec) -> str:
    """This limit's ``RateLimit-Policy`` item (static: compiled once per limit)."""
    return f'"{spec.name}";q={_num(spec.quota)};w={_num(math.ceil(spec.window))}'


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def openai_duration(seconds: float) -> str:
    """The reset format of OpenAI's headers: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1.0:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    s = math.ceil(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


def limit_headers(readings: list[Reading], now: float, *, anthropic: bool) -> dict[str, str]:
    """All limit headers for these readings (shadow limits are never shown)."""
    if not readings:
        return {}
    h: dict[str, str] = {}
    policy = []
    state = []
    for r in readings:
        name = r.spec.name
        policy.append(policy_item(r.spec))
        rem = max(0, math.floor(r.remaining + 1e-9))
        t = r.reset if rem > 0 else max(r.retry, 0.0)
        state.append(f'"{name}";r={rem};t={math.ceil(t - 1e-9)}')
    h["RateLimit-Policy"] = ", ".join(policy)
    h["RateLimit"] = ", ".join(state)
    for kind, label in (("requests", "requests"), ("tokens", "tokens")):
        rs = [r for r in readings if r.spec.kind == kind]
        if not rs:
            continue
        r = min(rs, key=lambda x: x.remaining)
        left = str(max(0, math.floor(r.remaining + 1e-9)))
        limit = _num(r.spec.quota)
        if anthropic:
            h[f"anthropic-ratelimit-{label}-limit"] = limit
            h[f"anthropic-ratelimit-{label}-remaining"] = left
            h[f"anthropic-ratelimit-{label}-reset"] = rfc3339(now + r.reset)
            if kind == "tokens" and r.spec.count in ("input", "output"):
                c = r.spec.count
                h[f"anthropic-ratelimit-{c}-tokens-limit"] = limit
                h[f"anthropic-ratelimit-{c}-tokens-remaining"] = left
                h[f"anthropic-ratelimit-{c}-tokens-reset"] = rfc3339(now + r.reset)
        else:
            h[f"x-ratelimit-limit-{label}"] = limit
            h[f"x-ratelimit-remaining-{label}"] = left
            h[f"x-ratelimit-reset-{label}"] = openai_duration(r.reset)
    return h
