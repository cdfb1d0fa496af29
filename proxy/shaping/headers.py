"""Limit headers clients read: IETF ``RateLimit-Policy``/``RateLimit``, OpenAI ``x-ratelimit-*``,
Anthropic ``anthropic-ratelimit-*`` and ``Retry-After`` (+ ``retry-after-ms``, read by the OpenAI SDK).

Values come from the GCRA results of this request: ``remaining`` is what the bucket admits right now,
``reset`` the seconds until it is full again. The vendor headers describe the most constrained
requests limit and the most constrained tokens limit (lowest remaining).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from math import ceil
from typing import Any

from multidict import istr

from proxy.shaping.spec import LimitSpec
from proxy.state.base import Result


def policy_item(spec: LimitSpec) -> str:
    """This limit's ``RateLimit-Policy`` item (static: compiled once per limit)."""
    return f'"{spec.name}";q={_num(spec.quota)};w={_num(math.ceil(spec.window))}'


@lru_cache(maxsize=1024)
def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


def openai_duration(seconds: float) -> str:
    """The reset format of OpenAI's headers: ``20ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1.0:
        return f"{math.ceil(seconds * 1000)}ms" if seconds > 0 else "0ms"
    s = math.ceil(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{sec}s"
    if m:
        return f"{m}m{sec}s"
    return f"{sec}s"


def rfc3339(epoch: float) -> str:
    return _rfc3339(math.ceil(epoch))


@lru_cache(maxsize=256)
def _rfc3339(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def retry_after(seconds: float) -> dict[str, str]:
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(max(1, math.ceil(seconds * 1000))),
    }


class HeaderPlan:
    """The constant parts of the limit headers for one set of applied limits, built once per set:
    the whole ``RateLimit-Policy`` value, each shown limit's ``RateLimit`` item prefix and position
    in the request's results, the vendor header names and quotas. Per request only the
    remaining/reset numbers are formatted."""

    __slots__ = ("_cache", "anthropic", "cacheable", "items", "openai", "policy")

    def __init__(self, shown: Sequence[tuple[LimitSpec, int]]) -> None:
        """``shown``: each limit shown to clients with its position in the results."""
        self.policy = ", ".join(policy_item(s) for s, _ in shown)
        self.items = tuple((f'"{s.name}";r=', pos) for s, pos in shown)
        openai = []
        anthropic = []
        for label in ("requests", "tokens"):
            # (index into items, quota, count) of this kind's limits; the headers show the lowest
            mine = tuple((j, _num(s.quota), s.count) for j, (s, _) in enumerate(shown) if s.kind == label)
            if mine:
                openai.append((mine, *_OPENAI[label]))
                anthropic.append((mine, _ANTHROPIC[label], label == "tokens"))
        self.openai = tuple(openai)
        self.anthropic = tuple(anthropic)
        # one limit per kind: the shown figures are a function of the cache key (see ``write``)
        self.cacheable = all(len(mine) == 1 for mine, *_ in openai)
        self._cache: dict[tuple[Any, ...], dict[str, str]] = {}

    def write(self, h: dict[str, str], results: Sequence[Result], now: float, anthropic: bool) -> None:
        """Put the headers for ``results`` (this request's, in plan order) into ``h``.

        What the headers show is a function of a few integers per limit: remaining (floored), the
        ``RateLimit`` seconds, and the vendor reset (ms for OpenAI, the absolute second for
        Anthropic). Requests far from their limits see the same figures again and again, so the
        formatted headers are cached by them (a bounded dict, cleared when full)."""
        if not self.cacheable:
            self.format(h, results, now, anthropic)
            return
        key: list[Any] = [anthropic]
        for _, pos in self.items:
            r = results[pos]
            remaining = r[2]
            reset = r[3]
            if remaining >= _ALMOST_ONE:
                key.append(int(remaining + 1e-9))
                key.append(ceil(reset - 1e-9))
            else:
                retry = r[1]
                key.append(0)
                key.append(ceil(retry - 1e-9) if retry > 0 else 0)
            key.append(ceil(now + reset) if anthropic else ceil(reset * 1000))
        k = tuple(key)
        cached = self._cache.get(k)
        if cached is None:
            cached = {}
            self.format(cached, results, now, anthropic)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[k] = cached
        h.update(cached)

    def format(self, h: dict[str, str], results: Sequence[Result], now: float, anthropic: bool) -> None:
        """``write`` without the cache: format every value of this request."""
        h[_POLICY] = self.policy
        items = []
        lefts = []  # remaining, formatted once for RateLimit and the vendor headers
        for pre, pos in self.items:
            r = results[pos]
            remaining = r[2]
            if remaining >= _ALMOST_ONE:
                left = str(int(remaining + 1e-9))
                items.append(pre + left + ";t=" + str(ceil(r[3] - 1e-9)))
            else:
                left = "0"
                retry = r[1]
                items.append(pre + "0;t=" + (str(ceil(retry - 1e-9)) if retry > 0 else "0"))
            lefts.append(left)
        h[_RATELIMIT] = items[0] if len(items) == 1 else ", ".join(items)
        if anthropic:
            self._anthropic(h, results, now, lefts)
            return
        for mine, n_limit, n_remaining, n_reset in self.openai:
            j, quota, _ = mine[0] if len(mine) == 1 else _lowest(results, self.items, mine)
            h[n_limit] = quota
            h[n_remaining] = lefts[j]
            ms = ceil(results[self.items[j][1]][3] * 1000)  # what the cache key holds
            h[n_reset] = (str(ms) + "ms" if ms > 0 else "0ms") if ms < 1000 else openai_duration(ms / 1000)

    def _anthropic(self, h: dict[str, str], results: Sequence[Result], now: float, lefts: list[str]) -> None:
        for mine, (n_limit, n_remaining, n_reset), tokens in self.anthropic:
            j, quota, count = mine[0] if len(mine) == 1 else _lowest(results, self.items, mine)
            left = lefts[j]
            at = rfc3339(now + results[self.items[j][1]][3])
            h[n_limit] = quota
            h[n_remaining] = left
            h[n_reset] = at
            if tokens and count in ("input", "output"):
                n_limit, n_remaining, n_reset = _ANTHROPIC[count + "-tokens"]
                h[n_limit] = quota
                h[n_remaining] = left
                h[n_reset] = at


_ALMOST_ONE = 1.0 - 1e-9
_CACHE_MAX = 1024
# Header names as ``istr``: the same text on the wire, but the response's ``CIMultiDict`` takes their
# case-folded identity as it is instead of lower-casing each name of each response.
_POLICY = istr("RateLimit-Policy")
_RATELIMIT = istr("RateLimit")
_OPENAI = {
    label: (istr(f"x-ratelimit-limit-{label}"), istr(f"x-ratelimit-remaining-{label}"),
            istr(f"x-ratelimit-reset-{label}"))
    for label in ("requests", "tokens")
}
_ANTHROPIC = {
    label: (istr(f"anthropic-ratelimit-{label}-limit"), istr(f"anthropic-ratelimit-{label}-remaining"),
            istr(f"anthropic-ratelimit-{label}-reset"))
    for label in ("requests", "tokens", "input-tokens", "output-tokens")
}


def _lowest(results: Sequence[Result], items: tuple[tuple[str, int], ...],
            mine: tuple[tuple[int, str, str], ...]) -> tuple[int, str, str]:
    """The most constrained of ``mine``: the lowest remaining, the first on ties."""
    best = mine[0]
    low = results[items[best[0]][1]][2]
    for m in mine[1:]:
        rem = results[items[m[0]][1]][2]
        if rem < low:
            best, low = m, rem
    return best


def limit_headers(specs: Sequence[LimitSpec], results: Sequence[Result], now: float, *,
                  anthropic: bool) -> dict[str, str]:
    """All limit headers for these (shown) limits and their results, in the same order."""
    h: dict[str, str] = {}
    if specs:
        HeaderPlan([(s, i) for i, s in enumerate(specs)]).write(h, results, now, anthropic)
    return h
