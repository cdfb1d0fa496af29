"""Limiter decision cost at 100 000 active keys on the memory backend.

Prints µs (process CPU time, best of 3 runs) per decision for: one GCRA op on the backend; one
decision + finish with 1 and with 3 limits (requests + tokens + concurrency) on a pool of Exchanges
whose accounts cycle over 100k keys, called the way the shape filter calls them (``admit_now``, then
``admit`` only if that did not decide; ``finish_now``; the general path, and with 3 limits also the fused
fast path of ``proxy.shaping.fast`` tried first, whose figure includes writing the limit headers); and
the reject path. Target: <= 5 µs per limit.
Then the whole filter per request as the proxy runs it (``on_request`` with the limit headers written
into the response headers, ``on_done``) with bench_proxy's phase-7 limits, against the same loop
without the filter: the in-process part of phase 7's budget (~15 µs for three limits).
Run: .venv/bin/python tests/benchmarks/bench_limiter.py
``--filter-instructions`` instead counts the filter's instructions per request in-process under callgrind
(deterministic; needs valgrind; ~2 min). ``--proxy-instructions`` counts the proxy process's instructions
per request under callgrind, with phase 7's limits and without (needs valgrind and wrk; ~2 min).
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import yaml

from proxy.accounts import Account
from proxy.clock import Clock
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.shaping.limiter import Shaper
from proxy.shaping.request import ShapeState
from proxy.shaping.spec import parse_limits
from proxy.state import MemoryBackend, state_key
from proxy.state.base import gcra

KEYS = 100_000
N = 100_000

LIMITS = [
    {"name": "per-account-rpm", "scope": ["account"], "requests": {"rate": "6000/m", "burst": 100}},
    {"name": "per-account-tpm", "scope": ["account"],
     "tokens": {"limit": 100_000_000, "window": "1m", "count": "total"}},
    {"name": "per-account-concurrency", "scope": ["account"], "concurrency": {"max": 64}},
]


def bench_backend() -> None:
    b = MemoryBackend()
    keys = [state_key("lim", "per-account-rpm", f"acct_{i:08d}") for i in range(KEYS)]
    now = time.time()
    for k in keys:
        b.apply_now([gcra(k, 0.01, 100.0)], now)
    order = [keys[random.randrange(KEYS)] for _ in range(N)]
    ops = [gcra(k, 0.01, 100.0) for k in order]
    dt = float("inf")
    for _ in range(3):
        gc.collect()
        t0 = time.process_time()
        for op in ops:
            b.apply_now([op], now)
        dt = min(dt, time.process_time() - t0)
    print(f"backend gcra op (sync core)          : {dt / N * 1e6:6.2f} µs   ({len(b)} keys)")
    gc.collect()
    tracemalloc.start()
    b2 = MemoryBackend()
    for k in keys:
        b2.apply_now([gcra(k, 0.01, 100.0)], now)
    cur, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    key_bytes = sum(sys.getsizeof(k) for k in keys) / KEYS
    print(f"memory per (limit, key)              : {cur / KEYS + key_bytes:6.0f} B "
          f"({cur / KEYS:.0f} B state + {key_bytes:.0f} B key string)")


async def bench_shaper(n_limits: int, reject: bool = False, repeat: int = 3, fast: bool | None = None) -> None:
    """Best of ``repeat`` runs (the machine is shared: the minimum is the least disturbed figure).
    ``fast`` (True or False): the limit headers are written too, as the shape filter does, on the fused
    fast path tried first (True) or on the general path only (False)."""
    best = min([await _run_shaper(n_limits, reject, fast) for _ in range(repeat)], key=sum)
    a, f = best
    label = "reject path, 1 limit" if reject else f"{n_limits} limit(s)"
    if fast is not None:
        label += " + headers, " + ("fast" if fast else "general")
    print(f"shaper {label:29s} : admit {a:6.2f} µs ({a / n_limits:5.2f} per limit), "
          f"finish {f:5.2f} µs, total {(a + f) / n_limits:5.2f} µs per limit")


async def _run_shaper(n_limits: int, reject: bool, fast: bool | None = None) -> tuple[float, float]:
    specs = parse_limits(LIMITS[:n_limits] if not reject else
                         [{"name": "tight", "scope": ["account"], "requests": {"rate": "1/h"}}])
    shaper = Shaper(specs, MemoryBackend(), clock=Clock(), fast_path=bool(fast))
    fp = shaper.fast
    accounts = [Account(id=f"acct_{i:08d}", tier="standard") for i in range(KEYS)]
    msgs = [{"role": "user", "content": "hi"}]
    body = orjson.dumps({"model": "gpt-x", "max_tokens": 256, "messages": msgs})
    dialect = DIALECTS["openai_chat"]
    pool = [Exchange(path="/v1/chat/completions", body=body, dialect=dialect) for _ in range(1024)]
    for ex in pool:
        _ = ex.view
    # warm: every key active
    for i, acct in enumerate(accounts):
        ex = pool[i & 1023]
        ex.account = acct
        await _decide(shaper, ex)
    picks = [accounts[random.randrange(KEYS)] for _ in range(N)]
    gc.collect()
    # CPU time of this process: the box is shared, wall time would count other jobs' slices.
    clock = time.process_time
    t_admit = t_finish = 0.0
    for i, acct in enumerate(picks):
        ex = pool[i & 1023]
        ex.account = acct
        t0 = clock()
        if fp is not None and fp.admit(ex):  # headers written, state in ``ex.state``
            st = ex.state["shape"]
        else:
            st = ShapeState(shaper)
            if shaper.admit_now(ex, st):
                if fast is not None:
                    shaper.write_headers(ex, st)
            else:
                await shaper.admit(ex, st)
        t1 = clock()
        if not shaper.finish_now(st, ex):
            await shaper.finish(st, ex)
        t_admit += t1 - t0
        t_finish += clock() - t1
    overhead = _timer_overhead(clock)
    return t_admit / N * 1e6 - overhead, t_finish / N * 1e6 - overhead


async def _decide(shaper: Shaper, ex: Exchange) -> None:
    st = ShapeState(shaper)
    if not shaper.admit_now(ex, st):
        await shaper.admit(ex, st)
    if not shaper.finish_now(st, ex):
        await shaper.finish(st, ex)


def _timer_overhead(clock: Any) -> float:
    """µs one ``clock()`` pair adds to a measured interval (subtracted from the figures)."""
    n = 100_000
    acc = 0.0
    for _ in range(n):
        t0 = clock()
        acc += clock() - t0
    return acc / n * 1e6


async def bench_filter(rounds: int = 7, n: int = 20_000) -> None:
    """The shape filter per request as the app runs it, with bench_proxy's phase-7 limits: a fresh
    Exchange, ``on_request`` (decision + limit headers into ``ex.reply_headers``), the response
    headers built by ``headers.client_headers`` (which copies them), ``on_done``; against the same
    loop without the filter. Best of ``rounds`` interleaved runs each."""
    from multidict import CIMultiDict

    from proxy.filters.shape import ShapeFilter
    from proxy.headers import client_headers

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_proxy import THREE_LIMITS

    f = ShapeFilter(parse_limits(yaml.safe_load(THREE_LIMITS)["limits"]), sweep_interval=0)
    acct = Account(id="bench-client", tier="standard")
    dialect = DIALECTS["openai_chat"]
    body = orjson.dumps({"model": "bench-model-1", "max_tokens": 256,
                         "messages": [{"role": "user", "content": "x" * 900}]})
    upstream = CIMultiDict({"Content-Type": "application/json", "Content-Length": "1000", "x-request-id": "u"})

    async def run(shape: ShapeFilter | None) -> float:
        gc.collect()
        t0 = time.process_time()
        for _ in range(n):
            ex = Exchange(path="/v1/chat/completions", body=body, dialect=dialect, headers={})
            ex.account = acct
            ex.key_id = "k1"
            ex.status = 200
            _ = ex.json  # the validate filter parses every body
            if shape is not None:
                await shape.on_request(ex)
            client_headers(ex, upstream)
            if shape is not None:
                await shape.on_done(ex)
        return (time.process_time() - t0) / n * 1e6

    none = three = float("inf")
    for _ in range(rounds):
        none = min(none, await run(None))
        three = min(three, await run(f))
    print(f"filter, 3 limits + headers, per req  : {three - none:6.2f} µs added "
          f"(loop {three:.2f} µs with the filter, {none:.2f} µs without)")


def proxy_instructions(seconds: int = 10) -> None:
    """Instructions per request of the proxy process, without limits and with bench_proxy's phase-7
    limits, counted by callgrind only while ``wrk -c4`` runs against it (deterministic, unlike CPU
    time on a shared box; under callgrind a request takes ~50x longer, so a few hundred are counted).
    Needs valgrind and wrk."""
    import hashlib
    import secrets
    import shutil
    import signal
    import subprocess
    import tempfile
    import urllib.request

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common
    from bench_proxy import THREE_LIMITS

    work = Path(tempfile.mkdtemp(prefix="bench-limiter-cg-"))
    key = "dg-bench-" + secrets.token_urlsafe(24)
    accounts = work / "accounts.yaml"
    accounts.write_text("accounts:\n  - id: bench-client\n    tier: standard\n"
                        f'    keys: ["sha256:{hashlib.sha256(key.encode()).hexdigest()}"]\n')
    script = common.wrk_script(work / "post.lua", common.chat_request(),
                               {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    up = common.start_upstream(work / "upstream.log")
    procs: list[tuple[str, subprocess.Popen[bytes], int]] = []
    try:
        for tag, extra in (("none", ""), ("three", THREE_LIMITS)):
            port = common.free_port()
            cfg = work / f"{tag}.yaml"
            cfg.write_text(
                f'server:\n  listen: "127.0.0.1:{port}"\n'
                f"upstreams:\n  - name: bench\n    url: {up.url}\n    max_connections: 20000\n"
                f'accounts_file: "{accounts}"\n'
                f'logging:\n  level: warning\n  access_log: "{work / (tag + "-access.log")}"\n'
                "redaction:\n  tiers: {trusted: pass, standard: pass, restricted: pass}\n  default_mode: pass\n"
                "hardening:\n  tiers: {trusted: 'off', standard: 'off', restricted: 'off'}\n"
                "  default_profile: 'off'\n" + extra)
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
                    f"--callgrind-out-file={work / ('cg.' + tag)}", sys.executable, "-m", "proxy", "serve",
                    "--config", str(cfg)]
            with open(work / f"{tag}.log", "wb") as log:
                procs.append((tag, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                    cwd=str(Path(__file__).resolve().parents[2])), port))
        for _, _, port in procs:
            for _ in range(600):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        r.read()
                    break
                except OSError:
                    time.sleep(0.5)
            common.run_wrk(f"http://127.0.0.1:{port}/v1/chat/completions", script, connections=4, seconds=3)
        requests: dict[str, int] = {}
        for tag, p, port in procs:
            subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], capture_output=True, check=False)
            res = common.run_wrk(f"http://127.0.0.1:{port}/v1/chat/completions", script, connections=4,
                                 seconds=seconds)
            subprocess.run(["callgrind_control", "-i", "off", str(p.pid)], capture_output=True, check=False)
            if res.non_2xx or res.socket_errors:
                raise RuntimeError(f"{tag}: {res.non_2xx} non-2xx answers, {res.socket_errors} socket errors")
            requests[tag] = res.requests
        for _, p, _ in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(120)
        per: dict[str, float] = {}
        for tag, _, _ in procs:
            lines = [x for x in (work / f"{tag}.log").read_text().splitlines() if "Collected" in x]
            per[tag] = int(lines[-1].split()[-1]) / requests[tag]
        added = per["three"] - per["none"]
        print(f"proxy instructions per request       : {per['none']:,.0f} without limits, {per['three']:,.0f} "
              f"with three: +{added:,.0f} ({added / per['none']:+.1%}; {requests['none']} and "
              f"{requests['three']} requests)")
    finally:
        for _, p, _ in procs:
            if p.poll() is None:
                p.kill()
        up.stop()
        shutil.rmtree(work, ignore_errors=True)


def filter_loop(mode: str, n: int) -> None:
    """``bench_filter``'s loop, ``n`` requests after 200 warm-up ones, with bench_proxy's phase-7 limits
    (``mode`` "three") or without the filter ("none"); each request's coroutine is driven without an
    event loop (on the memory backend the hooks never await). Run by ``filter_instructions`` under
    callgrind."""
    from multidict import CIMultiDict

    from proxy.filters.shape import ShapeFilter
    from proxy.headers import client_headers

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_proxy import THREE_LIMITS

    f = ShapeFilter(parse_limits(yaml.safe_load(THREE_LIMITS)["limits"]), sweep_interval=0) if mode == "three" else None
    acct = Account(id="bench-client", tier="standard")
    dialect = DIALECTS["openai_chat"]
    body = orjson.dumps({"model": "bench-model-1", "max_tokens": 256,
                         "messages": [{"role": "user", "content": "x" * 900}]})
    upstream = CIMultiDict({"Content-Type": "application/json", "Content-Length": "1000", "x-request-id": "u"})

    def drive(c: Any) -> None:
        try:
            c.send(None)
        except StopIteration:
            return
        raise RuntimeError("a shape hook awaited on the memory backend")

    async def request(ex: Exchange) -> None:
        """One request's part of the app's handler coroutine: the hooks are awaited in it, as the
        chain awaits them (an awaited coroutine that returns costs no StopIteration)."""
        if f is not None:
            await f.on_request(ex)
        client_headers(ex, upstream)
        if f is not None:
            ex.usage.input, ex.usage.output = 240, 100  # the upstream's usage: tokens are reconciled
            await f.on_done(ex)

    def run(k: int) -> None:
        for _ in range(k):
            ex = Exchange(path="/v1/chat/completions", body=body, dialect=dialect, headers={})
            ex.account = acct
            ex.key_id = "k1"
            ex.status = 200
            _ = ex.json
            drive(request(ex))

    run(200)
    run(n)


def filter_instructions() -> None:
    """Instructions per request the shape filter adds in-process (``filter_loop`` with phase 7's three
    limits minus without), counted by callgrind as the slope between 500 and 2 500 requests (start-up
    cancels out; deterministic, unlike CPU time on a shared box). Needs valgrind; ~2 min."""
    import os
    import subprocess

    env = dict(os.environ, PYTHONHASHSEED="0")
    counts: dict[tuple[str, int], int] = {}
    for mode in ("none", "three"):
        for n in (500, 2500):
            out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                                  __file__, "--filter-loop", mode, str(n)], env=env, capture_output=True, text=True,
                                 check=True).stderr
            counts[mode, n] = int([x for x in out.splitlines() if "Collected" in x][-1].split()[-1])
    per = {mode: (counts[mode, 2500] - counts[mode, 500]) / 2000 for mode in ("none", "three")}
    print(f"filter instructions per request      : +{per['three'] - per['none']:,.0f} "
          f"(loop {per['three']:,.0f} with the filter, {per['none']:,.0f} without)")


async def main() -> None:
    random.seed(1)
    print(f"python {sys.version.split()[0]}, {KEYS} active keys, {N} decisions")
    bench_backend()
    await bench_shaper(1)
    await bench_shaper(3)
    await bench_shaper(3, fast=False)
    await bench_shaper(3, fast=True)
    await bench_shaper(1, reject=True)
    await bench_filter()


if __name__ == "__main__":
    if "--filter-loop" in sys.argv:
        i = sys.argv.index("--filter-loop")
        filter_loop(sys.argv[i + 1], int(sys.argv[i + 2]))
        raise SystemExit(0)
    if "--filter-instructions" in sys.argv:
        filter_instructions()
        raise SystemExit(0)
    if "--proxy-instructions" in sys.argv:
        proxy_instructions()
        raise SystemExit(0)
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
