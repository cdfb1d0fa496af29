"""Two app instances (each with its own Redis connection, wired by ``build_filters`` from the ``state:``
section) share rule state: a hydra template spread over accounts split between them trips the
cross-account rule, which neither trips on its own memory state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from proxy.accounts import Account
from proxy.app import ProxyApp
from proxy.clock import FakeClock
from proxy.config import config_from_dict
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.policy.store_faults import FaultTolerantRuleStore

HYDRA = """format: 1
rules:
  - id: hydra
    when: "signals.template != ''"
    key: template
    aggregates: {owners: {kind: distinct, of: account.id, window: 1h}}
    threshold: "agg.owners >= 30"
    actions: [{do: redact, mode: omit, for: 1h}]
"""
PROMPT = "Template job {}: label this item for the dataset, one word only"


def app(tmp_path: Path, state_url: str, clock: FakeClock) -> Any:
    rules = tmp_path / "hydra.yaml"
    rules.write_text(HYDRA)
    cfg = config_from_dict({
        "server": {"listen": "127.0.0.1:0"},
        "upstreams": [{"name": "u", "url": "http://127.0.0.1:9"}],
        "state": {"url": state_url, "namespace": "apps"},
        "rules": {"paths": [str(rules)]},
    }, source="<test>")
    return ProxyApp(cfg, clock=clock)


def judge_of(proxy: Any) -> Any:
    return next(f for f in proxy.filters if getattr(f, "name", "") == "judge")


def exchange(account: str, prompt: str) -> Exchange:
    body = {"model": "o3", "messages": [{"role": "user", "content": prompt}]}
    ex = Exchange(path="/v1/chat/completions", body=orjson.dumps(body), dialect=DIALECTS["openai_chat"],
                  client_ip="198.51.100.7")
    ex.account = Account(id=account, tier="free")
    return ex


async def campaign(judges: list[Any], clock: FakeClock, accounts: int) -> list[dict[str, Any]]:
    """``accounts`` accounts send the template, alternately through each judge; then a new account."""
    for i in range(accounts):
        await judges[i % len(judges)].on_request(exchange(f"acct-{i}", PROMPT.format(i)))
        clock.advance(1.0)
    out = []
    for j in judges:
        ex = exchange("fresh", PROMPT.format(999))
        await j.on_request(ex)
        out.append(dict(ex.controls))
    return out


async def test_replicas_sharing_redis_see_the_whole_campaign(tmp_path: Path, redis_url: str) -> None:
    clock = FakeClock(1_767_225_600.0)
    apps = [app(tmp_path, redis_url, clock) for _ in range(2)]
    judges = [judge_of(a) for a in apps]
    stores = [j.engine.store for j in judges]
    assert all(isinstance(s, FaultTolerantRuleStore) for s in stores)
    assert stores[0].primary.client is not stores[1].primary.client
    try:
        controls = await campaign(judges, clock, 40)  # 20 accounts through each
        assert controls == [{"redaction": "omit"}] * 2
        st = await judges[0].engine.astate_of("template", _template(judges[0]), clock.now())
        assert st["active"] and st["active"][0]["do"] == "redact"
    finally:
        for j in judges:
            await j.stop()


async def test_replicas_on_memory_each_see_half(tmp_path: Path) -> None:
    clock = FakeClock(1_767_225_600.0)
    judges = [judge_of(app(tmp_path, "memory://", clock)) for _ in range(2)]
    controls = await campaign(judges, clock, 40)
    assert controls == [{}, {}]  # 20 distinct accounts each: under the threshold of 30


def _template(judge: Any) -> str:
    from proxy.filters.judge import meta_of
    from proxy.policy.signals import compute_features

    ex = exchange("x", PROMPT.format(1))
    ctx = compute_features(ex.view, meta_of(ex), 0.0, judge.engine.ruleset.matchers)
    return str(ctx["signals.template"])
