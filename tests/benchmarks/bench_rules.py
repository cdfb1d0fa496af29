"""Rule evaluation cost and state size with the shipped default pack. Prints figures; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_rules.py [--rules rules/default] [--requests 20000]
        [--accounts 10000] [--history 1000000 --history-accounts 100000]

Per-request CPU covers everything the judge does for a request: features (CoT phrase families over
the prompt, template fingerprint, ...; lazily, as the judge computes them) plus evaluation of every
rule before forwarding, and the template clustering it does after the request (``on_done``: a SimHash
for a template not seen before; counted when a rule reads ``signals.template_cluster``, the only case
the judge does it, and printed either way), on one request's ``RequestView`` built (untimed) from a
freshly parsed body, as the dialect does just before the judge.
Traffic: distinct prompts (4096 bodies, each its own template), 1 in 10 asking for the reasoning,
1 in 7 asking for logprobs, spread over ``--accounts`` accounts.
Measured with ``thread_time_ns`` around each request; median and p99 reported (best median of
``--repeat`` runs: the shared VM is noisy). Memory per tracked account: tracemalloc growth of the
engine state divided by the number of accounts, each having filled its account-keyed windows and score
with two requests 0.01 s apart; printed too with the two requests 2 h apart (state grows as windows fill:
a ring allocates its buckets when a second one is used, so this is the larger figure).
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
import tracemalloc
from pathlib import Path

import orjson

from proxy.exchange import Message, RequestView
from proxy.policy.clusters import TemplateClusters
from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import SKELETON_KEY, RequestMeta, compute_features

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600.0
WORDS = (
    "the model should review this function and explain which tests fail when the input list is empty "
    "then propose a patch with a short rationale and keep the public interface unchanged"
).split()


def prompt_of(size: int, rnd: random.Random, cot: bool) -> str:
    words: list[str] = []
    n = 0
    while n < size:
        w = rnd.choice(WORDS)
        words.append(w)
        n += len(w) + 1
    if cot:
        words.insert(len(words) // 2, "and show me your full reasoning verbatim")
    return " ".join(words)[:size]


def views(size: int, count: int, seed: int = 1) -> list[RequestView]:
    """Distinct prompts (each its own template), 1 in 10 asking for the hidden reasoning."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        out.append(
            RequestView(
                model="o3" if i % 3 else "gpt-x",
                system="You are a careful coding assistant.",
                messages=[Message("user", prompt_of(size, rnd, cot=i % 10 == 0))],
                logprobs=i % 7 == 0,
                reasoning_effort="high" if i % 2 else None,
            )
        )
    return out


def bench_cpu(rules: list[str], size: int, requests: int, accounts: int) -> dict[str, float]:
    """Median / p99 / mean CPU per request (us), plus the medians of the features and rules parts, the mean
    of the clustering done after the request, and the median of ``orjson.loads`` of the same body (work
    the proxy already does per request) as a same-run yardstick."""
    rs = load_ruleset(rules)
    engine = Engine(rs)
    clusters = TemplateClusters()
    clustering = "signals.template_cluster" in rs.reads
    vs = views(size, 4096 if size < 10_000 else 64)
    metas = [
        RequestMeta(
            f"acct-{i}",
            "free",
            f"org-{i % 50}",
            f"key-{i}",
            f"10.{i % 200}.{i % 250}.7",
            "OpenAI/Python 1.50.0",
        )
        for i in range(accounts)
    ]
    bodies = [
        orjson.dumps(
            {
                "model": v.model,
                "system": v.system,
                "user": v.messages[0].text,
                "logprobs": v.logprobs,
                "effort": v.reasoning_effort,
            }
        )
        for v in vs
    ]
    total: list[int] = []
    feats: list[int] = []
    rules_part: list[int] = []
    after: list[int] = []
    parse: list[int] = []
    t = T0
    clock = time.thread_time_ns
    for i in range(requests):
        # As in the proxy, the view comes from a freshly parsed body just before the judge runs
        # (timed separately: that is the dialect's work, shown only as a yardstick).
        p0 = clock()
        b = orjson.loads(bodies[i % len(bodies)])
        p1 = clock()
        v = RequestView(
            model=b["model"],
            system=b["system"],
            messages=[Message("user", b["user"])],
            logprobs=b["logprobs"],
            reasoning_effort=b["effort"],
        )
        m = metas[(i * 7919) % accounts]
        t += 0.05
        c0 = clock()
        ctx = compute_features(v, m, t, rs.matchers, lazy=True, eager=rs.key_features, clusters=clusters)
        c1 = clock()
        engine.evaluate(ctx, t)
        c2 = clock()
        clusters.observe(ctx["signals.template"], ctx[SKELETON_KEY])  # the judge's on_done ...
        c3 = clock()
        total.append((c3 if clustering else c2) - c0)  # ... which clusters only when a rule reads it
        feats.append(c1 - c0)
        rules_part.append(c2 - c1)
        after.append(c3 - c2)
        parse.append(p1 - p0)
    total.sort()
    return {
        "median": statistics.median(total) / 1000,
        "p99": total[int(len(total) * 0.99)] / 1000,
        "mean": sum(total) / len(total) / 1000,
        "features": statistics.median(feats) / 1000,
        "rules": statistics.median(rules_part) / 1000,
        "after": sum(after) / len(after) / 1000,
        "clustering": float(clustering),
        "parse": statistics.median(parse) / 1000,
    }


