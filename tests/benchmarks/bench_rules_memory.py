"""Where the rule engine's memory goes, per tracked account and per cluster key. Prints figures; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_rules_memory.py [--accounts 2000] [--sites] [--prior N] [--order 2n-first]
    PYTHONPATH=/tmp/other-tree .venv/bin/python tests/benchmarks/bench_rules_memory.py   # another tree's proxy/

Traffic: ``bench_rules.bench_active_memory``'s active accounts (8 requests an hour apart from the 2 KB
prompts, 16 accounts per /24), run with ``--accounts`` accounts and again with twice as many, where the
second half repeats the first's requests (same prompts, addresses and times) under other account ids.

- **per account (marginal)**: (engine state with 2N accounts - with N) / N. Cluster-keyed state (prefix,
  /24, prefix@/24) is the same size in both runs except for what one more account adds to it (its id in
  their distinct sets), so this is what a tracked account costs, cluster sets included. Split by rule
  (deep ``sys.getsizeof`` of each rule's window states, the account ids themselves not charged: the
  account table holds them; with the store's shared rows, ``rows <feature>`` is their tables and row
  tuples) and by table (scores, actions, bans).
- **average**: all engine state with 2N accounts / 2N: cluster-keyed state spread over the accounts.
- **per cluster key**: for each rule not keyed by account, keys and bytes per key (mean, max).
- ``--sites``: tracemalloc's allocation sites whose memory differs most between the 2N and the N run, per
  account (the marginal split by the line that allocated it). A site outside the rule state (``signals.py``'s
  ``sys.intern``, a memo) is process-wide memory that one run allocated and the other did not: CPython
  resizes a table such as the interpreter's interned strings only every so many insertions, so whether a
  resize falls inside the N or the 2N run depends on what the process did before (``--prior``).
- ``--prior N``: first run ``bench_rules.bench_cpu`` over N 2 KB requests (the history ``bench_rules.py`` runs
  before its memory figures); ``--order n-first|2n-first``: which run goes first (``bench_rules``: 2N).
- ``--history N --history-accounts M``: ``bench_rules.bench_history`` (median CPU per request in each
  tenth of N requests over M accounts, idle state swept every 100 000) with the process's RSS before and
  its peak after (``ru_maxrss``), then the memory figures are skipped.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_rules

from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import RequestMeta, compute_features


def deep(o: Any, seen: set[int]) -> int:
    """Bytes of ``o`` and everything it holds that is not in ``seen`` (each object counted once)."""
    if id(o) in seen:
        return 0
    seen.add(id(o))
    n = sys.getsizeof(o)
    if isinstance(o, dict):
        n += sum(deep(k, seen) + deep(v, seen) for k, v in o.items())
    elif isinstance(o, (list, tuple, set, frozenset)):
        n += sum(deep(v, seen) for v in o)
    elif not isinstance(o, (str, bytes, int, float)):
        for name in getattr(type(o), "__slots__", ()):
            if hasattr(o, name):
                n += deep(getattr(o, name), seen)
    return n


def run(rules: list[str], accounts: int, n_accounts: int) -> dict[str, Any]:
    rs = load_ruleset(rules)
    engine = Engine(rs)
    vs = bench_rules.views(2048, 64)
    metas = [
        RequestMeta(f"acct-{i:07d}", "free", "", "", f"10.{(i % accounts) // 16 % 250}.{i % accounts // 4000}.7",
                    "OpenAI/Python 1.50.0")
        for i in range(n_accounts)
    ]
    gc.collect()
    tracemalloc.start(1)
    base = tracemalloc.get_traced_memory()[0]
    for h in range(8):
        for i in range(accounts):
            t = bench_rules.T0 + h * 3600 + i * (3600 / 2 / accounts)
            v = vs[(i + h) % len(vs)]
            for m in metas[i::accounts]:
                engine.evaluate(compute_features(v, m, t, rs.matchers, lazy=True, eager=rs.key_features), t)
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0] - base
    sites: dict[str, int] = {}  # allocation site -> bytes still held that were allocated during the run
    for st in tracemalloc.take_snapshot().statistics("lineno"):
        fr = st.traceback[0]
        site = f"{fr.filename.rsplit('/', 2)[-1]}:{fr.lineno}"
        sites[site] = sites.get(site, 0) + st.size
    tracemalloc.stop()
    store = engine.store
    skip = {id(x) for m in metas for x in (m.account_id, m.ip, m.org)}
    by: dict[str, int] = {}
    keys: dict[str, list[int]] = {}
    for r in rs.rules:
        per = store.windows.get(r.fingerprint, {})
        # a rule's states (and, with a table of its own per rule, that table and its tuples)
        seen = set(skip)
        by[r.id] = deep(per, seen) if isinstance(per, dict) else sum(deep(x, seen) for v in per.values() for x in v)
        if r.key != "account.id" and per:
            keys[r.id] = [deep(v, set(skip)) + sys.getsizeof(k) for k, v in per.items()]
    for feat, table in getattr(store, "rows", {}).items():  # shared rows: the tables and row tuples only
        by["rows " + feat] = sys.getsizeof(table) + sum(sys.getsizeof(row) for row in table.values())
    for name in ("scores", "active", "bans"):
        by[name] = deep(getattr(store, name), set(skip))
    return {"traced": traced, "by": by, "keys": keys, "sites": sites}


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", nargs="+", default=[str(bench_rules.ROOT / "rules" / "default")])
    ap.add_argument("--accounts", type=int, default=2000)
    ap.add_argument("--sites", action="store_true")
    ap.add_argument("--prior", type=int, default=0)
    ap.add_argument("--order", choices=("n-first", "2n-first"), default="n-first")
    ap.add_argument("--history", type=int, default=0)
    ap.add_argument("--history-accounts", type=int, default=100_000)
    a = ap.parse_args()
    import proxy

    print(f"proxy from {Path(proxy.__file__).parent}; rules {', '.join(a.rules)}")
    if a.history:
        rss0 = rss_kib()
        tenths = bench_rules.bench_history(a.rules, a.history, a.history_accounts)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"history {a.history:,} requests / {a.history_accounts:,} accounts: median us per tenth "
              + ", ".join(f"{x:.1f}" for x in tenths)
              + f"; last / second tenth {tenths[-1] / tenths[1]:.2f}, last / first {tenths[-1] / tenths[0]:.2f}")
        print(f"RSS before {rss0 / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (+{(peak - rss0) / 1024:.1f} MiB: "
              f"{(peak - rss0) * 1024 / a.history_accounts:,.0f} B per account)")
        return
    n = a.accounts
    if a.prior:
        bench_rules.bench_cpu(a.rules, 2048, a.prior, 2000, "prose")
    if a.order == "n-first":
        one = run(a.rules, n, n)
        two = run(a.rules, n, 2 * n)
    else:
        two = run(a.rules, n, 2 * n)
        one = run(a.rules, n, n)
    print(f"prior {a.prior:,} requests, {a.order}")
    total = 0.0
    print(f"per active account, marginal ({n} -> {2 * n} accounts), deep sizes by table:")
    for name, b in two["by"].items():
        d = (b - one["by"][name]) / n
        total += d
        if abs(d) >= 0.5:
            print(f"    {name:<28} {d:8.0f} B")
    print(f"  total {total:,.0f} B (deep sizes); tracemalloc {(two['traced'] - one['traced']) / n:,.0f} B "
          f"(target <= 2048 B)")
    print(f"average: all engine state / accounts: {two['traced'] / (2 * n):,.0f} B ({2 * n} accounts)")
    print("per cluster key (2N run): rule: keys, mean B/key, max B/key")
    for rid, sizes in two["keys"].items():
        print(f"    {rid:<28} {len(sizes):6d} keys  mean {sum(sizes) / len(sizes):8,.0f}  max {max(sizes):8,}")
    if a.sites:
        s1, s2 = one["sites"], two["sites"]
        diff = sorted(((s2.get(k, 0) - s1.get(k, 0)) / n, k) for k in s1.keys() | s2.keys())
        print("allocation sites, (2N run - N run) / N, largest first:")
        for per, site in sorted(diff, key=lambda x: -abs(x[0]))[:16]:
            print(f"    site {site:<40} {per:8.1f} B/account")


if __name__ == "__main__":
    main()
