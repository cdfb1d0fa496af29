"""A real ``redis-server`` for the tests: a free loopback port, a temp dir, persistence off.

Used by ``tests/state/conftest.py``, the contract suite in ``tests/shaping`` and the integration tests
(which load this file by path: the test folders are not packages). No skips: if ``redis-server`` is
missing the fixture fails and says how to install it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = (
    "redis-server is not installed; the state tests start a real one. Install it with "
    "`apt-get install redis-server` (Debian/Ubuntu; .ci/run does this) or `brew install redis`, "
    "or put redis-server (or valkey-server) on PATH."
)


def find_server() -> str:
    for name in ("redis-server", "valkey-server"):
        path = shutil.which(name)
        if path:
            return path
    for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"):
        if os.access(path, os.X_OK):
            return path
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process. ``kill()`` is SIGKILL (a crash); ``start()`` again reuses the port."""

    def __init__(self, workdir: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        self.binary = find_server()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra = extra

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
                "--loglevel", "warning", "--logfile", str(self.workdir / "redis.log"), *self.extra]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                log = (self.workdir / "redis.log")
                tail = log.read_text()[-1500:] if log.exists() else ""
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}\n{tail}")
            try:
                if self.command("PING") in ("PONG", "NOAUTH Authentication required."):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")
            time.sleep(0.02)

    def command(self, *args: str) -> str:
        """Send one command with a raw socket (no client library state); returns the reply's text."""
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(payload.encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if _complete(data):
                    break
        return _text(data)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def _complete(data: bytes) -> bool:
    if data[:1] in (b"+", b"-", b":"):
        return data.endswith(b"\r\n")
    if data[:1] == b"$":
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:])
        return n < 0 or len(rest) >= n + 2
    return data.endswith(b"\r\n")  # arrays: good enough for the small replies the tests read


def _text(data: bytes) -> str:
    if data[:1] in (b"+", b"-", b":"):
        return data[1:].rstrip(b"\r\n").decode()
    if data[:1] == b"$":
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:])
        return "" if n < 0 else rest[:n].decode()
    return data.decode()


def info_stats(server: RedisServer, section: str = "commandstats") -> dict[str, dict[str, float]]:
    """``INFO commandstats`` as {command: {calls: n, ...}}."""
    out: dict[str, dict[str, float]] = {}
    for line in server.command("INFO", section).splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            vals = dict(kv.split("=", 1) for kv in fields.split(","))
            out[name[len("cmdstat_"):]] = {k: float(v) for k, v in vals.items() if k in ("calls", "usec")}
    return out
