"""A lean, auto-pipelining Redis (RESP2) client for the state hot path.

Why not ``redis.asyncio`` for every call: it checks a connection out of a pool per command and costs
~100 µs of CPU per EVALSHA in this process, a fifth of a whole proxied request. Here one connection
carries every concurrent request's command: writes made in the same event-loop turn are coalesced
into one ``write`` and replies are matched to callers in order (Redis answers in order). That costs
~10-20 µs per call and keeps one TCP connection per process (``connections`` > 1 spreads calls
round-robin). redis-py still parses the URL (``redis://``, ``rediss://`` with TLS, ``unix://``,
user, password, db), so every URL form it accepts works here too.

Failure handling is the caller's (``proxy.state.faults``): a lost connection fails every pending
call with ``ConnectionError`` and the next call reconnects; a caller that gives up (timeout) leaves
its reply to be discarded when it arrives, and a connection with no reply for ``stall`` seconds while
calls are pending is dropped (a hung server must not pile up waiters).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any


class RespError(Exception):
    """An error reply (``-ERR ...``, ``-NOSCRIPT ...``)."""


class Framed(str):
    """One argument already in its RESP form (``$len\\r\\nvalue\\r\\n``, see ``frame``): ``encode``
    copies it as is. For the arguments that are the same in every call (op letters, a rule's static
    window fields), so each call frames only what changes."""

    __slots__ = ()


def frame(value: str | bytes) -> Framed:
    text = value.decode() if isinstance(value, bytes) else value
    return Framed(f"${len(text.encode())}\r\n{text}\r\n")


def encode(args: tuple[Any, ...] | list[Any]) -> bytes:
    """One command in RESP. Built as text and encoded once (the hot path's arguments are str, ints,
    floats and ``Framed``); a bytes argument switches to the byte-wise form."""
    out = [f"*{len(args)}\r\n"]
    ap = out.append
    for a in args:
        t = type(a)
        if t is Framed:
            ap(a)
        elif t is str:
            ap(f"${len(a) if a.isascii() else len(a.encode())}\r\n{a}\r\n")
        elif t is int or t is float:
            a = str(a)
            ap(f"${len(a)}\r\n{a}\r\n")
        else:
            return _encode_bytes(args)
    return "".join(out).encode()


def _encode_bytes(args: tuple[Any, ...] | list[Any]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if type(a) is Framed:
            out.append(a.encode())
            continue
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


_INCOMPLETE: Any = object()


def _parse(buf: bytearray, pos: int) -> tuple[Any, int]:
    """One reply from ``buf`` at ``pos``: (value, next position) or (_INCOMPLETE, pos)."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, pos
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        n = int(buf[pos + 1:end])
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if len(buf) < stop + 2:
            return _INCOMPLETE, pos
        return bytes(buf[end + 2:stop]), stop + 2
    if kind == 42:  # * array
        n = int(buf[pos + 1:end])
        if n < 0:
            return None, end + 2
        items = []
        p = end + 2
        for _ in range(n):
            v, p = _parse(buf, p)
            if v is _INCOMPLETE:
                return _INCOMPLETE, pos
            items.append(v)
        return items, p
    if kind == 43:  # + simple string
        return bytes(buf[pos + 1:end]), end + 2
    if kind == 58:  # : integer
        return int(buf[pos + 1:end]), end + 2
    if kind == 45:  # - error
        return RespError(buf[pos + 1:end].decode(errors="replace")), end + 2
    raise ConnectionError(f"unexpected RESP reply type {chr(kind)!r}")


