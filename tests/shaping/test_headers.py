"""Limit headers: the cached writer shows exactly what formatting each request afresh would show."""

from __future__ import annotations

import random

import pytest

from proxy.shaping.headers import HeaderPlan, limit_headers, openai_duration
from proxy.shaping.spec import parse_limits

SPECS = parse_limits([
    {"name": "rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 5}},
    {"name": "tpm", "scope": ["account"], "tokens": {"limit": 5000, "window": "1m", "count": "output"}},
])


def _result(rng: random.Random) -> tuple[bool, float, float, float, float]:
    remaining = rng.choice([0.0, 0.4, 0.9999999999, 1.0, 1.5, 3.0, 4999.2, rng.uniform(-2, 50)])
    reset = rng.choice([0.0, 1e-7, 0.0004, 0.9995, 1.0, 1.0000001, 59.9, rng.uniform(0, 3700)])
    retry = rng.choice([0.0, 0.3, 1.0, rng.uniform(0, 90)])
    return (remaining >= 1.0, retry, remaining, reset, 1.0)


@pytest.mark.parametrize("anthropic", [False, True])
def test_cached_headers_equal_fresh_formatting(anthropic: bool) -> None:
    rng = random.Random(3)
    plan = HeaderPlan([(SPECS[0], 0), (SPECS[1], 2)])  # results of a plan with a lease at position 1
    assert plan.cacheable
    now = 1_700_000_000.25
    for _ in range(3000):  # few distinct values: most requests hit the cache
        results = [_result(rng), (True, 0.0, 3.0, 0.0, 1.0), _result(rng)]
        now += rng.choice([0.0, 0.3])
        cached: dict[str, str] = {"x-other": "kept"}
        plan.write(cached, results, now, anthropic)
        fresh: dict[str, str] = {"x-other": "kept"}
        plan.format(fresh, results, now, anthropic)
        assert cached == fresh, (results, now)
    assert 0 < len(plan._cache) <= 1024


def test_header_values() -> None:
    h = limit_headers(SPECS, [(True, 0.0, 4.0, 0.0004, 1.0), (True, 0.0, 4200.0, 48.0, 1.0)], 0.0,
                      anthropic=False)
    assert h == {
        "RateLimit-Policy": '"rpm";q=60;w=60, "tpm";q=5000;w=60',
        "RateLimit": '"rpm";r=4;t=1, "tpm";r=4200;t=48',
        "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "1ms",
        "x-ratelimit-limit-tokens": "5000", "x-ratelimit-remaining-tokens": "4200",
        "x-ratelimit-reset-tokens": "48s",
    }
    rejected = limit_headers(SPECS[:1], [(False, 2.5, 0.2, 4.0, 1.0)], 0.0, anthropic=False)
    assert rejected["RateLimit"] == '"rpm";r=0;t=3'  # t: when the next request conforms
    assert [openai_duration(x) for x in (0.0, 0.02, 1.0, 360.0, 3723.0)] == ["0ms", "20ms", "1s", "6m0s",
                                                                               "1h2m3s"]


def test_two_limits_of_a_kind_show_the_lowest_uncached() -> None:
    specs = parse_limits([
        {"name": "a", "scope": ["account"], "requests": {"rate": "60/m", "burst": 5}},
        {"name": "b", "scope": ["model"], "requests": {"rate": "600/m", "burst": 50}},
    ])
    plan = HeaderPlan([(specs[0], 0), (specs[1], 1)])
    assert not plan.cacheable
    h: dict[str, str] = {}
    plan.write(h, [(True, 0.0, 4.0, 1.0, 1.0), (True, 0.0, 2.0, 0.1, 1.0)], 0.0, False)
    assert h["x-ratelimit-remaining-requests"] == "2" and h["x-ratelimit-limit-requests"] == "600"
    assert h["RateLimit"] == '"a";r=4;t=1, "b";r=2;t=1'
