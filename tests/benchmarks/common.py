"""Helpers shared by the proxy benchmarks: server processes, /proc readings, wrk, a fast upstream and a
thin pass-through proxy.

Every server runs in its own process so each one's CPU time and memory can be read from /proc. Two of
them live here and are started as ``python common.py upstream|thin ...``:

``upstream``
    A raw asyncio ``Protocol`` on uvloop, fast enough never to be the bottleneck. ``POST`` bodies without
    ``"stream": true`` get a fixed ~1 KB Chat Completions body. Streamed requests get Chat Completions
    chunks as SSE: the first at once, then one every ``interval`` seconds (query ``?events=N&interval=S``),
    a usage chunk and ``[DONE]``. Any other request gets the JSON body too (readiness probes).
``thin``
    The reference a proxy is compared with: an aiohttp server that reads the request, forwards it on a
    pooled ``ClientSession`` and relays the answer chunk by chunk, dropping only hop-by-hop headers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

import orjson

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one (5 000 streams need ~10 000 sockets in a proxy)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- /proc readings


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kb(pid: int) -> int:
    """Resident set size (VmRSS) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# --------------------------------------------------------------------------- server processes


def owns_listener(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port`` (not some other
    process that took the port first)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and int(f[1].split(":")[1], 16) == port:  # 0A: LISTEN
            inodes.add(f[9])
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


@dataclass
class ServerProc:
    """A server in a child process, listening on ``127.0.0.1:port``."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_kb(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(
    name: str, argv: list[str], port: int, *, log: Path | None = None, probe: str = "/healthz",
    timeout: float = 30.0,
) -> ServerProc:
    """Start ``argv`` (which must listen on ``port``) and wait until ``GET probe`` answers."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        preexec_fn=raise_nofile, cwd=str(HERE),
    )
    if log is not None:
        out.close()  # type: ignore[union-attr]
    sp = ServerProc(name, port, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"{name} exited with {proc.returncode} before answering\n{tail}")
        try:
            with urllib.request.urlopen(f"{sp.url}{probe}", timeout=2) as r:
                r.read()
            if owns_listener(proc.pid, port):
                return sp
            # Another process answered on that port: ours will fail to bind and exit (checked above).
        except OSError:
            pass
        if time.monotonic() > deadline:
            sp.stop()
            raise RuntimeError(f"{name} did not answer on port {port} within {timeout:.0f}s")
        time.sleep(0.05)


def start_on_free_port(
    name: str, argv_for: Callable[[int], list[str]], *, log: Path | None = None, attempts: int = 3
) -> ServerProc:
    """``start_server`` on a fresh free port, retried: another process may take the port between the
    probe for a free one and the child's bind (other benchmarks run on the same box)."""
    for attempt in range(attempts):
        port = free_port()
        try:
            return start_server(name, argv_for(port), port, log=log)
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def start_upstream(log: Path | None = None) -> ServerProc:
    return start_on_free_port(
        "upstream", lambda port: [sys.executable, str(HERE / "common.py"), "upstream", "--port", str(port)],
        log=log)


def start_thin(upstream_url: str, log: Path | None = None) -> ServerProc:
    return start_on_free_port("thin", lambda port: [
        sys.executable, str(HERE / "common.py"), "thin", "--port", str(port), "--upstream", upstream_url],
        log=log)


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx: int = 0
    socket_errors: int = 0
    latency_ms: dict[str, float] = field(default_factory=dict)  # "50", "75", "90", "99" -> ms


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(f"unexpected wrk time {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None or rps is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out}")
    res = WrkResult(int(m.group(1)), _ms(m.group(2) + m.group(3)) / 1e3, float(rps.group(1)))
    if (n := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) is not None:
        res.non_2xx = int(n.group(1))
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if s is not None:
        res.socket_errors = sum(int(x) for x in s.groups())
    for pct, val in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M):
        res.latency_ms[pct] = _ms(val)
    return res


def wrk_script(path: Path, body: bytes, headers: dict[str, str]) -> Path:
    """A Lua script making wrk send ``POST body`` with ``headers``."""
    text = body.decode()
    assert "]==]" not in text
    lines = ['wrk.method = "POST"', f"wrk.body = [==[{text}]==]"]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_wrk(
    url: str, script: Path, *, connections: int, seconds: int, threads: int = 1, latency: bool = False,
) -> WrkResult:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
    if latency:
        argv.append("--latency")
    p = subprocess.run([*argv, url], capture_output=True, text=True, timeout=seconds + 30, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr or p.stdout}")
    return parse_wrk(p.stdout)


# --------------------------------------------------------------------------- request and answer shapes

MODEL = "bench-model-1"


