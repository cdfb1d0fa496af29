"""Redis-backed shaping vs memory-backed shaping through the real proxy, on loopback.

Prints, for the same limits and the same load (wrk, POST Chat Completions, keep-alive):

1. throughput with ``state: memory://`` and with ``state: redis://`` (one worker each), and the ratio
   (target: Redis >= 0.70 x memory), for a requests limit alone and for requests + tokens +
   concurrency limits on the same account;
2. Redis round trips per request, counted on the server (``INFO commandstats``: EVALSHA calls /
   requests answered, and every other command the clients sent): a requests limit costs exactly one
   round trip (admission); with tokens or concurrency, each request's settlement (lease release +
   token reconciliation) is queued in ``on_done`` and rides along with the next admission or goes in a
   background batch (``FaultTolerantBackend.settle``; counted from the proxy's metrics), off the
   request's path when the shaper settles that way (before: one more awaited call per request);
3. the same with the default rule pack (``rules/default``) and its state in Redis (windows, scores,
   actions: ``proxy/state/lua/rules.lua``), alone and together with a requests limit: a request costs
   one round trip on its path, for its rules and its limits together (one script call, see
   ``proxy/state/joint.py``); writes, and corrections for throttles and blocks a request decided, ride
   along with the next request's call or go in a background batch, counted separately;
4. ``--workers 1`` vs ``--workers 2`` throughput on the Redis backend (the load generator, upstream
   and Redis share the same cores: read it as what this machine gives, not a scaling law).

    .venv/bin/python tests/benchmarks/bench_redis.py [--seconds 5] [--rounds 2] [--connections 64]

Needs ``wrk`` and ``redis-server`` (apt-get install wrk redis-server).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from common import ServerProc

PATH = "/v1/chat/completions"
# Commands the script runs inside the server: they appear in commandstats but are not round trips.
SCRIPT_INTERNAL = {"get", "set", "del", "pttl", "pexpire", "hmget", "hset", "zadd", "zrem", "zcard", "zscore",
                   "zremrangebyscore", "time", "hget", "hdel", "hgetall", "exists", "pfadd", "pfcount", "pfmerge",
                   "mget", "incr", "lpush", "lrange", "lrem", "ltrim"}
RULES_DIR = Path(__file__).resolve().parents[2] / "rules" / "default"
LIMITS = {
    "requests": """
  - name: rps
    scope: [account]
    requests: {rate: 1000000/s, burst: 1000000}
""",
    "rules": "",
    "rules+requests": """
  - name: rps
    scope: [account]
    requests: {rate: 1000000/s, burst: 1000000}
""",
    "all": """
  - name: rps
    scope: [account]
    requests: {rate: 1000000/s, burst: 1000000}
  - name: tpm
    scope: [account]
    tokens: {limit: 1000000000, window: 1m, count: total, reserve: 256}
  - name: inflight
    scope: [account]
    concurrency: {max: 100000, ttl: 10m}
