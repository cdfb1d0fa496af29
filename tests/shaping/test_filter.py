"""ShapeFilter hooks on Exchanges built directly: 429s, headers, shadow mode, leases, tokens, budgets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from proxy.exchange import Event, Exchange, Usage
from proxy.filters.shape import ShapeFilter

RPM = {"name": "rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 3}}
TPM = {"name": "tpm", "scope": ["account"], "tokens": {"limit": 1000, "window": "1m", "count": "total"}}
CONC = {"name": "conc", "scope": ["account"], "concurrency": {"max": 2}}

MakeEx = Callable[..., Exchange]
MakeFilter = Callable[..., ShapeFilter]


async def admit(f: ShapeFilter, ex: Exchange) -> Any:
    """on_request, as the app runs it (an admitted request's headers are then in ex.reply_headers)."""
    return await f.on_request(ex)


def chunk(text: str) -> Event:
    choices = [{"index": 0, "delta": {"content": text}}]
    obj = {"id": "c", "object": "chat.completion.chunk", "choices": choices}
    return Event(orjson.dumps(obj))


def usage_chunk(inp: int, out: int) -> Event:
    obj = {"id": "c", "object": "chat.completion.chunk", "choices": [],
           "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}}
    return Event(orjson.dumps(obj))


async def test_reject_is_a_429_in_the_dialect_shape_with_headers(make_filter: MakeFilter, make_ex: MakeEx,
                                                                  metric: Any) -> None:
    f = make_filter([RPM])
    for _ in range(3):
        ex = make_ex()
        assert await f.on_request(ex) is None
    ex = make_ex()
    reply = await f.on_request(ex)
    assert reply is not None and reply.status == 429
    body = orjson.loads(reply.body)
    assert body["error"]["code"] == "rate_limited" and body["error"]["type"] == "rate_limit_error"
    h = reply.headers
    assert h["Retry-After"] == "1" and h["retry-after-ms"] == "1000"
    assert h["RateLimit-Policy"] == '"rpm";q=60;w=60'
    assert h["RateLimit"] == '"rpm";r=0;t=1'
    assert h["x-ratelimit-limit-requests"] == "60"
    assert h["x-ratelimit-remaining-requests"] == "0"
    assert h["x-ratelimit-reset-requests"] == "3s"
    assert metric("distillguard_shape_rejected_total", limit="rpm", mode="enforce") == 1
    assert metric("distillguard_shape_admitted_total", limit="rpm", mode="enforce") == 3
    await f.on_done(ex)


async def test_success_headers_set_before_the_first_byte(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([RPM, TPM])
    ex = make_ex(max_tokens=100, stream=True)
    assert await admit(f, ex) is None
    h = ex.reply_headers
    assert h["x-ratelimit-remaining-requests"] == "2"
    assert h["x-ratelimit-limit-tokens"] == "1000"
    reserved = 100 + len(ex.body) // 4
    assert h["x-ratelimit-remaining-tokens"] == str(1000 - reserved)
    assert h["RateLimit-Policy"] == '"rpm";q=60;w=60, "tpm";q=1000;w=60'
    assert h["RateLimit"].startswith('"rpm";r=2;t=1, "tpm";r=')


async def test_anthropic_headers(make_filter: MakeFilter, make_ex: MakeEx, clock: Any) -> None:
    f = make_filter([RPM, {**TPM, "tokens": {"limit": 1000, "window": "1m", "count": "output"}}])
    ex = make_ex(dialect="anthropic_messages", max_tokens=100)
    assert await admit(f, ex) is None
    h = ex.reply_headers
    assert h["anthropic-ratelimit-requests-limit"] == "60"
    assert h["anthropic-ratelimit-requests-remaining"] == "2"
    assert h["anthropic-ratelimit-requests-reset"] == "2023-11-14T22:13:21Z"  # fake clock + 1 s
    assert h["anthropic-ratelimit-output-tokens-remaining"] == "900"
    assert h["anthropic-ratelimit-tokens-remaining"] == "900"
    assert not any(k.startswith("x-ratelimit") for k in h)
    for _ in range(2):
        await f.on_request(make_ex(dialect="anthropic_messages", max_tokens=1))
    reply = await f.on_request(make_ex(dialect="anthropic_messages", max_tokens=1))
    assert reply is not None and reply.status == 429
    assert orjson.loads(reply.body)["error"]["type"] == "rate_limit_error"


async def test_limits_are_per_scope(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([{**RPM, "scope": ["account", "model"]},
                     {"name": "pfx", "scope": ["ip_prefix"], "requests": {"rate": "1/m", "burst": 4}}])
    for _ in range(3):
        assert await f.on_request(make_ex(model="a", ip="10.0.0.1")) is None
    assert await f.on_request(make_ex(model="a", ip="10.0.0.9")) is not None  # account+model full
    assert await f.on_request(make_ex(model="b", ip="10.0.0.2")) is None  # other model
    # the /24 saw 4 admitted (the rejected one took nothing): the 5th from 10.0.0.x is refused
    r = await f.on_request(make_ex(account="other", model="c", ip="10.0.0.200"))
    assert r is not None and "pfx" in orjson.loads(r.body)["error"]["message"]
    assert await f.on_request(make_ex(account="other", model="c", ip="10.0.1.1")) is None


async def test_match_and_feature_scope(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([{"name": "fp", "scope": ["feature:template_fp"], "requests": {"rate": "1/m"},
                      "match": {"tier": ["restricted"]}}])
    assert await f.on_request(make_ex(tier="restricted", features={"template_fp": "t1"})) is None
    assert await f.on_request(make_ex(tier="restricted", account="b", features={"template_fp": "t1"}))
    assert await f.on_request(make_ex(tier="restricted", features={"template_fp": "t2"})) is None
    assert await f.on_request(make_ex(tier="standard", features={"template_fp": "t1"})) is None
    assert await f.on_request(make_ex(tier="restricted")) is None  # no cluster key: not limited


async def test_shadow_mode_counts_but_never_enforces(make_filter: MakeFilter, make_ex: MakeEx,
                                                     metric: Any, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="distillguard.shaping")
    f = make_filter([{**RPM, "mode": "shadow"}, {**CONC, "mode": "shadow"}])
    exs = [make_ex() for _ in range(5)]
    for ex in exs:
        assert await admit(f, ex) is None
        assert "RateLimit" not in ex.reply_headers  # shadow limits are not shown to clients
    assert metric("distillguard_shape_rejected_total", limit="rpm", mode="shadow") == 2
    assert metric("distillguard_shape_admitted_total", limit="rpm", mode="shadow") == 3
    assert any("shadow limit rpm would reject" in r.message for r in caplog.records)
    for ex in exs:
        await f.on_done(ex)
    assert len(f.backend) <= 1  # type: ignore[arg-type]  # only the rpm cell; no lease left


async def test_shadow_delay_counts_delayed(make_filter: MakeFilter, make_ex: MakeEx, metric: Any) -> None:
    f = make_filter([{**RPM, "mode": "shadow", "delay": {"max": "5s", "queue": 4}}])
    for _ in range(5):
        assert await f.on_request(make_ex()) is None
    assert metric("distillguard_shape_delayed_total", limit="rpm") == 2
    assert metric("distillguard_shape_rejected_total", limit="rpm", mode="shadow") == 0


@pytest.mark.parametrize("ending", ["ok", "upstream_error", "timeout", "disconnect", "local_reply"])
async def test_concurrency_slots_never_leak(make_filter: MakeFilter, make_ex: MakeEx, ending: str) -> None:
    f = make_filter([CONC])
    for _round in range(5):
        exs = [make_ex(), make_ex()]
        for ex in exs:
            assert await f.on_request(ex) is None
        third = make_ex()
        reply = await f.on_request(third)
        assert reply is not None and reply.status == 429 and reply.headers["Retry-After"] == "1"
        await f.on_done(third)
        for ex in exs:
            if ending == "upstream_error":
                ex.status = 502
            elif ending == "timeout":
                ex.error_code = "upstream_timeout"
            elif ending == "disconnect":
                ex.client_gone = True
            await f.on_done(ex)
            await f.on_done(ex)  # idempotent
    assert len(f.backend) == 0  # type: ignore[arg-type]


async def test_lease_released_when_cancelled_in_a_delay_queue(make_filter: MakeFilter, make_ex: MakeEx,
                                                              timer: Any) -> None:
    f = make_filter([CONC, {**RPM, "delay": {"max": "10s", "queue": 4}}])
    for _ in range(3):
        done = make_ex()
        assert await f.on_request(done) is None
        await f.on_done(done)
    ex = make_ex()
    task = asyncio.ensure_future(f.on_request(ex))  # waits in the rpm queue
    await timer.settle()
    assert not task.done()
    assert f.shaper.limits[1].queues.depth == 1  # type: ignore[union-attr]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert f.shaper.limits[1].queues.depth == 0  # type: ignore[union-attr]
    await f.on_done(ex)  # the app runs on_done in its finally
    assert not any(isinstance(v, dict) for v in f.backend._d.values())  # type: ignore[attr-defined]


async def test_stream_cut_short_reconciles_with_streamed_tokens(make_filter: MakeFilter, make_ex: MakeEx,
                                                                clock: Any) -> None:
    f = make_filter([{**TPM, "tokens": {"limit": 1000, "window": "1m", "count": "output"}}])
    ex = make_ex(max_tokens=800, stream=True)
    assert await admit(f, ex) is None
    assert ex.reply_headers["x-ratelimit-remaining-tokens"] == "200"
    # reservation blocks a second big request now
    assert await f.on_request(make_ex(max_tokens=300)) is not None
    for _ in range(10):  # 10 chunks of 8 chars = 20 tokens streamed, then the client goes away
        assert f.on_event(ex, chunk("abcdefgh")) != []
    ex.client_gone = True
    await f.on_done(ex)
    ex2 = make_ex(max_tokens=300)
    assert await admit(f, ex2) is None  # 800 reserved became 20 used
    assert ex2.reply_headers["x-ratelimit-remaining-tokens"] == str(1000 - 20 - 300)


async def test_reconcile_from_real_usage_total(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([TPM])
    ex = make_ex(max_tokens=500, stream=True)
    assert await f.on_request(ex) is None
    f.on_event(ex, chunk("hello"))
    f.on_event(ex, usage_chunk(40, 60))
    ex.status = 200
    await f.on_done(ex)
    probe = make_ex(max_tokens=1)
    assert await admit(f, probe) is None
    assert probe.reply_headers["x-ratelimit-remaining-tokens"] == str(1000 - 100 - (1 + len(probe.body) // 4))
    # a buffered body's usage (merged into ex.usage by the app) wins as well
    ex3 = make_ex(max_tokens=500)
    await f.on_request(ex3)
    ex3.usage = Usage(input=10, output=10)
    await f.on_done(ex3)
    probe = make_ex(max_tokens=1)
    assert await admit(f, probe) is None
    assert probe.reply_headers["x-ratelimit-remaining-tokens"] == str(1000 - 120 - 2 * (1 + len(probe.body) // 4))


async def test_cut_stream_past_budget_with_clean_error_event(make_filter: MakeFilter, make_ex: MakeEx,
                                                             metric: Any) -> None:
    f = make_filter([{**TPM, "tokens": {"limit": 100, "window": "1m", "count": "output", "cut_stream": True,
                                        "reserve": 10}}])
    ex = make_ex(stream=True)  # no max_tokens: reserves 10, may stream the 100 the window has
    assert await f.on_request(ex) is None
    st = ex.state["shape"]
    assert st.budget == 100
    out: list[Event] = []
    for _ in range(30):
        out.extend(f.on_event(ex, chunk("x" * 16)))  # 4 tokens each
    assert st.cut
    assert len(out) == 26  # 25 chunks (100 tokens) then the error event; the rest dropped
    err = orjson.loads(out[-1].data)
    assert err["error"]["code"] == "rate_limited"
    assert metric("distillguard_shape_stream_cut_total", limit="tpm") == 1
    await f.on_done(ex)


async def test_cut_tokens_control(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([])
    ex = make_ex(stream=True, dialect="anthropic_messages", controls={"cut_tokens": 2})
    assert await f.on_request(ex) is None
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "abcd"}}
    ev = Event(orjson.dumps(delta), name="content_block_delta")
    assert f.on_event(ex, ev) == [ev]
    assert f.on_event(ex, ev) == [ev]
    out = f.on_event(ex, ev)
    assert len(out) == 1 and out[0].name == "error"
    assert f.on_event(ex, ev) == []


async def test_on_event_is_a_passthrough_without_token_work(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([RPM])
    ex = make_ex(stream=True)
    await f.on_request(ex)
    ev = chunk("hi")
    assert f.on_event(ex, ev) == [ev]
    assert ev._parsed is False  # not even parsed


async def test_throttle_control_and_persistent_multiplier(make_filter: MakeFilter, make_ex: MakeEx,
                                                          clock: Any) -> None:
    f = make_filter([{**RPM, "requests": {"rate": "60/m", "burst": 4}}])
    # per request: throttle 0.5 makes each request cost 2 of the 4
    assert await f.on_request(make_ex(account="t", controls={"throttle": 0.5})) is None
    assert await f.on_request(make_ex(account="t", controls={"throttle": 0.5})) is None
    assert await f.on_request(make_ex(account="t", controls={"throttle": 0.5})) is not None
    # persistent: a quarter of normal for 1 h, then back
    await f.throttle("account", "p", 0.25, duration=3600)
    assert await f.on_request(make_ex(account="p")) is None
    r = await f.on_request(make_ex(account="p"))
    assert r is not None and r.headers["Retry-After"] == "4"
    clock.advance(3600)
    for _ in range(4):
        assert await f.on_request(make_ex(account="p")) is None


async def test_admitted_headers_reach_later_local_replies(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([RPM])
    ex = make_ex()
    assert await f.on_request(ex) is None
    # the app's send_reply adds ex.reply_headers to any local reply (e.g. a later filter's 403)
    assert ex.reply_headers["x-ratelimit-remaining-requests"] == "2"
    assert ex.reply_headers["RateLimit"] == '"rpm";r=2;t=1'


class BrokenBackend:
    async def apply(self, *a: Any, **k: Any) -> Any:
        raise ConnectionError("down")

    async def sweep(self, now: float) -> int:
        return 0

    async def close(self) -> None:
        pass


async def test_state_failure_fails_open(make_ex: MakeEx, clock: Any, registry: Any) -> None:
    from proxy.shaping.spec import parse_limits

    f = ShapeFilter(parse_limits([RPM, CONC]), BrokenBackend(), clock=clock, registry=registry,
                    sweep_interval=0)
    ex = make_ex()
    assert await f.on_request(ex) is None
    await f.on_done(ex)
    assert registry.get_sample_value("distillguard_shape_state_errors_total") == 2
    g = ShapeFilter(parse_limits([RPM]), BrokenBackend(), fail_open=False, sweep_interval=0)
    r = await g.on_request(make_ex())
    assert r is not None and r.status == 503


async def test_lru_eviction_metric(make_ex: MakeEx, clock: Any, registry: Any) -> None:
    from proxy.shaping.spec import parse_limits
    from proxy.state import MemoryBackend

    f = ShapeFilter(parse_limits([RPM]), MemoryBackend(max_keys=10), clock=clock, registry=registry,
                    sweep_interval=0)
    for i in range(25):
        await f.on_request(make_ex(account=f"a{i}"))
    assert registry.get_sample_value("distillguard_state_evictions_total") == 15


async def test_throttle_for_request_scope(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([{**RPM, "requests": {"rate": "60/m", "burst": 2}}])
    assert await f.throttle_for(make_ex(account="s"), 0.5, duration=60)
    assert not await f.throttle_for(make_ex(account=None), 0.5, duration=60)
    assert await f.on_request(make_ex(account="s")) is None
    assert await f.on_request(make_ex(account="s")) is not None


def test_from_config_takes_parsed_or_raw(make_ex: MakeEx) -> None:
    from proxy.shaping.spec import parse_limits

    specs = parse_limits([RPM])
    assert ShapeFilter.from_config(specs).shaper.limits[0].spec is specs[0]
    assert ShapeFilter.from_config([RPM]).shaper.limits[0].spec.name == "rpm"


def test_ip_prefix() -> None:
    from proxy.shaping.limiter import ip_prefix

    assert ip_prefix("203.0.113.77") == "203.0.113.0/24"
    assert ip_prefix("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert ip_prefix("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert ip_prefix("not-an-ip") == "not-an-ip"


async def test_streams_are_looked_at_only_when_tokens_are_counted(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    # A request limit alone lets the relay send events as they came (plain mode); a tokens limit, a
    # budget cut or pacing needs every event.
    f = make_filter([RPM])
    ex = make_ex(stream=True)
    await f.on_request(ex)
    assert f.wants_events(ex) is False
    ex3 = make_ex(stream=True, controls={"cut_tokens": 2})
    await f.on_request(ex3)
    assert f.wants_events(ex3) is True
    assert f.wants_events(make_ex(stream=True)) is False  # never admitted (e.g. refused earlier)


async def test_a_tokens_limit_needs_the_stream_events(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    g = make_filter([TPM])
    ex = make_ex(stream=True, max_tokens=10)
    await g.on_request(ex)
    assert g.wants_events(ex) is True
