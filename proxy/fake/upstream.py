"""A built-in fake reasoning model server (aiohttp) speaking the Chat Completions, Responses, Anthropic
Messages and Gemini wire formats, streaming and not, with reasoning in each API's own form.

Used by ``distillguard demo``, the integration tests and the benchmarks::

    fake = await start_fake_upstream(chunks=50)          # or make_fake_app(**options) for your own runner
    ... point a client / the proxy at fake.url ...
    fake.requests[-1].headers["authorization"]; fake.stats.cancelled; fake.state.roundtrip_checks
    await fake.close()

Standalone: ``python -m proxy.fake.upstream --port 8090``.

Behaviour knobs (constructor options, overridden per request by ``x-fake-*`` headers, see ``Knobs``):
``delay_ms`` (before headers), ``event_delay_ms`` (between stream events), ``chunks`` (reasoning and answer
deltas), ``status`` (answer this HTTP error in the API's own shape), ``fail`` (``reset-before-headers``,
``reset-mid-stream``, ``hang``, ``stall-mid-stream``, ``error-mid-stream``; ``after`` = K events), ``gzip``
(non-stream body), ``strict`` (a tool-loop turn sent back without its reasoning / signature gets
the API's own 400).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip as _gzip
import warnings
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from proxy.fake import chat, gemini, messages, responses
from proxy.fake.content import Turn
from proxy.fake.state import (
    FAKE_KEY,
    FakeState,
    FakeStats,
    Knobs,
    apply_fail_spec,
    error_body,
    knobs_from_headers,
    mid_stream_error,
)

_SSE = "text/event-stream; charset=utf-8"
_JSON = "application/json"
_POLL_S = 0.02


class _ClientGone(Exception):
    pass


class _Reset(Exception):
    pass


def _abort(request: web.BaseRequest) -> None:
    tr = request.transport
    if tr is not None:
        tr.abort()


async def _wait_gone(request: web.BaseRequest, st: FakeState) -> None:
    """Wait (without answering) until the client goes away (raises ``_ClientGone``) or the server closes."""
    while not st.closing:
        tr = request.transport
        if tr is None or tr.is_closing():
            raise _ClientGone
        await asyncio.sleep(_POLL_S)


def _error(api: str, status: int, st: FakeState, message: str | None = None) -> web.Response:
    st.stats.errors += 1
    body, headers = error_body(api, status, message)
    return web.Response(status=status, body=body, headers=headers, content_type=_JSON)


async def _partial(request: web.BaseRequest, body: bytes, knobs: Knobs, st: FakeState) -> None:
    """Non-stream body cut in the middle: announce the full Content-Length, send half, then reset or stall."""
    resp = web.StreamResponse(headers={"Content-Type": _JSON})
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    if knobs.fail == "reset-mid-stream":
        st.stats.resets += 1
        _abort(request)
    else:
        await _wait_gone(request, st)


async def _stream(
    request: web.BaseRequest, events: list[bytes], knobs: Knobs, api: str, ctype: str, st: FakeState
) -> web.StreamResponse | None:
    """Write the events; None when the answer was cut on purpose (reset-mid-stream / stall-mid-stream)."""
    resp = web.StreamResponse(headers={"Content-Type": ctype, "Cache-Control": "no-cache"})
    await resp.prepare(request)
    write = resp.write
    if knobs.plain:
        for e in events:
            await write(e)
    else:
        delay = knobs.event_delay_ms / 1000.0
        fail, after = knobs.fail, knobs.after
        for i, e in enumerate(events):
            if fail and i == after:
                if fail == "reset-mid-stream":
                    st.stats.resets += 1
                    _abort(request)
                    return None
                if fail == "stall-mid-stream":
                    await _wait_gone(request, st)
                    return None
                if fail == "error-mid-stream":
                    await write(mid_stream_error(api, i))
                    break
            if delay and i:
                await asyncio.sleep(delay)
            await write(e)
    await resp.write_eof()
    return resp


async def _serve(
    request: web.Request,
    api: str,
    parse: Callable[[dict[str, Any], FakeState, Knobs], Turn | tuple[int, str]],
    render: Callable[[Turn, FakeState], bytes | list[bytes]],
    ctype: str = _SSE,
) -> web.StreamResponse:
    st = request.app[FAKE_KEY]
    body = await request.read()
    st.record(request, body, api)
    stats = st.stats
    stats.total += 1
    stats.by_api[api] += 1
    stats.in_flight += 1
    try:
        try:
            knobs = knobs_from_headers(st.knobs, request.headers)
        except ValueError as e:
            return _error(api, 400, st, f"Bad x-fake-* header: {e}")
        if not knobs.plain:
            if knobs.delay_ms:
                await asyncio.sleep(knobs.delay_ms / 1000.0)
            if knobs.fail == "reset-before-headers":
                stats.resets += 1
                _abort(request)
                raise _Reset
            if knobs.fail == "hang":
                await _wait_gone(request, st)
                return _error(api, 503, st, "Fake upstream shutting down.")
            if knobs.status:
                return _error(api, knobs.status, st)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(api, 400, st, "We could not parse the JSON body of your request.")
        if not isinstance(payload, dict):
            return _error(api, 400, st, "The request body must be a JSON object.")
        try:
            turn = parse(payload, st, knobs)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
            return _error(api, 400, st, f"Invalid request: {e!r}")
        if isinstance(turn, tuple):
            return _error(api, turn[0], st, turn[1])
        out = st.cached((api, turn), lambda: render(turn, st))
        if isinstance(out, list):
            sresp = await _stream(request, out, knobs, api, ctype, st)
            if sresp is None:
                raise _Reset
            resp: web.StreamResponse = sresp
        elif knobs.fail in ("reset-mid-stream", "stall-mid-stream"):
            await _partial(request, out, knobs, st)
            raise _Reset
        elif knobs.gzip:
            resp = web.Response(
                body=_gzip.compress(out, 1), headers={"Content-Encoding": "gzip"}, content_type=_JSON
            )
        else:
            resp = web.Response(body=out, content_type=_JSON)
        stats.completed += 1
        return resp
    except (asyncio.CancelledError, _ClientGone, ConnectionError):
        stats.cancelled += 1
        raise
    finally:
        stats.in_flight -= 1


async def _chat(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "chat", chat.parse, chat.render)


async def _responses(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "responses", responses.parse, responses.render)


async def _messages(request: web.Request) -> web.StreamResponse:
    return await _serve(request, "anthropic", messages.parse, messages.render)


async def _gemini(request: web.Request) -> web.StreamResponse:
    model, _, action = request.match_info["target"].partition(":")
    if action not in ("generateContent", "streamGenerateContent"):
        return _error("gemini", 404, request.app[FAKE_KEY], f"Unknown method {action!r}.")
    stream = action == "streamGenerateContent"
    sse = request.query.get("alt") == "sse"

    def parse(payload: dict[str, Any], st: FakeState, knobs: Knobs) -> Turn | tuple[int, str]:
        return gemini.parse(payload, st, knobs, model, stream, sse)

    return await _serve(
        request,
        "gemini",
        parse,
        gemini.render,
        "text/event-stream" if sse else "application/json; charset=UTF-8",
    )


@web.middleware
async def _quiet(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn ``_ClientGone`` / ``_Reset`` / aborted writes into a silent end instead of a logged 500."""
    try:
        return await handler(request)
    except (_ClientGone, _Reset, ConnectionError):
        resp = web.Response(status=499)
        resp.force_close()
        return resp


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "stats": request.app[FAKE_KEY].stats.as_dict()})


