"""The relay's per-request shortcuts and the slow paths they must leave in place.

Header deadlines (``deadlines.HeaderDeadlines``), the cached upstream URL, client headers passed to
aiohttp as a list, the inlined bearer-key read and body intake: each shortcut is checked here against
the case that must still take the general path.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.deadlines import HeaderDeadlines
from proxy.exchange import Exchange
from proxy.headers import client_headers, upstream_headers

# --------------------------------------------------------------------------- header deadlines


async def _sleeper() -> None:
    await asyncio.sleep(10)


async def test_header_deadline_cancels_a_waiting_task_when_due_never_early() -> None:
    loop = asyncio.get_running_loop()
    waiting = HeaderDeadlines(loop)
    task = loop.create_task(_sleeper())
    t0 = loop.time()
    waiting.arm(task, 0.1)
    with pytest.raises(asyncio.CancelledError):
        await task
    late = loop.time() - t0
    assert 0.1 <= late < 0.1 + 0.2
    assert not waiting.disarm(task)  # it fired: not pending any more (tells a timeout from a disconnect)
    assert waiting.due == {} and waiting._timer is None  # nothing left, no timer set


async def test_header_deadline_disarmed_in_time_leaves_the_task_alone() -> None:
    loop = asyncio.get_running_loop()
    waiting = HeaderDeadlines(loop)
    task = loop.create_task(_sleeper())
    waiting.arm(task, 0.05)
    assert waiting.disarm(task)  # pending until now
    assert not waiting.disarm(task)  # a second disarm is harmless
    await asyncio.sleep(0.15)  # the timer fires for nothing and sets no new one
    assert not task.cancelled() and not task.done()
    assert waiting._timer is None
    task.cancel()


async def test_header_deadlines_fire_in_turn_and_an_earlier_one_moves_the_timer() -> None:
    loop = asyncio.get_running_loop()
    waiting = HeaderDeadlines(loop)
    slow, quick, kept = (loop.create_task(_sleeper()) for _ in range(3))
    waiting.arm(slow, 0.3)
    waiting.arm(quick, 0.05)  # earlier than the timer already set: the timer moves
    waiting.arm(kept, 0.1)
    waiting.disarm(kept)
    await asyncio.sleep(0.15)
    assert quick.cancelled() and not slow.done() and not kept.done()
    await asyncio.sleep(0.3)
    assert slow.cancelled() and not kept.done()
    kept.cancel()
    waiting.close()


class _Counting(HeaderDeadlines):
    __slots__ = ("sweeps",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.sweeps = 0

    def _fire(self) -> None:
        self.sweeps += 1
        super()._fire()


async def test_header_deadline_sweeps_at_most_once_per_resolution() -> None:
    loop = asyncio.get_running_loop()
    waiting = _Counting(loop)
    tasks = [loop.create_task(_sleeper()) for _ in range(3)]
    for i, task in enumerate(tasks):
        waiting.arm(task, 0.05 + i * 0.002)  # three deadlines within one resolution step
    await asyncio.sleep(0.3)
    assert all(t.cancelled() for t in tasks)
    # The first sweep finds one due; the next waits RESOLUTION and takes the other two together
    # (a sweep per deadline would be three; one if the loop was late enough that all were due at once).
    assert 1 <= waiting.sweeps <= 2


# --------------------------------------------------------------------------- headers


def _ex(headers: list[tuple[str, str]], **kw: object) -> Exchange:
    return Exchange(headers=CIMultiDictProxy(CIMultiDict(headers)), **kw)  # type: ignore[arg-type]


UPSTREAM = CIMultiDictProxy(CIMultiDict([("Content-Type", "application/json"), ("x-request-id", "req_1"),
                                         ("Content-Length", "10"), ("Connection", "keep-alive")]))


def test_client_headers_without_filter_headers_are_a_list_with_the_same_fields() -> None:
    ex = _ex([])
    out = client_headers(ex, UPSTREAM, "x-request-id")
    assert isinstance(out, list)
    assert out == [("Content-Type", "application/json"), ("x-upstream-request-id", "req_1"),
                   ("Server", "distillguard"), ("x-request-id", ex.request_id)]
    assert ex.upstream_request_id == "req_1"


def test_client_headers_with_filter_headers_replace_the_upstreams() -> None:
    ex = _ex([])
    ex.reply_headers["content-type"] = "text/plain"
    ex.reply_headers["x-ratelimit-remaining"] = "3"
    out = client_headers(ex, UPSTREAM, "x-request-id")
    assert isinstance(out, CIMultiDict)
    assert out.getall("Content-Type") == ["text/plain"]  # replaced, not added
    assert out["x-ratelimit-remaining"] == "3" and out["x-request-id"] == ex.request_id


class _Spec:
    headers: dict[str, str] = {}


def test_upstream_headers_untrusted_peer_gets_fresh_forwarding_fields() -> None:
    ex = _ex([("Authorization", "Bearer k"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
              ("Accept", "*/*")])
    out = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    assert out.getall("X-Forwarded-For") == ["10.0.0.9"]  # the client's own claim is dropped
    assert out.getall("X-Forwarded-Proto") == ["http"]
    assert "Authorization" not in out and out["Accept"] == "*/*"


def test_upstream_headers_trusted_peer_extends_the_chain() -> None:
    ex = _ex([("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"), ("X-Account", "acme")])
    ex.state["peer_trusted"] = True
    ex.state["strip_headers"] = frozenset(("x-account",))
    out = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    assert out.getall("X-Forwarded-For") == ["1.2.3.4, 10.0.0.9"]
    assert out.getall("X-Forwarded-Proto") == ["https"]
    assert "X-Account" not in out


# --------------------------------------------------------------------------- through the real proxy

BASELINE = {  # identity on, no other filters (the benchmark's case)
    "redaction": {"tiers": {"trusted": "pass", "standard": "pass", "restricted": "pass"}, "default_mode": "pass"},
    "hardening": {"tiers": {"trusted": "off", "standard": "off", "restricted": "off"}, "default_profile": "off"},
}
BODY = {"model": "m-1", "messages": [{"role": "user", "content": "hello"}]}


async def test_cached_upstream_url_keeps_each_requests_query(start_proxy, fake):
    run = await start_proxy(BASELINE)
    url = run.url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {run.key}"}
    async with aiohttp.ClientSession() as s:
        for query in ("", "?trace=1&x=a%20b", "", "?y=2"):
            async with s.post(url + query, json=BODY, headers=auth) as r:
                assert r.status == 200
            sent = fake.requests[-1]
            assert sent.path == "/v1/chat/completions"
            assert sent.query == ({"trace": "1", "x": "a b"} if "trace" in query else {"y": "2"} if query else {})
            assert sent.headers["authorization"] == "Bearer upstream-secret-key-123"  # the upstream's key
    # One cache entry for the path, whichever queries came with it.
    assert len(run.proxy.relay._targets) == 1


async def test_key_in_query_is_read_and_not_forwarded(start_proxy, fake):
    run = await start_proxy(BASELINE)
    async with aiohttp.ClientSession() as s:
        async with s.post(run.url + f"/v1/chat/completions?key={run.key}&keep=1", json=BODY) as r:
            assert r.status == 200
    assert fake.requests[-1].query == {"keep": "1"}


async def test_bearer_fast_path_and_other_credential_headers(start_proxy):
    run = await start_proxy(BASELINE)
    url = run.url + "/v1/chat/completions"
    async with aiohttp.ClientSession() as s:
        for headers, status in (
            ({"Authorization": f"bearer   {run.key}  "}, 200),  # any case, extra spaces
            ({"Authorization": "Bearer  ", "x-api-key": run.key}, 200),  # an empty bearer falls through
            ({"Authorization": f"Basic {run.key}", "api-key": run.key}, 200),  # not a bearer: other headers
            ({"Authorization": f"Bearer{run.key}"}, 401),  # no space: not a bearer token
            ({"Authorization": "Bearer dg-wrong"}, 401),
        ):
            async with s.post(url, json=BODY, headers=headers) as r:
                assert r.status == status, headers


async def test_body_sent_in_pieces_still_read_whole_and_limited(start_proxy):
    run = await start_proxy({**BASELINE, "server": {"max_body_size": 2000}})
    url = run.url + "/v1/chat/completions"
    auth = {"Authorization": f"Bearer {run.key}", "Content-Type": "application/json"}
    body = orjson.dumps(BODY)

    async def pieces(data: bytes):  # chunked upload: the body is not complete with the headers
        for i in range(0, len(data), 7):
            yield data[i:i + 7]
            await asyncio.sleep(0)

    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=pieces(body), headers=auth) as r:
            assert r.status == 200
        big = orjson.dumps({**BODY, "pad": "x" * 3000})
        async with s.post(url, data=pieces(big), headers=auth) as r:
            assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"
        async with s.post(url, data=big, headers=auth) as r:  # complete with the headers: the inlined check
            assert r.status == 413 and (await r.json())["error"]["code"] == "body_too_large"



def test_header_names_in_any_case_are_classified_the_same_and_remembered() -> None:
    ex = _ex([("AUTHORIZATION", "Bearer k"), ("x-API-key", "k"), ("Keep-Alive", "5"), ("X-Trace", "t")])
    first = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    again = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    assert list(first.items()) == list(again.items())
    assert [k for k, _ in first.items()] == ["X-Trace", "X-Forwarded-For", "X-Forwarded-Proto",
                                             "X-Distillguard-Request-Id"]
    up = CIMultiDictProxy(CIMultiDict([("SERVER", "up/1"), ("X-Request-ID", "r9"), ("Transfer-Encoding", "x"),
                                       ("X-DG-Id", "spoofed"), ("Date", "d"), ("X-Other", "o")]))
    out = client_headers(ex, up, "x-dg-id")
    assert out == [("SERVER", "up/1"), ("x-upstream-request-id", "r9"), ("X-Other", "o"), ("x-dg-id", ex.request_id)]


def test_connection_listed_fields_are_dropped_both_ways() -> None:
    ex = _ex([("Connection", "close, X-Hop"), ("X-Hop", "secret"), ("X-Keep", "1")])
    out = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    assert "X-Hop" not in out and "Connection" not in out and out["X-Keep"] == "1"
    up = CIMultiDictProxy(CIMultiDict([("X-Up-Hop", "1"), ("Connection", "x-up-hop"), ("X-Keep", "2"),
                                       ("x-request-id", "r1")]))
    res = client_headers(ex, up)
    assert res == [("X-Keep", "2"), ("x-upstream-request-id", "r1"), ("Server", "distillguard"),
                   ("x-request-id", ex.request_id)]


# --------------------------------------------------------------------------- buffered bodies in pieces

ANSWER = orjson.dumps({"id": "c1", "object": "chat.completion", "model": "m-1",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}})


async def _slow_upstream(pause: float) -> tuple[aiohttp.web.AppRunner, str]:
    """An upstream whose JSON answer arrives in two pieces ``pause`` seconds apart (not complete with
    its headers, so the relay's general buffered path has to wait for it)."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        out = web.StreamResponse(headers={"Content-Type": "application/json"})
        out.content_length = len(ANSWER)
        await out.prepare(request)
        await out.write(ANSWER[:20])
        await asyncio.sleep(pause)
        await out.write(ANSWER[20:])
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def _idle(run, seconds: float) -> None:
    import dataclasses

    spec = run.proxy.upstreams.specs["fake"]
    fast = dataclasses.replace(spec, timeouts=dataclasses.replace(spec.timeouts, idle=seconds))
    run.proxy.upstreams.specs["fake"] = fast
    run.proxy.config = dataclasses.replace(run.proxy.config, upstreams=(fast,))


async def test_buffered_body_arriving_late_is_waited_for_and_its_usage_logged(start_proxy):
    runner, url = await _slow_upstream(0.2)
    try:
        run = await start_proxy(BASELINE, upstream_url=url)
        async with aiohttp.ClientSession() as s, s.post(
                run.url + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status == 200 and await r.read() == ANSWER
        await run.server.stop(drain_timeout=1)
        rec = orjson.loads(run.access_log.read_text().splitlines()[-1])
        assert rec["usage"] == {"input": 7, "output": 3, "reasoning": None} and rec["model"] == "m-1"
    finally:
        await runner.cleanup()


async def test_buffered_body_stalling_past_idle_is_a_504(start_proxy):
    runner, url = await _slow_upstream(3.0)
    try:
        run = await start_proxy(BASELINE, upstream_url=url)
        _idle(run, 0.3)
        async with aiohttp.ClientSession() as s, s.post(
                run.url + "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {run.key}"}) as r:
            assert r.status == 504
            assert (await r.json())["error"]["code"] == "upstream_timeout"
    finally:
        await runner.cleanup()


def test_header_kind_table_is_bounded_and_still_classifies_when_full(monkeypatch) -> None:
    from proxy import headers as H

    table: dict[str, int] = {}
    monkeypatch.setattr(H, "_REQUEST_KINDS", table)
    many = [(f"X-Client-{i}", "v") for i in range(H._MAX_KINDS + 50)]
    ex = _ex([*many, ("Proxy-Authorization", "secret"), ("X-Last", "1")])
    out = upstream_headers(ex, _Spec(), "10.0.0.9", "http", None)  # type: ignore[arg-type]
    assert len(table) == H._MAX_KINDS  # sender-chosen names cannot grow it without bound
    assert "Proxy-Authorization" not in out and out["X-Last"] == "1" and out["X-Client-0"] == "v"
