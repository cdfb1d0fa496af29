"""The synchronous first steps the app calls (``on_request_now``/``on_done_now``) and the app's done hooks:
same decisions, headers and settlement as the coroutine hooks; no lease leaked; usage read first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from proxy.accounts import Account
from proxy.app import ProxyApp
from proxy.config import config_from_dict
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.filters.shape import ShapeFilter
from proxy.shaping.spec import parse_limits

RPM = {"name": "rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 3}}
TPM = {"name": "tpm", "scope": ["account"], "tokens": {"limit": 1000, "window": "1m", "count": "total"}}
CONC = {"name": "conc", "scope": ["account"], "concurrency": {"max": 2}}

MakeEx = Callable[..., Exchange]
MakeFilter = Callable[..., ShapeFilter]


async def request_as_app(f: ShapeFilter, ex: Exchange) -> Any:
    pending = f.on_request_now(ex)
    return None if pending is None else await pending


async def done_as_app(f: ShapeFilter, ex: Exchange) -> None:
    pending = f.on_done_now(ex)
    if pending is not None:
        await pending


@pytest.mark.parametrize("fast_path", [True, False])
async def test_sync_steps_decide_as_the_hooks(make_filter: MakeFilter, make_ex: MakeEx, fast_path: bool,
                                              clock: Any, timer: Any) -> None:
    sync = make_filter([RPM, CONC], fast_path=fast_path)
    hooks = ShapeFilter(parse_limits([RPM, CONC]), clock=clock, registry=CollectorRegistry(), sleep=timer.sleep,
                        sweep_interval=0, fast_path=fast_path)
    for _round in range(3):
        held: list[tuple[Exchange, Exchange]] = []
        for _ in range(3):
            a, b = make_ex(), make_ex()
            ra, rb = await request_as_app(sync, a), await hooks.on_request(b)
            assert (ra is None) == (rb is None)
            if ra is None:
                assert a.reply_headers == b.reply_headers and a.reply_headers
                held.append((a, b))
            else:  # the third in flight: a 429 with the same headers
                assert ra.status == rb.status == 429
                ha, hb = dict(ra.headers), dict(rb.headers)
                assert ha.pop("x-request-id") == a.request_id and hb.pop("x-request-id") == b.request_id
                assert ha == hb and ha["Retry-After"] == "1"
                await done_as_app(sync, a)
                await hooks.on_done(b)
        for a, b in held:
            await done_as_app(sync, a)
            await hooks.on_done(b)
        assert not any(isinstance(v, dict) for v in sync.backend._d.values())  # type: ignore[attr-defined]
    assert sync.backend._d.keys() == hooks.backend._d.keys()  # type: ignore[attr-defined]


async def test_admitted_at_once_needs_no_coroutine(make_filter: MakeFilter, make_ex: MakeEx) -> None:
    f = make_filter([RPM, TPM, CONC])
    ex = make_ex(max_tokens=100)
    assert f.on_request_now(ex) is None
    assert ex.reply_headers["x-ratelimit-remaining-requests"] == "2"
    assert f.on_done_now(ex) is None
    assert not any(isinstance(v, dict) for v in f.backend._d.values())  # type: ignore[attr-defined]


async def test_a_request_that_must_wait_gets_an_awaitable(make_filter: MakeFilter, make_ex: MakeEx,
                                                          timer: Any) -> None:
    f = make_filter([{**RPM, "delay": {"max": "10s", "queue": 4}}])
    for _ in range(3):
        assert f.on_request_now(make_ex()) is None
    ex = make_ex()
    pending = f.on_request_now(ex)
    assert pending is not None
    task = asyncio.ensure_future(pending)  # type: ignore[arg-type]
    await timer.settle()
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await done_as_app(f, ex)
    assert f.shaper.limits[0].queues.depth == 0  # type: ignore[union-attr]


def _app(limits: list[dict[str, Any]]) -> ProxyApp:
    cfg = config_from_dict({
        "server": {"listen": "127.0.0.1:0"},
        "upstreams": [{"name": "u", "url": "http://127.0.0.1:9"}],
        "limits": limits,
    }, source="<test>")
    return ProxyApp(cfg, tune_gc=False)


def _answer(inp: int, out: int) -> bytes:
    return orjson.dumps({"id": "c", "object": "chat.completion", "choices": [],
                         "usage": {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}})


@pytest.mark.parametrize("body", ["usage", "not json", "unreadable"])
async def test_app_reads_a_buffered_usage_before_the_done_hooks(body: str) -> None:
    """A buffered answer whose usage the relay left unread is reconciled with it; a body that cannot be
    read still lets every done hook run (the lease is released)."""
    proxy = _app([TPM, CONC])
    shape = next(f for f in proxy.filters if isinstance(f, ShapeFilter))
    raw = {"usage": _answer(40, 60), "not json": b"<html>", "unreadable": b"[1, 2]"}[body]
    ex = Exchange(body=b'{"model": "m", "max_tokens": 500, "messages": []}', dialect=DIALECTS["openai_chat"])
    ex.account = Account(id="acct", tier="standard")
    assert shape.on_request_now(ex) is None
    ex.status = 200
    ex.usage_body = raw
    pending = proxy._run_done(ex)
    if pending is not None:
        await pending
    assert ex.usage_body is None
    assert not any(isinstance(v, dict) for v in shape.backend._d.values())  # type: ignore[attr-defined]
    if body == "usage":
        assert (ex.usage.input, ex.usage.output) == (40, 60)
        probe = Exchange(body=b'{"model": "m", "max_tokens": 1, "messages": []}', dialect=DIALECTS["openai_chat"])
        probe.account = ex.account
        assert shape.on_request_now(probe) is None
        used = 100 + 1 + len(probe.body) // 4
        assert probe.reply_headers["x-ratelimit-remaining-tokens"] == str(1000 - used)
