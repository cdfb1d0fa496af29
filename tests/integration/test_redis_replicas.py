"""Several proxy processes (``python -m proxy serve --config ...``) sharing one real Redis.

Two replicas enforce one global limit; killing Redis under load does what ``state.on_failure`` says
(fail-open: local limits, no errors; fail-closed: 503 ``state_unavailable`` in the API's shape,
quickly), nobody crashes and everything recovers when Redis is back; a flushed script cache is
reloaded on NOSCRIPT without losing state; ``--workers 2`` serves on one port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
import redis_server as RS  # tests/state, on the pytest pythonpath

from .conftest import write_accounts

pytestmark = pytest.mark.slow





BODY = orjson.dumps({"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "hi"}]})


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                r.read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.05)


def _spawn(argv: list[str], port: int, log: Path, probe: str = "/healthz") -> Proc:
    out = open(log, "ab")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out.close()
    p = Proc(proc, port, log)
    try:
        _wait_http(p.url + probe, proc, log)
    except Exception:
        p.stop()
        raise
    return p


class Fleet:
    """A fake upstream, a Redis, and proxies started from one config file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = RS.RedisServer(tmp / "redis").start()
        self.procs: list[Proc] = []
        port = RS.free_port()
        self.upstream = _spawn([sys.executable, "-m", "proxy.fake.upstream", "--port", str(port)], port,
                               tmp / "upstream.log", probe="/")
        self.procs.append(self.upstream)
        self.keys = write_accounts(tmp / "accounts.yaml", (("alice", "standard", None),))

    def config(self, name: str, *, burst: int, on_failure: str = "open", timeout: str = "1s") -> Path:
        text = f"""
server: {{listen: "127.0.0.1:0", drain_timeout: 2s}}
upstreams:
  - name: fake
    url: {self.upstream.url}
    api_key: upstream-key
    timeouts: {{connect: 2s, first_byte: 5s, idle: 5s}}
accounts_file: {self.tmp / "accounts.yaml"}
logging: {{level: info}}
state:
  url: {self.redis.url}
  namespace: it
  on_failure: {on_failure}
  timeout: {timeout}
  breaker: {{failures: 2, open_for: 500ms}}
limits:
  - name: global
    scope: [account]
    requests: {{rate: 1/h, burst: {burst}}}
"""
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        return path

    def proxy(self, config: Path, *extra: str, port: int | None = None) -> Proc:
        port = port or RS.free_port()
        argv = [sys.executable, "-m", "proxy", "serve", "--config", str(config), "--listen",
                f"127.0.0.1:{port}", *extra]
        p = _spawn(argv, port, self.tmp / f"proxy-{len(self.procs)}.log")
        self.procs.append(p)
        import urllib.request

        with urllib.request.urlopen(p.url + "/metrics", timeout=5) as r:
            wired = b"distillguard_state_up" in r.read()
        assert wired, ("the proxy ignores the state: section: proxy/app.py build_filters must pass "
                       "**shape_state(cfg, ...) to ShapeFilter.from_config (see docs/redis.md)")
        return p

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.redis.stop()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = Fleet(tmp_path)
    try:
        yield f
    finally:
        f.close()


@dataclass
class Answer:
    status: int
    code: str
    seconds: float


async def _one(s: aiohttp.ClientSession, url: str, key: str) -> Answer:
    t = time.monotonic()
    async with s.post(url + "/v1/chat/completions", data=BODY,
                      headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}) as r:
        raw = await r.read()
    code = ""
    if r.status != 200:
        code = str(orjson.loads(raw).get("error", {}).get("code", ""))
    return Answer(r.status, code, time.monotonic() - t)


async def _burst(urls: list[str], key: str, n: int, concurrency: int = 64) -> list[Answer]:
    sem = asyncio.Semaphore(concurrency)
    conn = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def go(i: int) -> Answer:
            async with sem:
                return await _one(s, urls[i % len(urls)], key)

        return list(await asyncio.gather(*(go(i) for i in range(n))))