class RespConnection(asyncio.Protocol):
    """One connection: ``call`` queues a command and returns a future for its reply."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.closed = False
        self.last_rx = time.monotonic()
        self.sent = 0  # commands written
        self.writes = 0  # write() calls (several commands coalesce into one)
        self._loop = asyncio.get_running_loop()

    # -- asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        buf = self.buf
        buf += data
        pos = 0
        pending = self.pending
        try:
            while pos < len(buf):
                value, nxt = _parse(buf, pos)
                if value is _INCOMPLETE:
                    break
                pos = nxt
                if not pending:
                    raise ConnectionError("reply without a request")
                fut = pending.popleft()
                if not fut.done():
                    if type(value) is RespError:
                        fut.set_exception(value)
                    else:
                        fut.set_result(value)
        except (ValueError, ConnectionError) as e:
            self._fail(ConnectionError(f"redis protocol error: {e}"))
            return
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"redis connection lost: {exc}" if exc else "redis connection closed"))

    # -- calls ------------------------------------------------------------------------------------

    def call(self, payload: bytes) -> asyncio.Future[Any]:
        if self.closed or self.transport is None:
            raise ConnectionError("redis connection closed")
        fut = self._loop.create_future()
        self.pending.append(fut)
        if not self.out:
            self._loop.call_soon(self._flush)
        self.out.append(payload)
        self.sent += 1
        return fut

    def _flush(self) -> None:
        out, self.out = self.out, []
        if out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])
            self.writes += 1

    def stalled(self, stall: float) -> bool:
        return bool(self.pending) and time.monotonic() - self.last_rx > stall

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self._fail(ConnectionError("redis connection closed"))

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: a caller that already gave up must not log it


class RespClient:
    """Connects lazily (and again after a loss) to the server named by a redis URL."""

    def __init__(
        self, url: str, *, connect_timeout: float = 1.0, stall: float = 1.0, connections: int = 1
    ) -> None:
        from redis.connection import SSLConnection, parse_url

        opts = parse_url(url)
        self.url = url
        self.path: str | None = opts.get("path")
        self.host: str = opts.get("host", "localhost")
        self.port: int = int(opts.get("port", 6379))
        self.db = int(opts.get("db", 0) or 0)
        self.username: str | None = opts.get("username")
        self.password: str | None = opts.get("password")
        self.ssl: ssl.SSLContext | None = None
        if opts.get("connection_class") is SSLConnection:
            ctx = ssl.create_default_context()
            if opts.get("ssl_cert_reqs") in ("none", "optional"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.ssl = ctx
        self.connect_timeout = connect_timeout
        self.stall = stall
        self.size = max(1, connections)
        self._conns: list[RespConnection | None] = [None] * self.size
        self._connecting: list[asyncio.Task[RespConnection] | None] = [None] * self.size
        self._next = 0
        self.sent_total = 0  # commands sent on connections that are gone (see ``sent``)
        self.connects = 0

    @property
    def sent(self) -> int:
        """Commands sent so far (each one request, one reply: a round trip for its caller)."""
        return self.sent_total + sum(c.sent for c in self._conns if c is not None)

    async def call(self, *args: Any) -> Any:
        i = self._next
        self._next = (i + 1) % self.size
        conn = self._conns[i]
        if conn is None or conn.closed:
            conn = await self._connect(i)
        try:
            return await conn.call(encode(args))
        except asyncio.CancelledError:
            if conn.stalled(self.stall):
                self._drop(i, conn)
            raise

    def _drop(self, i: int, conn: RespConnection) -> None:
        if self._conns[i] is conn:
            self._conns[i] = None
            self.sent_total += conn.sent
        conn.close()

    async def _connect(self, i: int) -> RespConnection:
        # One connect per slot at a time, shared by every caller; it completes (and is installed)
        # even if the caller that started it gives up, so no connection is ever orphaned.
        task = self._connecting[i]
        if task is None:
            task = asyncio.ensure_future(self._open())
            self._connecting[i] = task

            def installed(t: asyncio.Task[RespConnection]) -> None:
                self._connecting[i] = None
                if not t.cancelled() and t.exception() is None:
                    old = self._conns[i]
                    if old is not None:
                        self.sent_total += old.sent
                    self._conns[i] = t.result()

            task.add_done_callback(installed)
        return await asyncio.shield(task)

    async def _open(self) -> RespConnection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            if self.path:
                _, proto = await loop.create_unix_connection(RespConnection, self.path)
            else:
                _, proto = await loop.create_connection(RespConnection, self.host, self.port, ssl=self.ssl)
            conn: RespConnection = proto
            try:
                hello = []
                if self.password:
                    user = (self.username,) if self.username else ()
                    auth = ("AUTH", *user, self.password)
                    hello.append(conn.call(encode(auth)))
                if self.db:
                    hello.append(conn.call(encode(("SELECT", self.db))))
                for fut in hello:
                    await fut
            except BaseException:
                conn.close()
                raise
        self.connects += 1
        return conn

    async def aclose(self) -> None:
        for i, c in enumerate(self._conns):
            if c is not None:
                self._drop(i, c)