def make_fake_app(
    *,
    delay_ms: float = 0,
    event_delay_ms: float = 0,
    chunks: int | None = None,
    status: int = 0,
    fail: str = "",
    after: int = 2,
    gzip: bool = False,
    strict: bool = False,
    max_recorded: int = 1000,
) -> web.Application:
    """The fake upstream as an aiohttp application. State: ``app[FAKE_KEY]`` (also ``app["fake"]``)."""
    knobs = Knobs(
        delay_ms=delay_ms,
        event_delay_ms=event_delay_ms,
        chunks=chunks,
        status=status,
        after=after,
        gzip=gzip,
        strict=strict,
    )
    if fail:
        knobs = apply_fail_spec(knobs, fail)
    state = FakeState(max_recorded=max_recorded, knobs=knobs)
    app = web.Application(middlewares=[_quiet], client_max_size=64 * 1024 * 1024)
    app[FAKE_KEY] = state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app["fake"] = state  # convenience alias for tests

    async def _on_shutdown(_app: web.Application) -> None:
        state.closing = True

    app.on_shutdown.append(_on_shutdown)
    for prefix in ("/v1", ""):
        app.router.add_post(prefix + "/chat/completions", _chat)
        app.router.add_post(prefix + "/responses", _responses)
        app.router.add_post(prefix + "/messages", _messages)
    app.router.add_post("/v1beta/models/{target}", _gemini)
    app.router.add_post("/v1/models/{target}", _gemini)
    app.router.add_get("/healthz", _health)
    return app


class FakeUpstream:
    """A running fake upstream (see ``start_fake_upstream``)."""

    def __init__(self, app: web.Application, runner: web.AppRunner, host: str, port: int) -> None:
        self.app = app
        self.runner = runner
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    @property
    def state(self) -> FakeState:
        return self.app[FAKE_KEY]

    @property
    def requests(self) -> Any:
        return self.state.requests

    @property
    def stats(self) -> FakeStats:
        return self.state.stats

    @property
    def roundtrip_checks(self) -> list[Any]:
        return self.state.roundtrip_checks

    async def close(self) -> None:
        self.state.closing = True
        await self.runner.cleanup()

    async def __aenter__(self) -> FakeUpstream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_fake_upstream(host: str = "127.0.0.1", port: int = 0, **options: Any) -> FakeUpstream:
    """Start the fake upstream on ``host:port`` (0 = a free port); ``options`` go to ``make_fake_app``."""
    app = make_fake_app(**options)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = runner.addresses[0][1]
    return FakeUpstream(app, runner, host, actual)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m proxy.fake.upstream", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--delay-ms", type=float, default=0)
    ap.add_argument("--event-delay-ms", type=float, default=0)
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--fail", default="")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args(argv)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = make_fake_app(
        delay_ms=a.delay_ms, event_delay_ms=a.event_delay_ms, chunks=a.chunks, fail=a.fail, strict=a.strict
    )
    web.run_app(
        app,
        host=a.host,
        port=a.port,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=0.5,
        loop=loop,
    )


if __name__ == "__main__":
    main()
