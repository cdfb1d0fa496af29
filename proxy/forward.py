"""The one module that talks to upstreams: pooled sessions and body and stream relay (headers: ``headers.py``).

Streams are relayed as they arrive: each upstream chunk is framed into events, passed through the
filters' ``on_event`` hooks, and written at once; events no filter changed go out as their original
bytes. Errors before the response started become a local reply in the caller's dialect (502/504);
errors after it started end the stream with the dialect's own error event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from proxy import errors
from proxy.deadlines import HeaderDeadlines, IdleWatch
from proxy.errors import ProxyError, Reply
from proxy.exchange import Event, Exchange
from proxy.headers import auth_header, client_headers, upstream_headers
from proxy.sse import EventCutter, Framer, SSEFramer, parse_block

if TYPE_CHECKING:
    from proxy.config import UpstreamSpec
    from proxy.pipeline import Chain

log = logging.getLogger("distillguard.forward")

# What the events that carry token usage hold: the key "usage" (Gemini: "usageMetadata"). Only events or
# reads holding it are parsed for usage. ("sage", tried before, also matched every "message".)
USAGE_KEY = b"usage"


class Upstreams:
    """One pooled ``aiohttp.ClientSession`` per upstream, opened at start and closed at stop."""

    def __init__(self, specs: Any) -> None:
        self.specs = {s.name: s for s in specs}
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        for name, spec in self.specs.items():
            t = spec.timeouts
            connector = aiohttp.TCPConnector(
                limit=spec.max_connections, limit_per_host=0, ttl_dns_cache=300, enable_cleanup_closed=True,
            )
            self.sessions[name] = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, connect=t.connect, sock_connect=t.connect),
                auto_decompress=True,
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                cookie_jar=aiohttp.DummyCookieJar(),
            )

    async def stop(self) -> None:
        for s in self.sessions.values():
            await s.close()
        self.sessions.clear()

    async def probe(self, name: str, timeout: float = 2.0) -> bool:
        """Readiness: can a TCP connection to the upstream be opened?"""
        spec = self.specs[name]
        url = aiohttp.client.URL(spec.url)
        host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return True
        except (OSError, TimeoutError):
            return False


async def send_reply(
    ex: Exchange, request: web.Request, reply: Reply, chain: Chain, rid_header: str = "x-request-id"
) -> web.StreamResponse:
    """Send a local reply (after the ``on_reply`` hooks decorated it)."""
    chain.run_reply(ex, reply)
    ex.status = reply.status
    if reply.code:
        ex.error_code = reply.code
    headers = dict(reply.headers)
    headers.pop("x-request-id", None)
    headers[rid_header] = ex.request_id
    headers.setdefault("Server", "distillguard")
    for k, v in ex.reply_headers.items():
        headers.setdefault(k, v)
    resp = web.Response(status=reply.status, body=reply.body, headers=headers)
    ex.bytes_out += len(reply.body)
    return resp


class Relay:
    """Forwards one exchange upstream and relays the answer back through the chain."""

    def __init__(self, upstreams: Upstreams, chain: Chain, clock_mono: Any, rid_header: str = "x-request-id") -> None:
        self.rid_header = rid_header
        self.upstreams = upstreams
        self.chain = chain
        self.mono = clock_mono
        # (upstream, dialect, upstream path) -> (spec, header carrying the upstream key, URL without query)
        self._targets: dict[tuple[str, str | None, str], tuple[Any, tuple[str, str] | None, URL]] = {}
        self._waiting: HeaderDeadlines | None = None

    def start(self) -> None:
        """Bind to the running loop (``asyncio.get_running_loop()`` makes a ``getpid`` system call each
        time: once at start instead of twice per request)."""
        self._waiting = HeaderDeadlines(asyncio.get_running_loop())

    def stop(self) -> None:
        if self._waiting is not None:
            self._waiting.close()
        self._waiting = None

    async def __call__(self, ex: Exchange, request: web.Request) -> web.StreamResponse:
        spec = ex.route
        assert spec is not None
        session = self.upstreams.sessions[spec.name]
        dialect_name = ex.dialect.name if ex.dialect is not None else None
        key = (spec.name, dialect_name, ex.upstream_path)
        hit = self._targets.get(key)
        if hit is None or hit[0] is not spec:
            # (the URL parsed here as aiohttp would parse the string: a URL object it takes as is)
            hit = (spec, auth_header(spec, dialect_name), URL(spec.target(ex.upstream_path)))
            if len(self._targets) >= 1024:  # paths are client-chosen: bound the cache
                self._targets.clear()
            self._targets[key] = hit
        auth = hit[1]
        url: URL | str = spec.target(ex.upstream_path, ex.query) if ex.query else hit[2]
        headers = upstream_headers(ex, spec, ex.peer_ip, request.scheme, auth)
        body = ex.outgoing_body() if ex.body_changed else ex.body
        t = spec.timeouts
        ex.t_upstream = self.mono()
        # Deadline for the response headers: an entry that cancels this task when due (cheaper than a
        # timeout context, a loop timer or a wheel entry); it is gone once it fired, which tells its
        # cancellation apart from a client disconnect.
        waiting = self._waiting
        if waiting is None:  # (not started: a relay driven without the app, as in some tests)
            waiting = self._waiting = HeaderDeadlines(asyncio.get_running_loop())
        task = asyncio.current_task(waiting.loop)
        assert task is not None
        waiting.arm(task, t.connect + t.first_byte)
        try:
            resp = await session.request(
                ex.method, url, headers=headers, data=body if body else None,
                allow_redirects=False, compress=None,
            )
        except asyncio.CancelledError as e:
            if waiting.disarm(task):
                raise  # not the deadline: the client went away or the server is stopping
            task.uncancel()
            log.warning("upstream %s timed out before responding (%s)", spec.name, ex.request_id)
            raise ProxyError(errors.UPSTREAM_TIMEOUT, f"upstream '{spec.name}' did not answer in time") from e
        except (aiohttp.ClientError, OSError) as e:
            log.warning("upstream %s unavailable: %s (%s)", spec.name, type(e).__name__, ex.request_id)
            raise ProxyError(
                errors.UPSTREAM_UNAVAILABLE, f"upstream '{spec.name}' is unavailable ({type(e).__name__})"
            ) from e
        finally:
            waiting.disarm(task)
        body = b""
        ex.t_headers = self.mono()
        try:
            # Dispatch here rather than in a helper coroutine: every suspended coroutine level is a
            # frame held for the whole life of a stream (memory per open stream).
            ex.status = resp.status
            ex.response_headers = resp.headers  # type: ignore[assignment]
            ctype = resp.headers.get("Content-Type", "")
            dialect = ex.dialect
            framer: Framer | None = None
            ok = 200 <= resp.status < 300
            if dialect is not None and ok:
                framer = dialect.framer(ex, ctype)
            ex.streaming = framer is not None
            chain = self.chain
            if (framer is not None or not ok or dialect is None or "json" not in ctype or chain.response
                    or chain.response_headers):
                # The request is sent: do not hold its bytes and parsed body for the life of a long
                # stream. (Kept only for a buffered answer no hook looks at, which is short-lived: the
                # log line then reads the model from the parsed body, cheaper than releasing it.)
                ex.release_request()
            if chain.response_headers:
                reply = await self.chain.run_response_headers(ex)
                if reply is not None:
                    return await send_reply(ex, request, reply, self.chain, self.rid_header)
            if framer is not None:
                return await self._relay_stream(ex, request, resp, spec, framer)
            if dialect is not None and ok and "json" in ctype:
                if not chain.response and resp.content.is_eof():
                    # The usual answer: complete with its headers and no hook to show it to. Read here
                    # rather than in ``_relay_buffered``: one coroutine less per request.
                    try:
                        raw = await resp.read()
                    except (aiohttp.ClientError, OSError) as e:
                        raise ProxyError(errors.UPSTREAM_UNAVAILABLE,
                                         f"upstream '{spec.name}' broke off the body") from e
                    return self._usage_later(ex, resp, raw)
                return await self._relay_buffered(ex, request, resp, spec)
            return await self._relay_raw(ex, request, resp, spec)
        finally:
            if not resp.closed:  # (a body read to its end has already released the connection)
                resp.close()

    async def _relay_buffered(
        self, ex: Exchange, request: web.Request, resp: aiohttp.ClientResponse, spec: UpstreamSpec
    ) -> web.StreamResponse:
        # A small body usually came with the headers: then there is nothing to wait for and no deadline.
        watch = None if resp.content.is_eof() else IdleWatch(resp, spec.timeouts.idle)
        try:
            raw = await resp.read()
        except (aiohttp.ClientError, OSError) as e:
            if watch is not None and watch.fired:
                raise ProxyError(errors.UPSTREAM_TIMEOUT, f"upstream '{spec.name}' stalled mid-body") from e
            raise ProxyError(errors.UPSTREAM_UNAVAILABLE, f"upstream '{spec.name}' broke off the body") from e
        finally:
            if watch is not None:
                watch.cancel()
        chain = self.chain
        if not chain.response:
            return self._usage_later(ex, resp, raw)
        ex.t_first_byte = self.mono()
        body = raw
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if obj is not None:
            usage = ex.dialect.usage(obj) if ex.dialect is not None else None
            if usage is not None:
                ex.usage.merge(usage)
            if self.chain.response:
                new = self.chain.run_response(ex, obj)  # may raise: the app answers 500, fail closed
                if new is not obj or ex.response_changed:
                    body = orjson.dumps(new)
        elif self.chain.response:
            # A filter that rewrites bodies cannot vouch for bytes it could not read: fail closed.
            raise ProxyError(errors.UPSTREAM_STREAM_ERROR, "upstream sent a body that is not valid JSON")
        headers = client_headers(ex, resp.headers, self.rid_header)
        out = web.Response(status=resp.status, body=body, headers=headers)
        ex.bytes_out += len(body)
        return out

    def _usage_later(self, ex: Exchange, resp: aiohttp.ClientResponse, raw: bytes) -> web.Response:
        """The answer for a buffered body no hook can look at before it is sent: the bytes as they came;
        the app reads the usage after sending it (``read_body_usage``), off the client's wait."""
        ex.t_first_byte = self.mono()
        ex.usage_body = raw
        ex.bytes_out += len(raw)
        return web.Response(status=resp.status, body=raw, headers=client_headers(ex, resp.headers, self.rid_header))

    async def _relay_raw(
        self, ex: Exchange, request: web.Request, resp: aiohttp.ClientResponse, spec: UpstreamSpec
    ) -> web.StreamResponse:
        """Unrecognised paths and upstream errors: relay bytes untouched, chunk by chunk."""
        out = web.StreamResponse(status=resp.status, headers=client_headers(ex, resp.headers, self.rid_header))
        await out.prepare(request)
        watch = IdleWatch(resp, spec.timeouts.idle, request, ex)
        read = resp.content.readany
        first = True
        try:
            while True:
                watch.touch()
                try:
                    chunk = await read()
                except (aiohttp.ClientError, OSError) as e:
                    ex.error_code = errors.UPSTREAM_TIMEOUT if watch.fired else errors.UPSTREAM_STREAM_ERROR
                    log.warning("upstream %s broke off a raw body: %s (%s)", spec.name,
                                "idle timeout" if watch.fired else type(e).__name__, ex.request_id)
                    # The status is already sent: the only signal left is an abrupt end of the body.
                    _abort(request)
                    return out
                if not chunk:
                    break
                if first:
                    ex.t_first_byte = self.mono()
                    first = False
                ex.bytes_out += len(chunk)
                await out.write(chunk)
            await out.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            ex.client_gone = True
        finally:
            watch.cancel()
        return out

    async def _relay_stream(
        self, ex: Exchange, request: web.Request, resp: aiohttp.ClientResponse, spec: UpstreamSpec,
        framer: Framer,
    ) -> web.StreamResponse:
        chain = self.chain
        dialect = ex.dialect
        assert dialect is not None
        out = web.StreamResponse(status=resp.status, headers=client_headers(ex, resp.headers, self.rid_header))
        await out.prepare(request)
        has_event_hooks = chain.events_for(ex)
        # Read mode: the one filter that needs this stream's events takes whole reads (cut at event
        # boundaries) and returns the bytes to send, or None to have this read framed as usual.
        read_hook = chain.read_hook_for(ex) if has_event_hooks else None
        usage_of = dialect.usage
        shaping = ex.state.get("shape")  # output pacing and token budgets (proxy.filters.shape)
        watch = IdleWatch(resp, spec.timeouts.idle, request, ex)
        read = resp.content.readany
        encode = framer.encode
        first = True
        # Plain mode: no filter transforms events, so complete events go out as the very bytes that
        # came in, cut only at event boundaries (a partial event is never sent, so an error event can
        # still end the stream cleanly); only events that carry usage are parsed. Falls back to framed
        # mode for mixed line endings (``EventCutter.off``), as does read mode.
        cutter = (
            EventCutter(framer)
            if isinstance(framer, SSEFramer) and (not has_event_hooks or read_hook is not None)
            else None
        )
        try:
            while True:
                watch.touch()
                try:
                    chunk = await read()
                except (aiohttp.ClientError, OSError) as e:
                    if watch.fired:
                        await self._end_with_error(ex, out, framer, errors.UPSTREAM_TIMEOUT,
                                                   "upstream stalled mid-stream")
                    else:
                        await self._end_with_error(ex, out, framer, errors.UPSTREAM_STREAM_ERROR,
                                                   f"upstream stream broke off ({type(e).__name__})")
                    return out
                if not chunk:
                    break
                if cutter is not None:
                    data = cutter.cut(chunk)
                    if cutter.off:
                        cutter = None
                        chunk = data  # what was held and this read: framed from now on
                    elif not data:
                        continue
                    else:
                        sep: bytes = cutter.sep  # type: ignore[assignment]
                        sent: bytes | None = data
                        if read_hook is not None:
                            try:
                                sent = read_hook(ex, data, sep, framer)
                            except Exception:
                                log.exception("stream filter failed on a read; ending the stream closed (%s)",
                                              ex.request_id)
                                await self._end_with_error(ex, out, framer, errors.REDACTION_FAILED,
                                                           "the proxy could not process this stream")
                                return out
                        if sent is None:
                            chunk = data  # the filter asked for this read to be framed
                        else:
                            if read_hook is None:  # (a read hook counted the events and their usage itself)
                                if USAGE_KEY in data:
                                    _merge_cut_usage(ex, usage_of, data, sep, framer)
                                n = data.count(sep)
                                ex.events_in += n
                                ex.events_out += n
                            if not sent:
                                continue
                            ex.bytes_out += len(sent)
                            if first:
                                ex.t_first_byte = self.mono()
                                first = False
                            await out.write(sent)
                            continue
                events = framer.feed(chunk)
                if not events:
                    continue
                ex.events_in += len(events)
                _merge_usage(ex, usage_of, events)
                if has_event_hooks:
                    try:
                        events = chain.run_events(ex, events)
                    except Exception:
                        log.exception("stream filter failed; ending the stream closed (%s)", ex.request_id)
                        await self._end_with_error(ex, out, framer, errors.REDACTION_FAILED,
                                                   "the proxy could not process this stream")
                        return out
                    if not events:
                        continue
                data = b"".join([encode(ev) for ev in events]) if len(events) > 1 else encode(events[0])
                if first:
                    ex.t_first_byte = self.mono()
                    first = False
                if shaping is not None and shaping.paced:
                    await shaping.pace()
                ex.events_out += len(events)
                ex.bytes_out += len(data)
                events = []  # hold nothing while waiting for the next chunk
                await out.write(data)
                if shaping is not None and shaping.cut:
                    # The batch already ends with the dialect's error event: stop reading upstream.
                    tail_bytes = framer.epilogue()
                    if tail_bytes:
                        await out.write(tail_bytes)
                    await out.write_eof()
                    return out
            held = cutter.held if cutter is not None else b""
            if held and read_hook is None:
                # The stream ended on an event without its blank line: send it as it came.
                _merge_usage(ex, usage_of, framer.feed(held) + framer.close())
                ex.events_in += 1
                ex.events_out += 1
                ex.bytes_out += len(held)
                await out.write(held)
            # (read mode: the last event, without its blank line, goes through the filters)
            tail = framer.feed(held) if held and read_hook is not None else []
            tail += framer.close()
            try:
                if tail:
                    ex.events_in += len(tail)
                    _merge_usage(ex, usage_of, tail)
                    if has_event_hooks:
                        tail = chain.run_events(ex, tail)
                if chain.end:
                    tail = tail + chain.run_end(ex)
            except Exception:
                log.exception("stream filter failed at end of stream (%s)", ex.request_id)
                await self._end_with_error(ex, out, framer, errors.REDACTION_FAILED,
                                           "the proxy could not process this stream")
                return out
            data = b"".join([framer.encode(ev) for ev in tail]) + framer.epilogue()
            if data:
                if first:
                    ex.t_first_byte = self.mono()
                ex.events_out += len(tail)
                ex.bytes_out += len(data)
                await out.write(data)
            await out.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            # The client went away mid-stream: nothing to answer; the upstream response is closed by
            # the caller, which cancels the generation upstream.
            ex.client_gone = True
        finally:
            watch.cancel()
        return out

    async def _end_with_error(
        self, ex: Exchange, out: web.StreamResponse, framer: Framer, code: str, message: str
    ) -> None:
        ex.error_code = code
        dialect = ex.dialect
        assert dialect is not None
        events: list[Event] = dialect.stream_error_events(code, message, ex.request_id, ex)
        data = b"".join([framer.encode(ev) for ev in events]) + framer.epilogue()
        try:
            await out.write(data)
            await out.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            ex.client_gone = True


