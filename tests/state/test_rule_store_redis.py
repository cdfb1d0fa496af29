"""Redis-specific rule state behaviour: one round trip per request, NOSCRIPT recovery, namespaced keys,
Redis down in fail-open and fail-closed, recovery, bounded write queue, and two replicas sharing one
Redis seeing a hydra campaign that neither sees alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis_server import RedisServer, free_port

from proxy.accounts import Account
from proxy.clock import FakeClock
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange, Message, RequestView
from proxy.filters.judge import JudgeFilter
from proxy.policy.engine import Engine
from proxy.policy.loader import load_text
from proxy.policy.signals import RequestMeta, compute_features
from proxy.policy.store_faults import FaultTolerantRuleStore, rule_store_from_config
from proxy.policy.store_redis import RedisRuleStore
from proxy.state.faults import StateUnavailable
from proxy.state.resp import RespClient

T0 = 1_767_225_600.0
RULES = """
rules:
  - id: burst
    when: "true"
    key: account
    aggregates: {n: {kind: count, window: 1m, buckets: 6}}
    threshold: "agg.n >= 3"
    score: 2
    actions: [{do: throttle, factor: 0.5, for: 10m}, {do: alert, for: 10m}]
"""
HYDRA = """
rules:
  - id: hydra
    when: "signals.template != ''"
    key: template
    aggregates: {owners: {kind: distinct, of: account.id, window: 1h}}
    threshold: "agg.owners >= 40"
    actions: [{do: redact, mode: omit, for: 1h}]
