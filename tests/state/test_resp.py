"""The pipelining RESP client: replies split anywhere, errors, auth and db from the URL, reconnects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis_server import RedisServer

from proxy.state import backend_from_url
from proxy.state.base import OK, gcra
from proxy.state.resp import RespClient, RespConnection, RespError, encode, frame

REPLIES = b"+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*3\r\n$1\r\na\r\n*1\r\n:7\r\n$0\r\n\r\n-ERR boom\r\n"
VALUES = [b"OK", 42, b"hello", None, [b"a", [7], b""], RespError("ERR boom")]


async def test_replies_split_at_every_byte() -> None:
    for cut in range(1, len(REPLIES)):
        conn = RespConnection()
        conn.transport = None
        futs = []
        for _ in VALUES:
            fut = asyncio.get_running_loop().create_future()
            conn.pending.append(fut)
            futs.append(fut)
        conn.data_received(REPLIES[:cut])
        conn.data_received(REPLIES[cut:])
        got = [f.exception() if f.exception() else f.result() for f in futs]
        assert [str(x) if isinstance(x, RespError) else x for x in got] == \
            [str(x) if isinstance(x, RespError) else x for x in VALUES]
        assert not conn.buf


def test_encode() -> None:
    want = b"*4\r\n$3\r\nSET\r\n$2\r\nk\x1f\r\n$3\r\n1.5\r\n$1\r\n\x00\r\n"
    assert encode(("SET", "k\x1f", 1.5, b"\x00")) == want


def test_encode_text_framed_and_non_ascii() -> None:
    """The text path (no bytes argument) and pre-framed arguments give the same bytes as the byte path;
    a non-ASCII argument is framed with its UTF-8 length."""
    args = ("EVALSHA", frame("W"), 12, 0.25, "caf\u00e9", frame("\u00e9t\u00e9"))
    want = (b"*6\r\n$7\r\nEVALSHA\r\n$1\r\nW\r\n$2\r\n12\r\n$4\r\n0.25\r\n$5\r\ncaf\xc3\xa9\r\n"
            b"$5\r\n\xc3\xa9t\xc3\xa9\r\n")
    assert encode(args) == want
    assert encode((*args, b"x")) == want.replace(b"*6", b"*7") + b"$1\r\nx\r\n"  # a bytes argument: byte path


async def test_password_and_db_from_the_url(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra=("--requirepass", "s3cret")).start()
    try:
        c = RespClient(f"redis://:s3cret@127.0.0.1:{server.port}/3")
        assert await c.call("SET", "x", "1") == b"OK"
        assert await c.call("CLIENT", "INFO") is not None
        assert b"db=3" in await c.call("CLIENT", "INFO")
        await c.aclose()
        bad = RespClient(f"redis://:wrong@127.0.0.1:{server.port}/0")
        with pytest.raises(RespError, match=r"WRONGPASS|invalid"):
            await bad.call("PING")
        await bad.aclose()
    finally:
        server.stop()


async def test_reconnects_after_a_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    b = backend_from_url(server.url)
    op = gcra("g", 1.0, 100.0)
    try:
        assert (await b.apply([op], 1e9))[0][OK]
        server.kill()
        with pytest.raises(ConnectionError):
            await b.apply([op], 1e9)
        server.start()
        assert (await b.apply([op], 1e9))[0][OK]  # NOSCRIPT on the fresh server, reloaded
        assert b.client.connects == 2  # type: ignore[attr-defined]
    finally:
        await b.close()
        server.stop()