def _merge_usage(ex: Exchange, usage_of: Any, events: list[Event]) -> None:
    """Merge the usage of the events that carry some (``USAGE_KEY``: only those are parsed)."""
    for ev in events:
        if USAGE_KEY in ev.data:
            u = usage_of(ev.obj)
            if u is not None:
                ex.usage.merge(u)


def _merge_cut_usage(ex: Exchange, usage_of: Any, data: bytes, sep: bytes, framer: Framer) -> None:
    """``_merge_usage`` for complete events cut by ``EventCutter``. LF streams: only the blocks that hold
    ``USAGE_KEY`` are parsed (the framer cuts them at the same separators); CRLF ones are framed whole."""
    if sep != b"\n\n":
        _merge_usage(ex, usage_of, framer.feed(data))
        return
    i = data.find(USAGE_KEY)
    while i >= 0:
        start = data.rfind(sep, 0, i)
        start = 0 if start < 0 else start + 2
        end = data.find(sep, i)
        block = data[start:end]
        _merge_usage(ex, usage_of, [parse_block(block, block)])
        i = data.find(USAGE_KEY, end)


def read_body_usage(ex: Exchange) -> None:
    """Merge the usage of a buffered body the relay left in ``ex.usage_body`` (see ``_relay_buffered``)."""
    raw, ex.usage_body = ex.usage_body, None
    if not raw or ex.dialect is None:
        return
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    usage = ex.dialect.usage(obj)
    if usage is not None:
        ex.usage.merge(usage)


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