"""


def rules(body: str) -> Any:
    return load_text("t.yaml", "format: 1\n" + body)


def feats(rs: Any, account: str = "a1", prompt: str = "hello", t: float = T0) -> dict[str, Any]:
    view = RequestView(model="o3", messages=[Message("user", prompt)])
    return compute_features(view, RequestMeta(account_id=account, tier="free"), t, rs.matchers)


def redis_engine(rs: Any, url: str, namespace: str = "rr") -> tuple[Engine, RedisRuleStore]:
    store = RedisRuleStore(RespClient(url), rs, namespace=namespace)
    e = Engine(rs)
    e.use_store(store)
    return e, store


async def test_one_round_trip_per_request_and_writes_ride_along(redis_url: str) -> None:
    rs = rules(RULES)
    e, store = redis_engine(rs, redis_url)
    try:
        for i in range(10):  # from the 3rd on, every request writes a score, an action, an alert time
            v = await e.aevaluate(feats(rs, t=T0 + i), T0 + i)
        assert v.controls == {"throttle": 0.5} and v.scores["account"] == pytest.approx(16.0, abs=0.02)
        # One command per request (plus a reload if the script was not cached yet): no write batches.
        assert store.client.sent - store.reloads == 10 and store.round_trips == 10 and store.flushes == 0
        await store.flush()  # the last request's writes
        assert store.client.sent - store.reloads == 11
        st = await e.astate_of("account", "a1", T0 + 10)
        assert st["score"] == pytest.approx(16.0, abs=0.02) and st["active"][0]["do"] == "throttle"
        assert st["windows"]["burst"]["n"] == 10
    finally:
        await e.close()


async def test_noscript_recovery_and_namespaced_keys(redis_server: RedisServer, redis_url: str) -> None:
    rs = rules(RULES)
    e, store = redis_engine(rs, redis_url, namespace="ns1")
    try:
        await e.aevaluate(feats(rs, t=T0), T0)
        before = store.reloads
        redis_server.command("SCRIPT", "FLUSH")
        await e.aevaluate(feats(rs, t=T0 + 1), T0 + 1)
        v = await e.aevaluate(feats(rs, t=T0 + 2), T0 + 2)
        assert v.hit_ids == ["burst"] and store.reloads == before + 1
        await store.flush()
        keys = redis_server.command("KEYS", "*")
        assert keys and all(k.startswith("{ns1}\x1f") for k in keys.split("\r\n")[2::2] if k)
    finally:
        await e.close()


async def test_bounded_write_queue_drops_and_counts(redis_url: str) -> None:
    rs = rules(RULES)
    reg = CollectorRegistry()
    e, store = redis_engine(rs, redis_url)
    ft = FaultTolerantRuleStore(store, registry=reg)
    e.use_store(ft)
    store.max_pending = 2
    try:
        for i in range(3):
            await e.aevaluate(feats(rs, t=T0 + i), T0 + i)  # the 3rd hits: score, throttle, alert = 3 writes
        assert reg.get_sample_value("distillguard_rule_state_writes_total", {"outcome": "dropped"}) == 3
    finally:
        await e.close()


async def test_redis_down_fail_open_falls_back_loudly_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    server = RedisServer(tmp_path, port=port).start()
    rs = rules(RULES)
    clock, reg = FakeClock(T0), CollectorRegistry()
    store = RedisRuleStore(RespClient(f"redis://127.0.0.1:{port}/0", connect_timeout=0.2), rs, namespace="f")
    ft = FaultTolerantRuleStore(store, failures=1, open_for=5.0, timeout=0.2, clock=clock, registry=reg)
    e = Engine(rs)
    e.use_store(ft)
    try:
        for i in range(2):
            await e.aevaluate(feats(rs, t=T0 + i), T0 + i)  # two events counted in Redis
        server.kill()
        v = await e.aevaluate(feats(rs, t=T0 + 2), T0 + 2)  # local state starts from zero
        assert v.hits == [] and ft.degraded
        for i in range(3, 5):
            v = await e.aevaluate(feats(rs, t=T0 + i), T0 + i)
        assert v.hit_ids == ["burst"]  # rules still run, on this process's traffic
        assert reg.get_sample_value("distillguard_rule_state_up", {"backend": "redis"}) == 0
        assert reg.get_sample_value("distillguard_rule_state_fallback_total", {"backend": "redis"}) == 3
        assert "FALLING BACK to local in-memory rule state" in caplog.text
        server.start()  # empty: killed without persistence
        clock.advance(5.0)
        for i in range(5, 8):
            v = await e.aevaluate(feats(rs, t=T0 + i), T0 + i)
        assert not ft.degraded and v.hit_ids == ["burst"] and v.hits[0].values["n"] == 3.0
        assert server.command("DBSIZE") != "0"  # counted in Redis again
        assert reg.get_sample_value("distillguard_rule_state_up", {"backend": "redis"}) == 1
    finally:
        await e.close()
        server.stop()


async def test_redis_down_fail_closed_answers_503_in_the_dialect(tmp_path: Path) -> None:
    port = free_port()  # nothing listens: connections are refused
    rs = rules(RULES)
    store = RedisRuleStore(RespClient(f"redis://127.0.0.1:{port}/0", connect_timeout=0.2), rs)
    ft = FaultTolerantRuleStore(store, on_failure="closed", failures=1, open_for=60.0, timeout=0.2)
    e = Engine(rs)
    e.use_store(ft)
    with pytest.raises(StateUnavailable):
        await e.aevaluate(feats(rs), T0)
    judge = JudgeFilter(e, clock=FakeClock(T0))
    ex = Exchange(path="/v1/chat/completions", dialect=DIALECTS["openai_chat"], client_ip="198.51.100.7",
                  body=orjson.dumps({"model": "o3", "messages": [{"role": "user", "content": "hi"}]}))
    ex.account = Account(id="a1", tier="free")
    reply = await judge.on_request(ex)
    assert reply is not None and reply.status == 503
    assert orjson.loads(reply.body)["error"]["code"] == "state_unavailable"
    await judge.stop()


class _Cfg:
    def __init__(self, url: str) -> None:
        from proxy.state.config import StateSpec

        self.sections = {"state": StateSpec(url=url, namespace="hydra")}


async def test_two_replicas_see_a_hydra_campaign_neither_sees_alone(redis_url: str) -> None:
    rs = rules(HYDRA)
    replicas = []
    for _ in range(2):
        e = Engine(rs)
        store = rule_store_from_config(_Cfg(redis_url), rs)
        assert store is not None
        e.use_store(store)
        replicas.append(e)
    alone = Engine(rs)  # what one replica would count on its own (memory)
    prompt = "Template job {}: label this item for the dataset"
    try:
        for i in range(50):  # 50 accounts, alternately on each replica: 25 each, under the threshold
            t = T0 + i
            ctx = feats(rs, account=f"acct-{i}", prompt=prompt.format(i), t=t)
            v = await replicas[i % 2].aevaluate(dict(ctx), t)
            if i % 2 == 0:
                alone.evaluate(dict(ctx), t)
        assert v.hit_ids == ["hydra"] and 40 <= v.hits[0].values["owners"] <= 51
        assert alone.state_of("template", ctx["signals.template"], t)["windows"]["hydra"]["owners"] == 25
        # The redaction now applies on both replicas, to any account sending the template.
        for e in replicas:
            v = await e.aevaluate(feats(rs, account="fresh", prompt=prompt.format(99), t=T0 + 60), T0 + 60)
            assert v.controls == {"redaction": "omit"}
    finally:
        for e in replicas:
            await e.close()