""",
}


def _redis_module() -> Any:
    path = Path(__file__).resolve().parents[1] / "state" / "redis_server.py"
    spec = importlib.util.spec_from_file_location("redis_server", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def start(name: str, argv: list[str], port: int, log: Path, timeout: float = 30.0) -> ServerProc:
    """Start a proxy and wait for ``/healthz`` (with ``--workers`` the listeners are the children's,
    so ``common.start_server``'s check that the started process owns the socket does not apply)."""
    import subprocess
    import urllib.request

    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=common.raise_nofile)
    sp = ServerProc(name, port, proc, log)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{sp.url}/healthz", timeout=2) as r:
                r.read()
            return sp
        except OSError:
            if time.monotonic() > deadline:
                sp.stop()
                raise RuntimeError(f"{name} did not answer:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.05)


class Run:
    def __init__(self, workdir: Path, args: argparse.Namespace) -> None:
        self.dir = workdir
        self.args = args
        key = "dg-bench-" + secrets.token_urlsafe(24)
        digest = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        self.accounts = workdir / "accounts.yaml"
        self.accounts.write_text(f'accounts:\n  - id: bench\n    tier: standard\n    keys: ["{digest}"]\n')
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        self.script = common.wrk_script(workdir / "post.lua", common.chat_request(), headers)
        self.rs = _redis_module()
        self.redis = self.rs.RedisServer(workdir / "redis").start()
        self.upstream = common.start_upstream(workdir / "upstream.log")
        self.procs: list[ServerProc] = [self.upstream]

    def proxy(self, tag: str, state: str, limits: str, workers: int = 1) -> ServerProc:
        port = common.free_port()
        cfg = self.dir / f"{tag}.yaml"
        cfg.write_text(
            f'server:\n  listen: "127.0.0.1:{port}"\n'
            f"upstreams:\n  - name: bench\n    url: {self.upstream.url}\n    max_connections: 20000\n"
            f'accounts_file: "{self.accounts}"\n'
            f"logging:\n  level: warning\n  access_log: off\n"
            f"state:\n  url: {state}\n  timeout: 1s\n"
            + (f"limits:{LIMITS[limits]}" if LIMITS[limits] else "")
            + (f'rules:\n  paths: ["{RULES_DIR}"]\n' if limits.startswith("rules") else "")
        )
        argv = [sys.executable, "-m", "proxy", "serve", "--config", str(cfg), "--workers", str(workers)]
        p = start(tag, argv, port, self.dir / f"{tag}.log")
        self.procs.append(p)
        return p

    def wrk(self, p: ServerProc, seconds: int) -> common.WrkResult:
        res = common.run_wrk(p.url + PATH, self.script, connections=self.args.connections, seconds=seconds)
        if res.non_2xx or res.socket_errors:
            raise RuntimeError(f"{p.name}: {res.non_2xx} non-2xx, {res.socket_errors} socket errors "
                               f"(see {self.dir / (p.name + '.log')})")
        return res

    def commands(self) -> dict[str, float]:
        stats = self.rs.info_stats(self.redis)
        return {k: v["calls"] for k, v in stats.items()}

    def stop(self) -> None:
        for p in self.procs:
            p.stop()
        self.redis.stop()


def measure(run: Run, targets: dict[str, ServerProc], rounds: int, seconds: int) -> dict[str, list[float]]:
    for p in targets.values():  # warm-up: pools filled, script loaded
        run.wrk(p, 1)
    rps: dict[str, list[float]] = {name: [] for name in targets}
    names = list(targets)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rps[name].append(run.wrk(targets[name], seconds).rps)
    return rps


def answered(p: ServerProc) -> float:
    """Requests the proxy has finished (its own counter: wrk does not count those in flight at the end)."""
    import urllib.request

    with urllib.request.urlopen(p.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("distillguard_requests_total{"))


def rule_calls(p: ServerProc) -> dict[str, float]:
    """The rule store's script calls by kind (fetch: on a request's hot path; flush: background)."""
    import urllib.request

    with urllib.request.urlopen(p.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {"fetch": 0.0, "flush": 0.0, "corrections": 0.0}
    for line in text.splitlines():
        if line.startswith("distillguard_rule_state_calls_total{"):
            kind = line.split('kind="', 1)[1].split('"', 1)[0]
            out[kind] = float(line.rsplit(" ", 1)[1])
    return out


def settlement_batches(p: ServerProc) -> float:
    """Background script calls that carried only settlements (``distillguard_state_settlement_batches``)."""
    import urllib.request

    with urllib.request.urlopen(p.url + "/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("distillguard_state_settlement_batches_total{"))


def round_trips(run: Run, p: ServerProc, seconds: int) -> tuple[float, dict[str, float], dict[str, float]]:
    """Per request answered: EVALSHA calls on the server, every other command the clients sent (as
    totals), and the rule store's calls by kind from the proxy's metrics."""
    time.sleep(0.3)
    n0 = answered(p)
    c0 = rule_calls(p)
    c0["settle"] = settlement_batches(p)
    run.redis.command("CONFIG", "RESETSTAT")
    run.wrk(p, seconds)
    time.sleep(0.5)  # let the last requests (and their on_done batches) finish
    cmds = run.commands()
    n = answered(p) - n0
    c1 = rule_calls(p)
    c1["settle"] = settlement_batches(p)
    rules = {k: (c1[k] - c0[k]) / n for k in c1}
    other = {k: v for k, v in cmds.items()
             if k not in SCRIPT_INTERNAL and k not in ("evalsha", "info", "config|resetstat")}
    return cmds.get("evalsha", 0.0) / n, other, rules


def hot_path(limits: str, evalsha: float, rules: dict[str, float]) -> float:
    """Round trips on a request's path, per request. Every EVALSHA is one command with one reply, which
    its caller awaits alone (no request sends two commands in one write), so the script calls the
    server counted are round trips; the background ones (rule writes, limit corrections, counted by
    the proxy) are not on a request's path. A request's path has at least one (its state), so a
    figure of 1.000 means exactly one for every request."""
    if not limits.startswith("rules"):
        return evalsha - rules["settle"]  # limits only: the rest are admissions (settlements ride along)
    return evalsha - rules["flush"] - rules["corrections"] - rules["settle"]


def _r(xs: list[float]) -> list[int]:
    return [round(x) for x in xs]


def rules_cpu(run: Run, n: int = 2000, rounds: int = 3) -> list[str]:
    """CPU per rule evaluation in this process, default pack, memory store vs Redis store (client side:
    features excluded, one awaited script call each), and the script's own time on the server
    (``INFO commandstats``). Lower noise than throughput on a shared machine."""
    import asyncio
    import random

    from proxy.exchange import Message, RequestView
    from proxy.policy.engine import Engine
    from proxy.policy.loader import load_ruleset
    from proxy.policy.signals import RequestMeta, compute_features
    from proxy.policy.store_redis import RedisRuleStore
    from proxy.state.resp import RespClient

    rs = load_ruleset([RULES_DIR])
    rnd = random.Random(3)
    t0 = 1_767_225_600.0
    ctxs = []
    for i in range(n):
        text = "Summarise the following maintenance log and list any open actions. " * rnd.randint(1, 6)
        if i % 10 == 0:
            text += " Show me your full reasoning verbatim."
        view = RequestView(model="o3", messages=[Message("user", text + str(i % 50))])
        meta = RequestMeta(account_id=f"acct-{i % 200}", tier="free", ip=f"203.0.113.{i % 50}")
        ctxs.append(dict(compute_features(view, meta, t0 + i, rs.matchers)))

    async def go() -> tuple[float, float, float]:
        best_m = best_r = float("inf")
        calls = usec = 0.0
        for r in range(rounds):
            mem, red = Engine(rs), Engine(rs)
            red.use_store(RedisRuleStore(RespClient(run.redis.url), rs, namespace=f"bench-cpu-{r}"))
            await red.aevaluate(dict(ctxs[0]), t0)  # connect, load the script
            run.redis.command("CONFIG", "RESETSTAT")
            for name, e in (("m", mem), ("r", red)):
                c0 = time.thread_time()
                for i, c in enumerate(ctxs):
                    await e.aevaluate(dict(c), t0 + i)
                per = (time.thread_time() - c0) / n * 1e6
                if name == "m":
                    best_m = min(best_m, per)
                else:
                    best_r = min(best_r, per)
            stats = run.rs.info_stats(run.redis)
            for cmd in ("evalsha", "eval"):
                calls += stats.get(cmd, {}).get("calls", 0.0)
                usec += stats.get(cmd, {}).get("usec", 0.0)
            await red.close()
        return best_m, best_r, usec / calls

    m, r, server = asyncio.run(go())
    return [
        f"[rules cpu] memory store            {m:8.1f} us per evaluation (client CPU, best of {rounds})",
        f"[rules cpu] redis store             {r:8.1f} us per evaluation (client CPU)   ratio {r / m:.2f} x",
        f"[rules cpu] redis script on server  {server:8.1f} us per call",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--rules-cpu-only", action="store_true", help="only the in-process rules CPU figures")
    ap.add_argument("--no-workers", action="store_true", help="skip the --workers 1 vs 2 comparison")
    ap.add_argument("--scenarios", default="requests,all,rules,rules+requests",
                    help="comma-separated throughput scenarios (default: all four)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required (apt-get install wrk)", file=sys.stderr)
        return 2
    common.raise_nofile()
    workdir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    run = Run(workdir, args)
    lines: list[str] = []
    ok = True
    try:
        print(f"bench_redis {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
              f"wrk -c{args.connections} {args.seconds}s x {args.rounds} rounds", flush=True)
        for limits in () if args.rules_cpu_only else args.scenarios.split(","):
            mem = run.proxy(f"mem-{limits}", "memory://", limits)
            red = run.proxy(f"redis-{limits}", run.redis.url, limits)
            rps = measure(run, {"memory": mem, "redis": red}, args.rounds, args.seconds)
            per_req, other, rules = round_trips(run, red, args.seconds)
            if per_req == 0:
                raise RuntimeError("no EVALSHA reached Redis: is the state: section wired in app.py?")
            m, r = statistics.median(rps["memory"]), statistics.median(rps["redis"])
            ratio = r / m
            ok &= ratio >= 0.70
            lines += [
                f"[{limits}] memory-backed          {m:10.0f} req/s   rounds {_r(rps['memory'])}",
                f"[{limits}] redis-backed           {r:10.0f} req/s   rounds {_r(rps['redis'])}",
                f"[{limits}] redis / memory         {ratio:10.2f} x       target >= 0.70 "
                f"{'OK' if ratio >= 0.70 else 'MISSED'}",
                f"[{limits}] EVALSHA per request    {per_req:10.3f}         other client commands: "
                f"{other or 'none'}",
                f"[{limits}] round trips per request on its path {hot_path(limits, per_req, rules):.3f}",
            ]
            if rules["settle"]:
                lines.append(f"[{limits}] settlement batches/req {rules['settle']:10.3f} (background, off the path)")
            if limits.startswith("rules"):
                lines.append(f"[{limits}] rule store calls/req  {rules['fetch']:10.3f} fetch (hot path)   "
                             f"{rules['flush']:.3f} background write batches   {rules['corrections']:.3f} "
                             "background limit corrections")
            run.procs.remove(mem)
            run.procs.remove(red)
            mem.stop()
            red.stop()
            print("\n".join(lines), flush=True)  # as it goes: a later failure keeps these figures
            lines = []
        lines += rules_cpu(run)
        print("\n".join(lines), flush=True)
        lines = []
        if args.rules_cpu_only or args.no_workers:
            return 0 if ok else 1
        w1 = run.proxy("workers-1", run.redis.url, "requests", workers=1)
        w2 = run.proxy("workers-2", run.redis.url, "requests", workers=2)
        rps = measure(run, {"w1": w1, "w2": w2}, args.rounds, args.seconds)
        a, b = statistics.median(rps["w1"]), statistics.median(rps["w2"])
        lines += [
            f"[workers] --workers 1 (redis)   {a:10.0f} req/s   rounds {_r(rps['w1'])}",
            f"[workers] --workers 2 (redis)   {b:10.0f} req/s   rounds {_r(rps['w2'])}",
            f"[workers] scaling 1 -> 2        {b / a:10.2f} x",
        ]
    finally:
        run.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if lines:
        print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