def chat_request(stream: bool = False) -> bytes:
    """A ~1 KB Chat Completions request."""
    text = ("Summarise the following maintenance log in two sentences and list any open actions. " * 11)[:900]
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": text},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def chat_answer() -> bytes:
    """A ~1 KB Chat Completions answer."""
    sentence = "The pump on line 3 was replaced and tested; pressure readings are back within range. "
    content = (sentence * 9)[:800]
    return orjson.dumps({
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 212, "completion_tokens": 171, "total_tokens": 383},
    })


_WORDS = ("The", " pump", " on", " line", " 3", " was", " replaced", " and", " tested", ";", " pressure",
          " is", " back", " within", " range", ".")


def _chunk(delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None,
           choices: bool = True) -> bytes:
    obj = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices else [],
    }
    if usage is not None or not choices:
        obj["usage"] = usage
    return b"data: " + orjson.dumps(obj) + b"\n\n"


FIRST_EVENT = _chunk({"role": "assistant", "content": "", "refusal": None})
WORD_EVENTS = [_chunk({"content": w}) for w in _WORDS]
LAST_EVENTS = [
    _chunk({}, finish="stop"),
    _chunk({}, usage={"prompt_tokens": 212, "completion_tokens": 200, "total_tokens": 412}, choices=False),
    b"data: [DONE]\n\n",
]


def stream_event_count(events: int) -> int:
    """SSE events a stream of ``events`` content events carries: role chunk, content, finish, usage, DONE."""
    return 1 + events + len(LAST_EVENTS)


# --------------------------------------------------------------------------- the fast upstream


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class UpstreamProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 keep-alive server: fixed JSON answers and paced SSE streams."""

    JSON = chat_answer()
    JSON_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_bench\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(JSON))
    SSE_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"x-request-id: req_bench\r\nTransfer-Encoding: chunked\r\n\r\n")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.timer: asyncio.TimerHandle | None = None
        self.left = 0
        self.interval = 0.0
        self.sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            size = 0
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
            if m is not None:
                size = int(m.group(1))
            if len(self.buf) < end + 4 + size:
                return
            body = self.buf[end + 4 : end + 4 + size]
            self.buf = self.buf[end + 4 + size :]
            target = head.split(b" ", 2)[1]
            self.answer(target, body)

    def answer(self, target: bytes, body: bytes) -> None:
        assert self.transport is not None
        if b'"stream":true' not in body:
            self.transport.write(self.JSON_HEAD + self.JSON)
            return
        _, _, query = target.decode().partition("?")
        q = parse_qs(query)
        self.left = int(q.get("events", ["16"])[0])
        self.interval = float(q.get("interval", ["0"])[0])
        self.sent = 0
        self.transport.write(self.SSE_HEAD + _http_chunk(FIRST_EVENT))
        if self.interval > 0:
            self.timer = asyncio.get_running_loop().call_later(self.interval, self.tick)
        else:
            self.tick()

    def tick(self) -> None:
        self.timer = None
        t = self.transport
        if t is None:
            return
        if self.interval <= 0:  # unpaced: everything at once, each event its own chunk
            out = [_http_chunk(WORD_EVENTS[i % len(WORD_EVENTS)]) for i in range(self.left)]
            out += [_http_chunk(e) for e in LAST_EVENTS]
            t.write(b"".join(out) + b"0\r\n\r\n")
            return
        if self.left > 0:
            t.write(_http_chunk(WORD_EVENTS[self.sent % len(WORD_EVENTS)]))
            self.left -= 1
            self.sent += 1
            self.timer = asyncio.get_running_loop().call_later(self.interval, self.tick)
            return
        t.write(b"".join(_http_chunk(e) for e in LAST_EVENTS) + b"0\r\n\r\n")


async def serve_upstream(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# --------------------------------------------------------------------------- the thin pass-through

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "content-length"))


async def serve_thin(port: int, upstream: str) -> None:
    import aiohttp
    from aiohttp import web

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding"), timeout=aiohttp.ClientTimeout(total=None),
    )

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with session.request(request.method, upstream + request.path_qs, headers=headers,
                                   data=body or None, allow_redirects=False) as up:
            out = web.StreamResponse(status=up.status, headers={
                k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP})
            await out.prepare(request)
            async for chunk in up.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", relay)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    try:
        await asyncio.Event().wait()
    finally:
        await session.close()
        await runner.cleanup()


def run_uvloop(coro: object) -> None:
    import uvloop

    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(coro)  # type: ignore[arg-type]


def main() -> None:
    import signal

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="role", required=True)
    u = sub.add_parser("upstream")
    u.add_argument("--port", type=int, required=True)
    t = sub.add_parser("thin")
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--upstream", required=True)
    args = p.parse_args()
    raise_nofile()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.role == "upstream":
        run_uvloop(serve_upstream(args.port))
    else:
        run_uvloop(serve_thin(args.port, args.upstream.rstrip("/")))


if __name__ == "__main__":
    main()
