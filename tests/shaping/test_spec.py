"""``limits:`` parsing: valid forms compile to the right figures; invalid ones give exact, located errors."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.shaping.spec import LimitSpecError, parse_limits

GOOD = [
    {"name": "per-account-rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 10},
     "delay": {"max": "2s", "queue": 16}, "match": {"tier": ["standard", "restricted"]}},
    {"name": "per-account-tpm", "scope": ["account", "model"],
     "tokens": {"limit": 200000, "window": "1m", "count": "output", "cut_stream": True}},
    {"name": "conc", "scope": "account", "concurrency": {"max": 4}},
    {"name": "pace", "scope": ["feature:template_fp"], "pace": {"tokens_per_second": 20}, "mode": "shadow"},
    {"name": "prefix", "scope": ["ip_prefix"], "requests": {"rate": "100/10s"}},
]


def test_good_limits_compile() -> None:
    rpm, tpm, conc, pace, prefix = parse_limits(GOOD)
    assert rpm.kind == "requests" and rpm.interval == 1.0 and rpm.capacity == 10
    assert rpm.delay_max == 2.0 and rpm.queue == 16 and rpm.match == {"tier": {"standard", "restricted"}}
    assert tpm.scope == ("account", "model") and tpm.interval == pytest.approx(60 / 200000)
    assert tpm.count == "output" and tpm.cut_stream and tpm.capacity == 200000
    assert conc.max_inflight == 4 and conc.lease_ttl == 600 and conc.scope == ("account",)
    assert pace.shadow and pace.interval == pytest.approx(0.05) and pace.capacity == 20
    assert prefix.interval == pytest.approx(0.1) and prefix.capacity == 1


BAD: list[tuple[Any, str]] = [
    ({"scope": ["account"], "requests": {"rate": "1/s"}},
     "limits[0]: name: expected a name of letters, digits, '-', '_', '.', got None"),
    ({"name": "x", "scope": ["acount"], "requests": {"rate": "1/s"}},
     "limits[0] 'x': scope[0]: unknown scope 'acount' (did you mean 'account'?); expected one of "
     "account, key, org, tier, ip, ip_prefix, model, route or feature:<name>"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "60 per min"}},
     "limits[0] 'x': requests.rate: expected a rate like '60/m', got '60 per min'"),
    ({"name": "x", "scope": ["account"], "tokens": {"limit": 10, "window": "1 min"}},
     "limits[0] 'x': tokens.window: expected a duration like '30s', got '1 min'"),
    ({"name": "x", "scope": ["account"], "tokens": {"limit": 10, "window": 60}},
     "limits[0] 'x': tokens.window: expected a duration like '30s', got 60"),
    ({"name": "x", "scope": ["account"], "tokens": {"limit": 10, "window": "1m", "count": "all"}},
     "limits[0] 'x': tokens.count: expected one of input, output, reasoning, total, got 'all'"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "1/s", "brust": 3}},
     "limits[0] 'x': requests.brust: unknown key (did you mean 'burst'?); expected one of rate, burst"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "1/s"}, "concurrency": {"max": 1}},
     "limits[0] 'x': expected exactly one of requests, tokens, concurrency, pace, got requests, concurrency"),
    ({"name": "x", "scope": ["account"], "concurrency": {"max": 0}},
     "limits[0] 'x': concurrency.max: expected an integer >= 1, got 0"),
    ({"name": "x", "scope": ["account"], "pace": {"tokens_per_second": 5}, "delay": {"max": "1s"}},
     "limits[0] 'x': delay: a pace limit cannot delay requests (only requests, tokens and concurrency limits)"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "1/s"}, "mode": "dry"},
     "limits[0] 'x': mode: expected one of enforce, shadow, got 'dry'"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "1/s"}, "match": {"teir": ["a"]}},
     "limits[0] 'x': match.teir: unknown key (did you mean 'tier'?); expected one of tier, org, model, "
     "route, account, key"),
    ({"name": "x", "scope": ["account"], "requests": {"rate": "1/s"}, "burst": 3},
     "limits[0] 'x': burst: unknown key; expected one of name, scope, mode, match, delay, requests, "
     "tokens, concurrency, pace"),
]


@pytest.mark.parametrize(("item", "message"), BAD)
def test_bad_limit_errors(item: Any, message: str) -> None:
    with pytest.raises(LimitSpecError) as e:
        parse_limits([item])
    assert message in e.value.errors, e.value.errors


def test_all_errors_reported_at_once_and_duplicates() -> None:
    items = [
        {"name": "a", "scope": ["account"], "requests": {"rate": "x"}},
        {"name": "a", "scope": ["account"], "requests": {"rate": "1/s"}},
        {"name": "a", "scope": ["account"], "requests": {"rate": "1/s"}},
    ]
    with pytest.raises(LimitSpecError) as e:
        parse_limits(items)
    assert e.value.errors == [
        "limits[0] 'a': requests.rate: expected a rate like '60/m', got 'x'",
        "limits[2] 'a': name: duplicate limit name 'a'",
    ]


def test_not_a_list() -> None:
    with pytest.raises(LimitSpecError, match="limits: expected a list of limits"):
        parse_limits({"name": "x"})
    assert parse_limits(None) == []


def test_limits_config_section_is_registered_and_located(tmp_path: Any) -> None:
    import proxy.shaping  # noqa: F401  (registers the section)
    from proxy.config import ConfigError, config_from_dict, load_config

    cfg = config_from_dict({"limits": GOOD})
    assert [s.name for s in cfg.sections["limits"]] == [g["name"] for g in GOOD]
    assert config_from_dict({}).sections["limits"] == ()
    path = tmp_path / "proxy.yaml"
    path.write_text(
        "limits:\n"
        "  - name: rpm\n"
        "    scope: [account]\n"
        "    requests: {rate: 60 per min}\n"
        "  - name: tpm\n"
        "    scope: [acount]\n"
        "    tokens: {limit: 10, window: 1m}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(path, require_upstream=False)
    text = str(e.value)
    want = "limits[0].requests.rate: expected a rate like '60/m', got '60 per min'"
    assert f"{path}:4:22: limit 'rpm': {want}" in text
    assert f"{path}:6:13: limit 'tpm': limits[1].scope[0]: unknown scope 'acount'" in text
