"""Rule evaluation cost and state size with the shipped default pack. Prints figures; asserts nothing.

    .venv/bin/python tests/benchmarks/bench_rules.py [--rules rules/default] [--requests 20000]
        [--accounts 10000] [--active-accounts 4000] [--history 1000000 --history-accounts 100000]
    .venv/bin/python tests/benchmarks/bench_rules.py --judge-instructions   # needs valgrind, ~4 min

Per-request CPU covers everything the judge does for a request: features (CoT phrase families over
the prompt, template fingerprint, ...; lazily, as the judge computes them) plus evaluation of every
rule before forwarding, and the template clustering it does after the request (``on_done``: a SimHash
for a template not seen before; counted when a rule reads ``signals.template_cluster``, the only case
the judge does it, and printed either way), on one request's ``RequestView`` built (untimed) from a
freshly parsed body, as the dialect does just before the judge.
Traffic: distinct prompts (2 KB: one per request; 100 KB: 256, repeated; each its own template), 1 in 10 asking
for the reasoning, 1 in 7 asking for logprobs, spread over ``--accounts`` accounts. Text: ``--corpus`` prose
(realistic, ``Corpus``), synthetic (the old 30-word vocabulary) or both (default: both, in the same run);
the first ``COLD`` requests of a run are reported apart (RE2 DFA warm-up). ``--pattern-groups`` prints the cost
of the shared prompt pass, before and after its split (``matchers.PARTS``; the trace group answered by the
trace-noun search, ``cot.prompt_spans``, as ``compiler`` lays it out), per part and per pattern group.
Measured with ``thread_time_ns`` around each request; median and p99 reported (best median of
``--repeat`` runs: the shared VM is noisy). Memory per tracked account: tracemalloc growth of the
engine state divided by the number of accounts, each having filled its account-keyed windows and score
with two requests 0.01 s apart; printed too with the two requests 2 h apart (state grows as windows fill:
a ring allocates its buckets when a second one is used, so this is the larger figure), and for an
*active* account (``bench_active_memory``: 8 requests an hour apart, the marginal cost of one more such
account). ``--history`` prints the median per tenth of a long history (flat once state is in use).
``--judge-instructions`` counts, with callgrind, the instructions of each part of the path the rule pack
adds to bench_proxy's phase-8 request (dialect view, features, rules, judge hooks, the harden and redact
filters that come with rules, the buffered answer parsed for them): where a proxied request's time goes
beyond features + rules.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any

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


CORPORA = ("prose", "synthetic")
CURIOUS = 16  # 1 prose prompt in CURIOUS mentions reasoning innocently (~6 %, the simulator's reasoning_curious)
COLD = 1000  # requests of each run counted as warm-up (RE2 builds its DFA states as new text comes in)
# Frequent English words (function words first: a Zipf draw over this list puts them on top, as in prose).
COMMON = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no will more can who some out about into "
    "them than its only other also time new two may these then could should first any like our over such where "
    "most after between many well before must through back years much way because people same while still under "
    "work system data user model code test file value function error request service result number state change "
    "report problem question answer team customer price order account process support version table query field "
    "list page server client network memory cache update review design market policy energy water health school "
    "city river history music language science paper budget project meeting plan contract invoice shipment"
).split()
_SYLLABLES = ("ka re to mi sa lo ne vi du pa gor tin bel mar fen dro qui lax zu hem ost rin cal pe ward ship ness "
              "tion ing er al ic ous ment").split()


def _lexicon(rnd: random.Random, n: int = 20_000) -> list[str]:
    """``n`` invented content words (2-4 syllables): a large vocabulary, as real prose has."""
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rnd.choice(_SYLLABLES) for _ in range(rnd.randint(2, 4))))
    words = sorted(out)
    rnd.shuffle(words)  # the Zipf rank is random, not alphabetical
    return words


def _real_sentences() -> tuple[list[str], list[str]]:
    """The repo's own realistic text: the simulator personas' prompts, filled in; and every benign phrasing
    of the dev split (prompts that mention reasoning innocently: they wake the concept detector)."""
    from proxy.sim import personas
    from proxy.sim.phrasings import load_benign

    rnd = random.Random(3)
    out: list[str] = []
    for name in ("ASKS", "MULTI", "AGENT_TASKS", "CAMPAIGN_ASKS", "SLOW_ASKS", "AUTOMATION_TEMPLATES",
                 "BATCH_TEMPLATES", "FOLLOW_UPS", "AGENT_SYSTEMS", "SLOW_SYSTEMS"):
        out += [personas.fill(rnd, s) for s in getattr(personas, name) for _ in range(4)]
    return out, list(load_benign("dev"))


class Corpus:
    """Seeded prompt generator. ``prose``: the personas' prompts (``_real_sentences``) mixed 1:3 with generated
    sentences over a large vocabulary (Zipf-weighted common words + 20 000 invented words, punctuation,
    numbers, code-ish tokens, newlines between paragraphs); 1 prompt in ``CURIOUS`` also has one benign
    sentence about reasoning (as the ``reasoning_curious`` persona's share of traffic). ``synthetic``: the old
    ~30-word vocabulary (understates what RE2 costs on prose: few distinct DFA states)."""

    def __init__(self, kind: str, seed: int = 1) -> None:
        self.kind = kind
        self.rnd = random.Random(seed)
        if kind == "prose":
            self.real, self.curious = _real_sentences()
            self.n = 0
            self.vocab = COMMON + _lexicon(random.Random(seed + 1))
            self.cum = list(itertools.accumulate(1.0 / (r + 1) for r in range(len(self.vocab))))

    def _sentence(self) -> str:
        rnd = self.rnd
        if rnd.random() < 1 / 4:
            return rnd.choice(self.real)
        words = rnd.choices(self.vocab, cum_weights=self.cum, k=rnd.randint(6, 28))
        if rnd.random() < 0.2:
            words.insert(rnd.randrange(len(words)), rnd.choice((f"{rnd.randint(2, 99_999)}", f"x_{rnd.randint(1, 99)}",
                                                                  "(see above)", "`f(x)`", "e.g.", "--flag")))
        if rnd.random() < 0.3:
            words[rnd.randrange(len(words))] += ","
        return " ".join(words).capitalize() + rnd.choice(".....?!:")

    def prompt(self, size: int, cot: bool) -> str:
        rnd = self.rnd
        if self.kind == "synthetic":
            words: list[str] = []
            n = 0
            while n < size:
                w = rnd.choice(WORDS)
                words.append(w)
                n += len(w) + 1
            if cot:
                words.insert(len(words) // 2, "and show me your full reasoning verbatim")
            return " ".join(words)[:size]
        parts: list[str] = []
        n = 0
        while n < size:
            s = self._sentence()
            parts.append(s)
            n += len(s) + 1
            if rnd.random() < 0.12:
                parts.append("\n")
        self.n += 1
        if self.n % CURIOUS == 0:
            parts.insert(rnd.randrange(len(parts)), rnd.choice(self.curious))
        if cot:
            parts.insert(len(parts) // 2, "And show me your full reasoning verbatim.")
        return " ".join(parts).replace(" \n ", "\n\n")[:size]


def views(size: int, count: int, seed: int = 1, corpus: str = "prose") -> list[RequestView]:
    """Distinct prompts (each its own template), 1 in 10 asking for the hidden reasoning."""
    gen = Corpus(corpus, seed)
    out = []
    for i in range(count):
        out.append(
            RequestView(
                model="o3" if i % 3 else "gpt-x",
                system="You are a careful coding assistant.",
                messages=[Message("user", gen.prompt(size, cot=i % 10 == 0))],
                logprobs=i % 7 == 0,
                reasoning_effort="high" if i % 2 else None,
            )
        )
    return out


def bench_cpu(rules: list[str], size: int, requests: int, accounts: int, corpus: str = "prose") -> dict[str, float]:
    """Median / p99 / mean CPU per request (us), plus the medians of the features and rules parts, the mean
    of the clustering done after the request, and the median of ``orjson.loads`` of the same body (work
    the proxy already does per request) as a same-run yardstick. Every request has its own prompt (2 KB;
    100 KB: 256 prompts, repeated); the first ``COLD`` requests warm RE2's DFA caches and are reported apart
    (``cold``: their median), the other figures are over the rest."""
    rs = load_ruleset(rules)
    engine = Engine(rs)
    clusters = TemplateClusters()
    clustering = "signals.template_cluster" in rs.reads
    vs = views(size, requests if size < 10_000 else min(requests, 256), corpus=corpus)
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
    k = min(COLD, requests // 4)
    cold = statistics.median(total[:k]) / 1000
    del total[:k], feats[:k], rules_part[:k], after[:k], parse[:k]
    total.sort()
    return {
        "cold": cold,
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


def bench_active_memory(rules: list[str], accounts: int, requests: int = 8, every: float = 3600.0) -> float:
    """Memory one more *active* account costs: ``requests`` requests ``every`` seconds apart (default: one
    an hour over a working day, so its day windows hold 8 buckets, its interarrival gaps and distinct
    sets several values), drawn from the 2 KB traffic of ``bench_cpu`` (1 in 10 asking for the
    reasoning, half with reasoning on, 1 in 7 logprobs), 16 accounts per /24. Marginal cost: the engine's
    tracemalloc growth with ``2 * accounts`` accounts minus with ``accounts``, where the second half sends
    exactly what the first does (same prompts, addresses and times) under other account ids, so state
    keyed by template, prefix or address is the same in both runs and only what a tracked account adds
    remains: its windows, score and actions, and its id in other keys' distinct sets."""

    def run(n_accounts: int) -> int:
        rs = load_ruleset(rules)
        engine = Engine(rs)
        vs = views(2048, 64)
        mirror = n_accounts > accounts
        metas = [
            RequestMeta(f"acct-{i:07d}", "free", "", "", f"10.{(i % accounts) // 16 % 250}.{i % accounts // 4000}.7",
                        "OpenAI/Python 1.50.0")
            for i in range(n_accounts)
        ]
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for h in range(requests):
            for i in range(accounts):
                t = T0 + h * every + i * (every / 2 / accounts)
                v = vs[(i + h) % len(vs)]
                for m in (metas[i], metas[i + accounts]) if mirror else (metas[i],):
                    engine.evaluate(compute_features(v, m, t, rs.matchers, lazy=True, eager=rs.key_features), t)
        gc.collect()
        grown: int = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del engine, metas
        return grown

    return (run(2 * accounts) - run(accounts)) / accounts


def bench_history(rules: list[str], total: int, accounts: int, parts: int = 10) -> list[float]:
    """Median per-request CPU (us) in each tenth of a long history of ``total`` requests from ``accounts``
    accounts (a day of traffic, at most one request a second). The first tenth starts from empty state
    (most requests create their account's windows); flat means the later tenths stay level once every
    account's windows are in use.
    Idle state is swept every 100 000 requests, as the judge does every minute."""
    rs = load_ruleset(rules)
    engine = Engine(rs)
    clusters = TemplateClusters()
    clustering = "signals.template_cluster" in rs.reads
    vs = views(2048, 32)
    rnd = random.Random(7)
    t = T0
    block = max(1, total // parts)
    samples: list[list[int]] = [[] for _ in range(parts)]
    clock = time.thread_time_ns
    span = max(1.0, 86400.0 / total)  # one day of traffic, or one request a second (1M: 11.6 days)
    for i in range(total):
        t += span
        m = RequestMeta(f"acct-{rnd.randrange(accounts)}", "free", "", "", f"10.{i % 250}.{i % 200}.7", "x")
        c0 = clock()
        ctx = compute_features(vs[i % 32], m, t, rs.matchers, lazy=True, eager=rs.key_features, clusters=clusters)
        engine.evaluate(ctx, t)
        if clustering:
            clusters.observe(ctx["signals.template"], ctx[SKELETON_KEY])
        samples[min(parts - 1, i // block)].append(clock() - c0)
        if i % 100_000 == 0:
            engine.sweep(t)
    return [statistics.median(x) / 1000 for x in samples if x]


def _timed(match: Any, inputs: list[bytes]) -> list[int]:
    """``match`` run on each input: the thread CPU time of each call (ns), sorted."""
    clock = time.thread_time_ns
    ts = []
    for b in inputs:
        c0 = clock()
        match(b)
        ts.append(clock() - c0)
    ts.sort()
    return ts


def pattern_groups(n: int) -> None:
    """CPU per 2 KB prose prompt of the shared prompt pass as shipped (``PatternSet`` split in ``PARTS``),
    as one RE2 set (the layout before the split), of each part alone and of each group alone (its own set),
    over ``n`` distinct prompts after ``COLD`` others (cold: their median)."""
    import re2

    from proxy.policy import cot
    from proxy.policy.compiler import builtin_groups, builtin_layout
    from proxy.policy.matchers import PatternSet, re2_options
    from proxy.policy.signals import BUILTIN_GROUPS

    gen = Corpus("prose", 11)
    warm = [gen.prompt(2048, i % 10 == 0).encode() for i in range(COLD)]
    meas = [gen.prompt(2048, i % 10 == 0).encode() for i in range(min(n, 3000))]

    def one_set(patterns: list[str]) -> Any:
        s = re2.Set.SearchSet(re2_options())
        for p in patterns:
            s.Add(p)
        s.Compile()
        return s

    def show(label: str, match: Any) -> None:
        cold, ts = _timed(match, warm), _timed(match, meas)
        print(f"  {label:<44} median {statistics.median(ts) / 1000:7.1f} us  p90 {ts[len(ts) * 9 // 10] / 1000:7.1f}"
              f"  cold {statistics.median(cold) / 1000:7.1f}", flush=True)

    print(f"shared prompt pass, {len(meas)} distinct 2 KB prose prompts after {COLD} (cold):")
    # As the rule pack compiles it (``compiler.builtin_layout``): the trace group answered by the trace-noun search
    # (``cot.prompt_spans``), the rest in the parts of ``matchers.PARTS`` (the words part in the shapes' set).
    in_sets, layout = builtin_groups(), builtin_layout()
    shipped = PatternSet.build(in_sets, layout)
    show(f"as shipped ({len(shipped.parts)} passes + the trace-noun search)",
         lambda d: (shipped.match(d), cot.prompt_spans(d)))
    show("the trace-noun search alone (cot.prompt_spans)", cot.prompt_spans)
    show("one RE2 set over every group (before the split)", one_set([p for _, ps in BUILTIN_GROUPS for p in ps]).Match)
    show(f"as matchers.PARTS lays it out ({len(PatternSet.build(BUILTIN_GROUPS).parts)} passes, trace group in a set)",
         PatternSet.build(BUILTIN_GROUPS).match)
    for part in sorted({layout.get(n, "") for n, _ in in_sets}):
        sub = PatternSet.build([g for g in in_sets if layout.get(g[0], "") == part], layout)
        show(f"part {part or '(default)'} ({len(sub.owners)} patterns)", sub.match)
    for name, ps in BUILTIN_GROUPS:
        show(f"group {name} ({len(ps)}), own set", one_set(list(ps)).Match)


def cot_sets(n: int) -> None:
    """CPU of the CoT detector's own matchers (``cot._GroupSet``) as shipped against the same patterns in one RE2
    set (the layout before), on the inputs the detector gives them over 2 KB prose prompts: the sentence windows
    ``cot.scan`` builds around trace nouns (``_WINDOW``), whole prompts (``_STRUCT``, ``_GLOBAL``). Also checks
    that both answer the same for every input (a difference is printed and fails the run)."""
    import re2

    from proxy.policy import cot
    from proxy.policy.matchers import re2_options

    gen = Corpus("prose", 13)
    texts = [gen.prompt(2048, i % 10 == 0).encode() for i in range(COLD + min(n, 3000))]
    windows: list[bytes] = []
    for d in texts:
        for s, e in cot._occurrences(d):
            lo, hi = cot._sentence(d, s, e)
            windows.append(b"".join((d[lo:s], b"\x00", d[e:hi])))

    def one_set(gs: Any) -> Any:
        rset = re2.Set.SearchSet(re2_options())
        for _, p in gs.items:
            rset.Add(p)
        rset.Compile()
        return lambda d: {gs.items[i][0] for i in rset.Match(d) or ()}

    bad = 0
    cases = (("_WINDOW (sentence windows)", cot._WINDOW, windows), ("_STRUCT (whole prompt)", cot._STRUCT, texts),
             ("_GLOBAL (whole prompt)", cot._GLOBAL, texts))
    for label, gs, inputs in cases:
        old = one_set(gs)
        k = len(inputs) * COLD // len(texts)
        print(f"{label}: {len(inputs) - k} inputs of {statistics.mean(map(len, inputs)):.0f} B after {k} (cold)")
        for how, match in (("as shipped", gs.hits), ("one RE2 set", old)):
            _timed(match, inputs[:k])
            ts = _timed(match, inputs[k:])
            print(f"  {how:<12} median {statistics.median(ts) / 1000:7.1f} us  p90 {ts[len(ts) * 9 // 10] / 1000:7.1f}"
                  f"  mean {sum(ts) / len(ts) / 1000:7.1f}", flush=True)
        diff = sum(gs.hits(d) != old(d) for d in inputs)
        bad += diff
        print(f"  inputs where the two answer differently: {diff}")
    if bad:
        raise SystemExit(1)


# Stages of ``compute_features`` timed by ``--features``: (label, module, function name), the module attribute the
# callers look up at call time (``signals`` calls the detector through ``signals.cot_detector``, the detector its own
# helpers through ``cot``). Nested stages are indented under their caller.
FEATURE_STAGES = (
    ("matchers.run: the shared prompt pass (rule matchers + phrase families)", "matchers", "run"),
    ("cot.prompt_spans: trace-noun search over the prompt", "cot", "prompt_spans"),
    ("cot.families: the concept detector, all of it", "cot", "families"),
    ("  cot.detect (user text)", "cot", "detect"),
    ("    cot.scan (sentence windows around trace nouns)", "cot", "scan"),
    ("    cot.scan_hidden (hiddenness anchors)", "cot", "scan_hidden"),
    ("    cot.derived_views (decoded views)", "cot", "derived_views"),
    ("  cot.confirmed (learned model backs a lexical hit)", "cot", "confirmed"),
    ("  cot.detect_system (system prompt, memoised)", "cot", "detect_system"),
    ("  cot.learned (learned model after a lexical no)", "cot", "learned"),
    ("signals.template_skeleton", "signals", "template_skeleton"),
    ("signals.fingerprints (template + prefix hashes)", "signals", "fingerprints"),
)


def feature_breakdown(size: int, requests: int, corpus: str = "prose") -> None:
    """Where ``compute_features`` spends its CPU, stage by stage (``FEATURE_STAGES``), on the traffic of ``bench_cpu``
    (distinct prompts; 100 KB: 256 repeated) after ``COLD`` warm-up requests. Each stage is wrapped in a
    ``thread_time_ns`` pair (about 1 us of the clock's own cost per timed call, so small stages read high); the
    total is measured without the wrappers first, in the same process on traffic of the same kind but other prompts
    (RE2 runs faster over text it has seen: its DFA states are built). Per stage: its calls per request, the median
    of those calls and its mean per request (what it adds to the mean)."""
    from proxy.policy import cot, matchers, signals

    modules = {"cot": cot, "matchers": matchers, "signals": signals}
    rs = load_ruleset([str(ROOT / "rules" / "default")])
    count = requests if size < 10_000 else min(requests, 256)
    meta = RequestMeta("acct-1", "free", "org-1", "key-1", "10.1.2.7", "OpenAI/Python 1.50.0")
    clock = time.thread_time_ns
    k = min(COLD, requests // 4)

    calls: dict[str, list[int]] = {label: [] for label, _, _ in FEATURE_STAGES}

    def run(seed: int) -> list[int]:
        vs = views(size, count, seed, corpus)
        clusters = TemplateClusters()
        ts = []
        for i in range(requests):
            if i == k:  # the stages' calls of the warm-up requests are not counted
                for out in calls.values():
                    out.clear()
            v = vs[i % len(vs)]
            c0 = clock()
            compute_features(v, meta, T0 + i, rs.matchers, lazy=True, eager=rs.key_features, clusters=clusters)
            ts.append(clock() - c0)
        return ts[k:]

    plain = run(1)
    saved: list[tuple[Any, str, Any]] = []

    def timed(label: str, fn: Any) -> Any:
        out = calls[label]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            c0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                out.append(clock() - c0)

        return wrapper

    for label, mod, name in FEATURE_STAGES:
        target: Any = rs.matchers if (mod, name) == ("matchers", "run") else modules[mod]
        saved.append((target, name, getattr(target, name)))
        setattr(target, name, timed(label, getattr(target, name)))
    saved.append((signals, "cot_detector", signals.cot_detector))
    try:
        wrapped = run(2)
    finally:
        for target, name, fn in saved:
            setattr(target, name, fn)
    print(f"compute_features, {size // 1024} KB {corpus}, {requests - k} requests after {k}: median"
          f" {statistics.median(plain) / 1000:.1f} us, mean {sum(plain) / len(plain) / 1000:.1f} us"
          f" (with the stage timers: median {statistics.median(wrapped) / 1000:.1f}, mean"
          f" {sum(wrapped) / len(wrapped) / 1000:.1f})")
    for label, _, _ in FEATURE_STAGES:
        ts = calls[label]
        share = len(ts) / (requests - k)
        med = statistics.median(ts) / 1000 if ts else 0.0
        per = sum(ts) / (requests - k) / 1000
        print(f"  {label:<74} calls/request {share:5.2f}  median {med:8.1f} us  mean/request {per:8.1f} us")


# -- the judge's whole path in the proxy, part by part, in instructions (callgrind) ---------------

PARTS = ("exchange", "view", "features", "evaluate", "judge", "done", "chain", "response")
PART_NAMES = {
    "exchange": "Exchange + orjson body (reference)",
    "view": "dialect parse_request (ex.view; lazy: built for the judge)",
    "features": "compute_features",
    "evaluate": "Engine.evaluate (rules)",
    "judge": "JudgeFilter.on_request glue (meta, features copy, metrics, apply)",
    "done": "JudgeFilter.on_done (response dict, clustering gate)",
    "chain": "HardenFilter + RedactFilter on_request (present whenever rules are)",
    "response": "buffered answer parsed + usage + RedactFilter.on_response (on_done/on_response hooks exist)",
}


def judge_loop(part: str, n: int) -> None:
    """bench_proxy's phase-8 request (``common.chat_request``, one account) through the parts of the
    proxy's path that the rule pack adds, up to ``part`` (``PARTS``), hooks driven without an event loop
    (on the memory store they never await). Under callgrind (``--instr-atstart=no``) only the ``n``
    requests after 300 warm-up ones are counted (``callgrind_control -i on/off`` on this process)."""
    import logging
    import os
    import subprocess
    import sys
    from types import MappingProxyType

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    from proxy.accounts import Account
    from proxy.dialects import DIALECTS
    from proxy.exchange import Exchange
    from proxy.filters.harden import HardenFilter
    from proxy.filters.judge import JudgeFilter, meta_of
    from proxy.filters.redact import RedactFilter
    from proxy.redact.spec import PASS, RedactionSpec

    logging.disable(logging.WARNING)
    upto = PARTS.index(part)
    body, answer = common.chat_request(), common.chat_answer()
    dialect = DIALECTS["openai_chat"]
    acct = Account(id="bench-client", tier="standard")
    judge = JudgeFilter.from_paths([str(ROOT / "rules" / "default")])
    harden = HardenFilter()
    passing = MappingProxyType({"trusted": PASS, "standard": PASS, "restricted": PASS})
    redact = RedactFilter(RedactionSpec(tiers=passing, default_mode=PASS))
    rs = judge.engine.ruleset
    clock = [T0]

    class Clock:
        def now(self) -> float:
            clock[0] += 0.01
            return clock[0]

    judge.clock = Clock()  # type: ignore[assignment]

    def drive(c: Any) -> Any:
        try:
            c.send(None)
        except StopIteration as e:
            return e.value
        raise RuntimeError("a hook awaited on the memory store")

    def run(k: int) -> None:
        for _ in range(k):
            ex = Exchange(path="/v1/chat/completions", body=body, dialect=dialect, headers={})
            ex.account, ex.key_id, ex.client_ip, ex.status = acct, "k1", "10.1.2.3", 200
            _ = ex.json
            if upto < 1:
                continue
            v = ex.view
            if upto < 4:
                if upto >= 2:
                    ctx = compute_features(v, meta_of(ex), clock[0], rs.matchers, lazy=True, eager=rs.key_features,
                                           clusters=judge.clusters)
                    if upto >= 3:
                        judge.engine.evaluate(ctx, clock[0])
                continue
            drive(judge.on_request(ex))
            if upto >= 6:
                drive(harden.on_request(ex))
                drive(redact.on_request(ex))
            if upto >= 7:
                obj = orjson.loads(answer)
                usage = dialect.usage(obj)
                if usage is not None:
                    ex.usage.merge(usage)
                redact.on_response(ex, obj)
            if upto >= 5:
                drive(judge.on_done(ex))

    def instrument(on: bool) -> None:
        if os.environ.get("DG_CALLGRIND"):
            subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                           capture_output=True, check=False)

    run(300)
    instrument(True)
    run(n)
    instrument(False)


def judge_instructions(n: int = 1500) -> None:
    """Instructions per request of each part of the judge's path (``judge_loop``), each part's count minus
    the previous one's, counted by callgrind (deterministic, unlike CPU time on a shared box; the
    instrumentation toggles cost the same in every run and cancel out). Needs valgrind; ~4 min."""
    import os
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    env = dict(os.environ, PYTHONHASHSEED="0", DG_CALLGRIND="1")

    def count(part: str) -> int:
        out = subprocess.run(["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null",
                              sys.executable, __file__, "--judge-loop", part, str(n)], env=env, capture_output=True,
                             text=True, check=True).stderr
        return int([x for x in out.splitlines() if "Collected" in x][-1].split()[-1])

    with ThreadPoolExecutor(2) as pool:
        totals = dict(zip(PARTS, pool.map(count, PARTS), strict=True))
    prev = 0.0
    for part in PARTS:
        per = totals[part] / n
        print(f"{PART_NAMES[part]:<92} {per - prev:>9,.0f} instr/request (cumulative {per:,.0f})")
        prev = per
    added = (totals["response"] - totals["exchange"]) / n
    print(f"{'what the rule pack adds to a proxied request (everything above minus the reference)':<92} {added:>9,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rules", nargs="+", default=[str(ROOT / "rules" / "default")])
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--accounts", type=int, default=2_000)
    ap.add_argument("--memory-accounts", type=int, default=20_000)
    ap.add_argument("--active-accounts", type=int, default=4_000, help="accounts of the active-account memory figure")
    ap.add_argument("--repeat", type=int, default=3, help="runs per prompt size; the best median is kept")
    ap.add_argument("--history", type=int, default=0, help="also run a long history of this many requests")
    ap.add_argument("--history-accounts", type=int, default=100_000)
    ap.add_argument("--corpus", choices=(*CORPORA, "both"), default="both",
                    help="prompt text: prose (realistic, default figure), synthetic (the old 30-word vocabulary)")
    ap.add_argument("--pattern-groups", action="store_true",
                    help="only: µs per 2 KB prompt of each RE2 pass and each built-in pattern group, prose corpus")
    ap.add_argument("--features", action="store_true",
                    help="only: where compute_features spends its CPU, stage by stage (2 KB and 100 KB, --corpus)")
    ap.add_argument("--cot-sets", action="store_true",
                    help="only: µs of the CoT detector's matchers as shipped vs one RE2 set, prose corpus")
    a = ap.parse_args()
    if a.cot_sets:
        cot_sets(a.requests)
        return
    rs = load_ruleset(a.rules)
    print(f"rules: {', '.join(a.rules)} ({len(rs.rules)} rules, version {rs.version})")
    if a.pattern_groups:
        pattern_groups(a.requests)
        return
    if a.features:
        for size in (2048, 100 * 1024):
            for corpus in CORPORA if a.corpus == "both" else (a.corpus,):
                feature_breakdown(size, a.requests if size < 10_000 else max(500, a.requests // 20), corpus)
        return
    for size, target in ((2048, 50.0), (100 * 1024, 2000.0)):
        for corpus in CORPORA if a.corpus == "both" else (a.corpus,):
            n = a.requests if size < 10_000 else max(500, a.requests // 20)
            runs = [bench_cpu(a.rules, size, n, a.accounts, corpus) for _ in range(a.repeat)]
            r = min(runs, key=lambda x: x["median"])
            verdict = "OK" if r["median"] <= target else "OVER"
            medians = ", ".join(f"{x['median']:.1f}" for x in runs)
            colds = ", ".join(f"{x['cold']:.1f}" for x in runs)
            print(
                f"prompt {size // 1024:>4} KB, {corpus:<9}: median {r['median']:7.1f} us (features {r['features']:.1f}"
                f" + rules {r['rules']:.1f}; template clustering after the request: mean {r['after']:.1f},"
                f" {'counted' if r['clustering'] else 'not counted: no rule reads signals.template_cluster'})"
                f"  p99 {r['p99']:7.1f} us  mean {r['mean']:7.1f} us\n"
                f"    target median <= {target:g} us: {verdict}  (best of {a.repeat} runs of {n}: {medians}); "
                f"yardstick: orjson.loads of the same body {r['parse']:.1f} us\n"
                f"    cold start (median of each run's first {min(COLD, n // 4)} requests, excluded above): {colds} us"
            )
    per = bench_memory(a.rules, a.memory_accounts)
    spread = bench_memory(a.rules, a.memory_accounts, apart=7200.0)
    print(
        f"memory per tracked account: {per:,.0f} B  (target <= 2048 B: {'OK' if per <= 2048 else 'OVER'}; "
        f"{a.memory_accounts} accounts)\n"
        f"    the same two requests 2 h apart (every ring holding two buckets): {spread:,.0f} B"
    )
    active = bench_active_memory(a.rules, a.active_accounts)
    print(
        f"memory per active account (8 requests an hour apart, marginal over {a.active_accounts} accounts): "
        f"{active:,.0f} B  (target <= 2048 B: {'OK' if active <= 2048 else 'OVER'})"
    )
    if a.history:
        tenths = bench_history(a.rules, a.history, a.history_accounts)
        print(
            f"history {a.history:,} requests / {a.history_accounts:,} accounts: median per tenth "
            + ", ".join(f"{x:.1f}" for x in tenths)
            + f" us; last / second tenth {tenths[-1] / tenths[1]:.2f}, last / first {tenths[-1] / tenths[0]:.2f}"
        )


if __name__ == "__main__":
    import sys

    if "--judge-loop" in sys.argv:
        i = sys.argv.index("--judge-loop")
        judge_loop(sys.argv[i + 1], int(sys.argv[i + 2]))
    elif "--judge-instructions" in sys.argv:
        judge_instructions()
    else:
        main()
