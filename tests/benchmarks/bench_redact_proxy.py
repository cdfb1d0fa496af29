"""Cost of streaming redaction in the whole proxy: distillguard in front of the fake upstream, over sockets.

``bench_redact.py`` times the redaction pipeline in process (framer + chain + encode). This script measures
the issue's literal terms instead: the throughput of a real ``python -m proxy serve`` process relaying the
same stream in ``pass``, ``omit`` and ``seal`` mode. Three processes besides this one:

- the built-in fake upstream (``python -m proxy.fake.upstream --chunks N``): every API streams ``N``
  reasoning deltas then ``N`` answer deltas in its own form (rendered once, then served from its cache);
- distillguard, with three accounts whose tiers map to ``pass``, ``omit`` and ``seal``
  (``suppress_upstream: false``, so the upstream sends the same stream in every mode; leak check off unless
  ``--leak flag``; hardening off);
- a load client (aiohttp on uvloop, its own process) that opens ``--streams`` concurrent streams per batch,
  reads each whole and checks it (status 200, the API's end marker, the reasoning marker present in
  ``pass`` and absent in ``omit``/``seal``).

Each round runs every API once per mode, the modes in a random order per API; the proxy's CPU time
(every thread's ``/proc/<pid>/task/*/schedstat``, in ns) is read before and after each batch. Per API and mode it prints
the proxy CPU per stream and per upstream event (medians over rounds) and ``pass/mode``, the median over
rounds of CPU(pass) / CPU(mode) within a round, with its range: the throughput ratio when the proxy is
CPU-bound. Target (issue 3): omit/seal >= 90 % of pass. With ``--memory``: RSS per open stream, each mode in
a fresh proxy process, ``--hold`` streams held open in the middle of their reasoning.

Run: .venv/bin/python tests/benchmarks/bench_redact_proxy.py [--quick] [--rounds N] [--streams N]
[--chunks N] [--pace-ms MS] [--only chat,think,responses,anthropic,gemini] [--leak off|flag] [--memory]
[--hold N] [--framer] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common
from common import ServerProc

ME = str(Path(__file__).resolve())
PROMPT = "Which is larger, 9.11 or 9.8? Explain the comparison of decimals carefully please."
MARKER = b"step by step"  # proxy.fake.content.REASONING_MARKER: in the reasoning, never in the answer
MODES = ("pass", "omit", "seal")
TIER_OF = {"pass": "trusted", "omit": "standard", "seal": "restricted"}

# name -> (path, request body, end marker of a complete stream)
APIS: dict[str, tuple[str, dict[str, Any], bytes]] = {
    "chat": ("/v1/chat/completions", {"model": "deepseek-reasoner", "stream": True,
                                      "messages": [{"role": "user", "content": PROMPT}]}, b"[DONE]"),
    "think": ("/v1/chat/completions", {"model": "qwen3-think", "stream": True,
                                       "messages": [{"role": "user", "content": PROMPT}]}, b"[DONE]"),
    "responses": ("/v1/responses", {"model": "o4-mini", "input": PROMPT, "stream": True,
                                    "reasoning": {"summary": "auto"}}, b"response.completed"),
    "anthropic": ("/v1/messages", {"model": "claude-x", "max_tokens": 8000, "stream": True,
                                   "messages": [{"role": "user", "content": PROMPT}],
                                   "thinking": {"type": "enabled", "budget_tokens": 4000}}, b"message_stop"),
    "gemini": ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
               {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                "generationConfig": {"thinkingConfig": {"includeThoughts": True}}}, b"finishReason"),
}
LABEL = {"chat": "Chat reasoning_content", "think": "Chat inline <think>", "responses": "Responses",
         "anthropic": "Anthropic", "gemini": "Gemini"}


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of ``pid`` in ns (``/proc/<pid>/task/*/schedstat``, first field): the
    scheduler's own accounting, finer than the 10 ms ticks of ``/proc/<pid>/stat``."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that ended in between
    return total


# --------------------------------------------------------------------------- client (its own process)


async def _stream(session: Any, url: str, body: bytes, headers: dict[str, str], end: bytes,
                  hides: bool) -> int:
    """One stream read whole and checked; returns its ``data:`` lines (events)."""
    async with session.post(url, data=body, headers=headers) as r:
        data = await r.read()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}: {data[:300]!r}")
    if end not in data:
        raise RuntimeError(f"stream without {end!r}: ...{data[-300:]!r}")
    if (MARKER in data) == hides:
        raise RuntimeError(f"reasoning marker {'present' if hides else 'absent'} in a "
                           f"{'hiding' if hides else 'pass'} stream")
    return data.count(b"data:")


async def _hold(session: Any, url: str, body: bytes, headers: dict[str, str], got: asyncio.Event) -> None:
    async with session.post(url, data=body, headers=headers) as r:
        if r.status != 200:
            raise RuntimeError(f"status {r.status}")
        async for _ in r.content.iter_any():
            got.set()
        got.set()


async def client_main() -> None:
    """Commands on stdin, one JSON object a line; one JSON answer a line on stdout."""
    import aiohttp

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                    timeout=aiohttp.ClientTimeout(total=600),
                                    cookie_jar=aiohttp.DummyCookieJar())
    loop = asyncio.get_running_loop()
    held: list[asyncio.Task[None]] = []
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line.strip():
                break
            cmd = orjson.loads(line)
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {cmd['key']}"}
            if cmd.get("pace_ms"):
                headers["x-fake-event-delay-ms"] = str(cmd["pace_ms"])
            body = orjson.dumps(cmd["body"])
            t0 = time.perf_counter()
            if cmd["op"] == "batch":
                res = await asyncio.gather(*(
                    _stream(session, cmd["url"], body, headers, cmd["end"].encode(), cmd["hides"])
                    for _ in range(cmd["streams"])))
                out: dict[str, Any] = {"events": res, "seconds": time.perf_counter() - t0}
            elif cmd["op"] == "hold":
                flags = [asyncio.Event() for _ in range(cmd["streams"])]
                held = [asyncio.ensure_future(_hold(session, cmd["url"], body, headers, f)) for f in flags]
                await asyncio.wait_for(asyncio.gather(*(f.wait() for f in flags)), 120)
                # Every stream has started; wait until the first ones are ``at_s`` into their stream.
                await asyncio.sleep(max(0.0, cmd["at_s"] - (time.perf_counter() - t0)))
                done = [t for t in held if t.done()]
                out = {"open": len(held) - len(done)}
            else:  # release
                for t in held:
                    t.cancel()
                await asyncio.gather(*held, return_exceptions=True)
                held = []
                out = {}
            sys.stdout.write(orjson.dumps(out).decode() + "\n")
            sys.stdout.flush()
    finally:
        for t in held:
            t.cancel()
        await session.close()


class Client:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, ME, "client"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, preexec_fn=common.raise_nofile)

    def call(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the client died (exit {self.proc.wait()}); see its stderr above")
        result: dict[str, Any] = orjson.loads(line)
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --------------------------------------------------------------------------- servers


class Setup:
    def __init__(self, workdir: Path, chunks: int, leak: str) -> None:
        self.dir = workdir
        self.leak = leak
        self.keys = {mode: "dg-bench-" + secrets.token_urlsafe(24) for mode in MODES}
        lines = ["accounts:"]
        for mode, key in self.keys.items():
            digest = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
            lines += [f"  - id: bench-{mode}", f"    tier: {TIER_OF[mode]}", f'    keys: ["{digest}"]']
        self.accounts = workdir / "accounts.yaml"
        self.accounts.write_text("\n".join(lines) + "\n")
        self.procs: list[ServerProc] = []
        self.upstream = self._start("upstream", lambda port: [
            sys.executable, "-m", "proxy.fake.upstream", "--port", str(port), "--chunks", str(chunks)])

    def _start(self, name: str, argv: Any) -> ServerProc:
        p = common.start_on_free_port(name, argv, log=self.dir / f"{name}.log")
        self.procs.append(p)
        return p

    def proxy(self, tag: str = "dg") -> ServerProc:
        cfg = self.dir / f"{tag}.yaml"

        def argv(port: int) -> list[str]:
            cfg.write_text(
                f'server:\n  listen: "127.0.0.1:{port}"\n'
                f"upstreams:\n  - name: fake\n    url: {self.upstream.url}\n    max_connections: 20000\n"
                f'accounts_file: "{self.accounts}"\n'
                "logging:\n  level: warning\n  access_log: off\n"
                "redaction:\n  tiers: {trusted: pass, standard: omit, restricted: seal}\n"
                f"  default_mode: pass\n  suppress_upstream: false\n  leak:\n    action: '{self.leak}'\n"
                "hardening:\n  tiers: {trusted: 'off', standard: 'off', restricted: 'off'}\n"
                "  default_profile: 'off'\n")
            return [sys.executable, "-m", "proxy", "serve", "--config", str(cfg)]

        return self._start(tag, argv)

    def stop(self, p: ServerProc) -> None:
        p.stop()
        self.procs.remove(p)

    def close(self) -> None:
        for p in list(self.procs):
            self.stop(p)


# --------------------------------------------------------------------------- phases


def batch(c: Client, s: Setup, dg: ServerProc, api: str, mode: str, streams: int, pace: float) -> tuple[
        float, int]:
    """One batch of ``streams`` concurrent streams: (proxy CPU seconds, upstream events per stream)."""
    path, body, end = APIS[api]
    cpu0 = cpu_ns(dg.pid)
    r = c.call(op="batch", url=dg.url + path, key=s.keys[mode], body=body, end=end.decode(),
               hides=mode != "pass", streams=streams, pace_ms=pace)
    cpu = (cpu_ns(dg.pid) - cpu0) / 1e9
    return cpu, max(r["events"])


def phase_cpu(c: Client, s: Setup, apis: list[str], args: argparse.Namespace) -> dict[str, Any]:
    dg = s.proxy()
    rng = random.Random(args.seed)
    cpu: dict[tuple[str, str], list[float]] = {(a, m): [] for a in apis for m in MODES}
    events: dict[str, int] = {}
    try:
        for a in apis:  # warm-up: caches, connection pool, the fake upstream's rendered streams
            for m in MODES:
                batch(c, s, dg, a, m, min(args.streams, 8), args.pace_ms)
        for rnd in range(args.rounds):
            order = list(apis)
            rng.shuffle(order)
            for a in order:
                modes = list(MODES)
                rng.shuffle(modes)
                for m in modes:
                    sec, ev = batch(c, s, dg, a, m, args.streams, args.pace_ms)
                    cpu[a, m].append(sec / args.streams)
                    if m == "pass":
                        events[a] = ev  # pass relays every upstream event
            print(f"  round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    finally:
        s.stop(dg)
    out: dict[str, Any] = {}
    for a in apis:
        n = events[a]
        base = cpu[a, "pass"]
        row: dict[str, Any] = {"events": n, "pass_us_stream": med(base) * 1e6, "pass_us_event": med(base) * 1e6 / n}
        for m in MODES[1:]:
            xs = cpu[a, m]
            ratios = [p / x for p, x in zip(base, xs, strict=True) if x > 0]
            diffs = [(x - p) * 1e6 / n for p, x in zip(base, xs, strict=True)]
            row[m] = {"us_stream": med(xs) * 1e6, "us_event": med(xs) * 1e6 / n,
                      "ratio": med(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                      "added_us_event": med(diffs), "rounds": [round(r, 3) for r in ratios]}
        out[a] = row
    return out


def phase_memory(c: Client, s: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """RSS per open stream: per mode a fresh proxy, ``--hold`` Chat streams held open in their reasoning (the
    upstream paced at 20 ms per event; RSS read once every stream has started and the first ones are ~70 %
    through their reasoning)."""
    path, body, _ = APIS["chat"]
    out: dict[str, Any] = {}
    for m in MODES:
        dg = s.proxy(f"dg-mem-{m}")
        try:
            url, key = dg.url + path, s.keys[m]
            c.call(op="batch", url=url, key=key, body=body, end="[DONE]", hides=m != "pass", streams=8,
                   pace_ms=0)
            time.sleep(0.2)
            before = dg.rss()
            r = c.call(op="hold", url=url, key=key, body=body, streams=args.hold, pace_ms=20,
                       at_s=args.chunks * 0.7 * 0.020)
            during = dg.rss()
            c.call(op="release", url=url, key=key, body=body)
            if r["open"] < args.hold:
                raise RuntimeError(f"memory {m}: only {r['open']} of {args.hold} streams stayed open")
            out[m] = {"kb_per_stream": (during - before) * 1.024 / args.hold, "rss_before_kib": before,
                      "rss_open_kib": during}
        finally:
            s.stop(dg)
    return out


def framer_cost(chunks: int, reps: int = 30) -> dict[str, tuple[float, float]]:
    """In process, what a hiding mode pays that the relay's plain mode does not: ``framer.feed`` +
    ``encode`` per event over a plain cut (``rfind`` of the separator, the usage probe) of the same 16 KiB
    reads. (min, median) µs per event over ``reps`` runs."""
    from bench_redact import _exchange, _stream

    from proxy.pipeline import Chain

    out = {}
    for name, dialect, model in (("chat", "openai_chat", "deepseek-reasoner"), ("responses", "openai_responses", ""),
                                 ("anthropic", "anthropic_messages", ""), ("gemini", "gemini", "")):
        _, data, body = _stream(dialect, chunks, model=model or "deepseek-reasoner")
        ex = _exchange(dialect, body, Chain([]))
        assert ex.dialect is not None
        reads = [data[i : i + 16384] for i in range(0, len(data), 16384)]
        per: list[float] = []
        for _ in range(reps):
            fr = ex.dialect.framer(ex, "text/event-stream")
            assert fr is not None
            n = 0
            t0 = time.thread_time()
            for chunk in reads:
                evs = fr.feed(chunk)
                n += len(evs)
                b"".join([fr.encode(e) for e in evs])
            t1 = time.thread_time()
            for chunk in reads:
                chunk.rfind(b"\n\n")
                _ = b"usage" in chunk
            t2 = time.thread_time()
            per.append(((t1 - t0) - (t2 - t1)) / n * 1e6)
        out[name] = (min(per), med(per))
    return out


# --------------------------------------------------------------------------- report


def report(cpu: dict[str, Any], mem: dict[str, Any] | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    figs: list[dict[str, Any]] = []
    print(f"\nbench_redact_proxy {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.rounds} rounds x "
          f"{args.streams} streams, {args.chunks}+{args.chunks} deltas, pace {args.pace_ms} ms, leak "
          f"{args.leak}; proxy CPU time (schedstat)")
    print(f"{'stream':24} {'mode':5} {'events':>6} {'us/stream':>10} {'us/event':>8} {'+us/ev':>7} "
          f"{'pass/mode':>9} {'range':>13}  target")
    for a, row in cpu.items():
        print(f"{LABEL[a]:24} {'pass':5} {row['events']:>6} {row['pass_us_stream']:>10.0f} "
              f"{row['pass_us_event']:>8.2f}")
        figs.append({"api": a, "mode": "pass", "us_stream": row["pass_us_stream"],
                     "us_event": row["pass_us_event"], "events": row["events"]})
        for m in MODES[1:]:
            f = row[m]
            ok = f["ratio"] >= 0.90
            print(f"{'':24} {m:5} {row['events']:>6} {f['us_stream']:>10.0f} {f['us_event']:>8.2f} "
                  f"{f['added_us_event']:>+7.2f} {f['ratio'] * 100:>8.1f}% "
                  f"{f['ratio_min'] * 100:>5.1f}-{f['ratio_max'] * 100:5.1f}%  >= 90 % {'PASS' if ok else 'FAIL'}")
            figs.append({"api": a, "mode": m, "events": row["events"], **{k: v for k, v in f.items() if k != "rounds"},
                         "rounds": f["rounds"], "ok": ok})
    if mem:
        print(f"\nRSS per open stream (Chat reasoning_content, {args.hold} held mid-reasoning, fresh proxy each):")
        for m, f in mem.items():
            print(f"  {m:5} {f['kb_per_stream']:7.1f} KB   (RSS {f['rss_before_kib'] / 1024:.1f} -> "
                  f"{f['rss_open_kib'] / 1024:.1f} MiB)")
            figs.append({"api": "chat", "mode": m, "kb_per_stream": f["kb_per_stream"]})
    return figs


def main() -> int:
    if sys.argv[1:2] == ["client"]:
        import uvloop

        uvloop.run(client_main())
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny counts: does it still run?")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--streams", type=int, default=24, help="concurrent streams per batch")
    ap.add_argument("--chunks", type=int, default=300, help="reasoning deltas (and as many answer deltas)")
    ap.add_argument("--pace-ms", type=float, default=0,
                    help="upstream delay between events (0: written back to back)")
    ap.add_argument("--only", default=",".join(APIS))
    ap.add_argument("--leak", choices=("off", "flag"), default="off")
    ap.add_argument("--memory", action="store_true", help="also RSS per open stream per mode")
    ap.add_argument("--hold", type=int, default=300, help="streams held open for --memory")
    ap.add_argument("--framer", action="store_true",
                    help="also the framer's own cost per event in process (feed + encode over a plain cut)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="also one JSON document (last line)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (configs, logs)")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.streams, args.chunks, args.hold = 2, 4, 20, 20
    apis = [a.strip() for a in args.only.split(",") if a.strip()]
    unknown = set(apis) - set(APIS)
    if unknown:
        ap.error(f"unknown --only {sorted(unknown)}; known: {','.join(APIS)}")
    workdir = Path(tempfile.mkdtemp(prefix="bench_redact_proxy_"))
    t0 = time.monotonic()
    s = c = None
    try:
        s = Setup(workdir, args.chunks, args.leak)
        c = Client()
        cpu = phase_cpu(c, s, apis, args)
        mem = phase_memory(c, s, args) if args.memory or args.quick else None
    finally:
        if c is not None:
            c.close()
        if s is not None:
            s.close()
        if args.keep:
            print(f"scratch folder kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    figs = report(cpu, mem, args)
    if args.framer or args.quick:
        print("\nframer.feed + encode over a plain cut, in process, 16 KiB reads (min / median of 30):")
        for name, (lo, mid) in framer_cost(args.chunks).items():
            print(f"  {LABEL[name]:24} {lo:5.2f} / {mid:5.2f} us/event")
            figs.append({"api": name, "framer_us_event": mid})
    print(f"({time.monotonic() - t0:.0f} s)")
    if args.json:
        print(orjson.dumps({"quick": args.quick, "rounds": args.rounds, "streams": args.streams,
                            "chunks": args.chunks, "pace_ms": args.pace_ms, "leak": args.leak,
                            "figures": figs}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