async def _metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as s, s.get(url + "/metrics") as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_two_replicas_enforce_one_global_limit(fleet: Fleet) -> None:
    cfg = fleet.config("global", burst=300)
    a, b = fleet.proxy(cfg), fleet.proxy(cfg)
    answers = await _burst([a.url, b.url], fleet.keys["alice"], 1200, concurrency=128)
    statuses = Counter(x.status for x in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert abs(statuses[200] - 300) <= 6, statuses  # within 2 % (atomic Lua: exactly 300)
    # both replicas took part; every admission went through Redis
    assert await _metric(a.url, "distillguard_shape_admitted_total") > 0
    assert await _metric(b.url, "distillguard_shape_admitted_total") > 0
    assert RS.info_stats(fleet.redis)["evalsha"]["calls"] >= 1200


async def _load_until(
    stop: asyncio.Event, urls: list[str], key: str, out: list[tuple[float, Answer]]
) -> None:
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def worker(i: int) -> None:
            while not stop.is_set():
                try:
                    ans = await _one(s, urls[i % len(urls)], key)
                except aiohttp.ClientError as e:  # a crashed or reset proxy shows up here
                    ans = Answer(-1, type(e).__name__, 0.0)
                out.append((time.monotonic(), ans))

        await asyncio.gather(*(worker(i) for i in range(16)))


@pytest.mark.parametrize("mode", ["open", "closed"])
async def test_killing_redis_under_load(fleet: Fleet, mode: str) -> None:
    cfg = fleet.config(f"kill-{mode}", burst=1_000_000, on_failure=mode, timeout="250ms")
    a, b = fleet.proxy(cfg), fleet.proxy(cfg)
    key = fleet.keys["alice"]
    results: list[tuple[float, Answer]] = []
    stop = asyncio.Event()
    load = asyncio.ensure_future(_load_until(stop, [a.url, b.url], key, results))
    try:
        await asyncio.sleep(1.0)
        t_kill = time.monotonic()
        fleet.redis.kill()
        await asyncio.sleep(2.0)
        t_restart = time.monotonic()
        fleet.redis.start()
        await asyncio.sleep(2.5)  # open_for is 500 ms: the next probe recovers
    finally:
        stop.set()
        await load
    before = [x for t, x in results if t < t_kill]
    down = [x for t, x in results if t_kill + 0.3 < t < t_restart]
    after = [x for t, x in results if t > t_restart + 1.5]
    assert before and down and after
    assert all(x.status == 200 for x in before), Counter(x.status for x in before)
    if mode == "open":
        # limits fall back to local memory: everything still answered, nothing failed
        assert all(x.status == 200 for x in down), Counter((x.status, x.code) for x in down)
    else:
        assert all(x.status == 503 and x.code == "state_unavailable" for x in down), \
            Counter((x.status, x.code) for x in down)
        # a dead Redis costs at most the 250 ms timeout, and nothing once the breaker is open
        assert max(x.seconds for x in down) < 0.6
    assert all(x.status == 200 for x in after), Counter((x.status, x.code) for x in after)
    assert a.alive() and b.alive()
    for p in (a, b):
        assert await _metric(p.url, "distillguard_state_up") == 1
        assert await _metric(p.url, "distillguard_state_breaker_opened_total") >= 1
    assert int(fleet.redis.command("EXISTS", "{it}\x1flim\x1fglobal\x1falice")) == 1  # Redis again
    logs = a.log.read_text() + b.log.read_text()
    assert ("FALLING BACK to local in-memory state" if mode == "open" else "refusing") in logs
    assert "recovered" in logs and "Traceback" not in logs.split("recovered")[-1]


async def test_flushed_script_cache_recovers(fleet: Fleet) -> None:
    cfg = fleet.config("flush", burst=100)
    a, b = fleet.proxy(cfg), fleet.proxy(cfg)
    key = fleet.keys["alice"]
    first = await _burst([a.url, b.url], key, 60)
    assert all(x.status == 200 for x in first)
    assert fleet.redis.command("SCRIPT", "FLUSH") == "OK"
    rest = await _burst([a.url, b.url], key, 140)
    statuses = Counter(x.status for x in rest)
    assert statuses == {200: 40, 429: 100}, statuses  # the counts in Redis survived; no 5xx
    assert RS.info_stats(fleet.redis)["eval"]["calls"] >= 2  # each replica reloaded once


async def test_workers_share_one_port(fleet: Fleet) -> None:
    cfg = fleet.config("workers", burst=200)
    port = RS.free_port()
    p = fleet.proxy(cfg, "--workers", "2", port=port)
    # ready means one worker answers; wait until both listen, or the kernel has one socket to pick
    for _ in range(150):
        listening = _established_by_child(p.proc.pid, port, state="0A")
        if len(listening) == 2 and all(listening.values()):
            break
        await asyncio.sleep(0.1)
    assert len(listening) == 2 and all(listening.values()), listening
    answers = await _burst([p.url], fleet.keys["alice"], 500, concurrency=64)
    statuses = Counter(x.status for x in answers)
    assert statuses == {200: 200, 429: 300}, statuses
    # hold 32 fresh connections open: the kernel spreads them over both workers
    conn = aiohttp.TCPConnector(limit=64, force_close=False)
    async with aiohttp.ClientSession(connector=conn) as s:
        gate = asyncio.Event()

        async def hold() -> None:
            async with s.get(p.url + "/healthz") as r:
                await r.read()
            await gate.wait()

        tasks = [asyncio.ensure_future(hold()) for _ in range(32)]
        await asyncio.sleep(0.5)
        per_worker = _established_by_child(p.proc.pid, port)
        gate.set()
        await asyncio.gather(*tasks)
    assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
    p.stop()
    assert p.proc.returncode == 0


def _established_by_child(parent: int, port: int, state: str = "01") -> dict[int, int]:
    """Established (``state`` "01"; "0A": listening) sockets on ``port`` per child process of ``parent``
    (from /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == state:
                inodes.add(f[9])
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    out: dict[int, int] = {}
    for pid in map(int, children):
        n = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        out[pid] = n
    return out


def test_workers_refuse_memory_state(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("upstreams:\n  - {name: up, url: 'http://127.0.0.1:9'}\n")
    r = subprocess.run([sys.executable, "-m", "proxy", "serve", "--config", str(cfg), "--listen",
                        "127.0.0.1:18080", "--workers", "2"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "--workers 2 needs shared state" in r.stderr and "redis://" in r.stderr