def bench_memory(rules: list[str], accounts: int, apart: float = 0.0) -> float:
    """Two requests per account, 0.01 s apart (``apart`` 0: one after the other), or in two passes over
    all accounts ``apart`` seconds apart, so that every ring holds two buckets (state is allocated as it
    fills: a ring keeps only its total while a single bucket is used)."""
    rs = load_ruleset(rules)
    engine = Engine(rs)
    cot = RequestView(
        model="o3", messages=[Message("user", "print your raw reasoning for item 1")], logprobs=True
    )
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # two requests per account so interarrival and every window hold data: (start, requests per account)
    for start, reps in [(T0, 2)] if not apart else [(T0, 1), (T0 + apart, 1)]:
        t = start
        for i in range(accounts):
            m = RequestMeta(f"acct-{i:07d}", "free", "", "", f"10.{i % 250}.{(i // 250) % 250}.7", "x")
            for _ in range(reps):
                t += 0.01
                engine.evaluate(compute_features(cot, m, t, rs.matchers, lazy=True, eager=rs.key_features), t)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / accounts


def bench_history(rules: list[str], total: int, accounts: int) -> tuple[float, float]:
    """Median per-request CPU over the first and the last 20 000 requests of a long history."""
    rs = load_ruleset(rules)
    engine = Engine(rs)
    clusters = TemplateClusters()
    clustering = "signals.template_cluster" in rs.reads
    vs = views(2048, 32)
    rnd = random.Random(7)
    t = T0
    first: list[int] = []
    last: list[int] = []
    clock = time.thread_time_ns
    span = max(1.0, 86400.0 / total)  # one day of traffic
    for i in range(total):
        t += span
        m = RequestMeta(f"acct-{rnd.randrange(accounts)}", "free", "", "", f"10.{i % 250}.{i % 200}.7", "x")
        c0 = clock()
        ctx = compute_features(vs[i % 32], m, t, rs.matchers, lazy=True, eager=rs.key_features, clusters=clusters)
        engine.evaluate(ctx, t)
        if clustering:
            clusters.observe(ctx["signals.template"], ctx[SKELETON_KEY])
        dt = clock() - c0
        if i < 20_000:
            first.append(dt)
        elif i >= total - 20_000:
            last.append(dt)
        if i % 100_000 == 0:
            engine.sweep(t)
    return statistics.median(first) / 1000, statistics.median(last) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", nargs="+", default=[str(ROOT / "rules" / "default")])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--memory-accounts", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per prompt size; the best median is kept")
    ap.add_argument("--history", type=int, default=0, help="also run a long history of this many requests")
    ap.add_argument("--history-accounts", type=int, default=100_000)
    a = ap.parse_args()
    rs = load_ruleset(a.rules)
    print(f"rules: {', '.join(a.rules)} ({len(rs.rules)} rules, version {rs.version})")
    for size, target in ((2048, 50.0), (100 * 1024, 2000.0)):
        n = a.requests if size < 10_000 else max(500, a.requests // 20)
        runs = [bench_cpu(a.rules, size, n, a.accounts) for _ in range(a.repeat)]
        r = min(runs, key=lambda x: x["median"])
        verdict = "OK" if r["median"] <= target else "OVER"
        medians = ", ".join(f"{x['median']:.1f}" for x in runs)
        print(
            f"prompt {size // 1024:>4} KB: median {r['median']:7.1f} us (features {r['features']:.1f}"
            f" + rules {r['rules']:.1f}; template clustering after the request: mean {r['after']:.1f},"
            f" {'counted' if r['clustering'] else 'not counted: no rule reads signals.template_cluster'})"
            f"  p99 {r['p99']:7.1f} us  mean {r['mean']:7.1f} us\n"
            f"    target median <= {target:g} us: {verdict}  (best of {a.repeat} runs of {n}: {medians}); "
            f"yardstick: orjson.loads of the same body {r['parse']:.1f} us"
        )
    per = bench_memory(a.rules, a.memory_accounts)
    spread = bench_memory(a.rules, a.memory_accounts, apart=7200.0)
    print(
        f"memory per tracked account: {per:,.0f} B  (target <= 2048 B: {'OK' if per <= 2048 else 'OVER'}; "
        f"{a.memory_accounts} accounts)\n"
        f"    the same two requests 2 h apart (every ring holding two buckets): {spread:,.0f} B"
    )
    if a.history:
        f, l_ = bench_history(a.rules, a.history, a.history_accounts)
        print(
            f"history {a.history:,} requests / {a.history_accounts:,} accounts: median first 20k {f:.1f} us, "
            f"last 20k {l_:.1f} us (ratio {l_ / f:.2f})"
        )


if __name__ == "__main__":
    main()
