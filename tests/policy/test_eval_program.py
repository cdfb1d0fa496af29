"""The memory store's fast path (``engine._program`` and ``MemoryRuleStore``): one row lookup per key feature
and request, ``count`` and ``ratio`` pushes and the common ``distinct`` cases inline, thresholds on locals,
scores filled by an unrolled function, actions in force read directly (``actions.collect_local``). It must
decide exactly as the general phased path and as the aggregates' own ``push`` methods, also where the inline
cases hand over to the slow ones: windows expiring, distinct sets pruned and spilled, keys evicted mid-request."""

from __future__ import annotations

import random

from proxy.exchange import Message, RequestView
from proxy.policy.actions import Verdict, collect, collect_local
from proxy.policy.engine import Engine
from proxy.policy.loader import load_text
from proxy.policy.signals import RequestMeta, compute_features
from proxy.policy.store import SEP, Active, MemoryRuleStore

T0 = 1_767_225_600.0

# Several rules per key feature (one shared row), windows of several widths, small distinct sets and
# windows (prunes, spills to the dict tier), tiny ``max_keys`` (evictions while a row is in use), scores
# on several scopes and score rules after them.
RULES = """
format: 1
rules:
  - id: counts
    when: "request.prompt_chars > 0"
    key: account
    aggregates:
      n_1m: {kind: count, window: 1m, buckets: 6}
      n_1h: {kind: count, window: 1h, buckets: 4}
      share: {kind: ratio, match: "request.model == 'o3'", window: 1m, buckets: 6}
    threshold: "agg.n_1m >= 3 && agg.share >= 0.5"
    score: {points: 2, to: [account, ip_prefix]}
    actions:
      - {do: redact, mode: omit, for: 90s, on: account}
  - id: sets
    when: "request.model != 'gpt-x'"
    key: account
    max_keys: 3
    aggregates:
      prompts: {kind: distinct, of: "request.prompt_chars", window: 20s, max_values: 2}
      models: {kind: distinct, of: request.model, window: 1m}
      many: {kind: distinct, of: "request.prompt_chars", window: 2m, max_values: 40}
    threshold: "agg.prompts >= 2 || agg.many >= 18"
    score: 3
    actions:
      - {do: throttle, factor: 0.5, for: 40s, on: account}
      - {do: tag, tag: sets, for: 30s, on: ip_prefix}
  - id: by-ip
    when: "true"
    key: ip
    max_keys: 2
    aggregates:
      owners: {kind: distinct, of: account.id, window: 30s}
      gaps: {kind: interarrival, stat: cv, samples: 4}
      tokens: {kind: sum, value: "double(request.prompt_chars)", window: 1m, buckets: 3}
      fast: {kind: ewma, value: "1.0", half_life: 10s}
    threshold: "agg.owners >= 3 && agg.tokens > 10.0"
    score: {points: 5, to: [ip]}
    actions:
      - {do: block, for: 20s, increment: {factor: 2, max: 5m, forget: 1h}}
  - id: scored
    when: "score.account >= 6 || score.ip >= 10"
    key: account
    aggregates:
      n: {kind: count, window: 30s, buckets: 3}
    threshold: "agg.n >= 2"
    actions:
      - {do: pace, tps: 5, for: 30s, on: account}
"""


class _PhasedMemory(MemoryRuleStore):
    """The memory store driven through the engine's general, phased path (as a remote store is)."""

    remote = True


def _feats(rs, t: float, account: str, prompt: str, model: str, ip: str, org: str) -> dict:
    view = RequestView(model=model, messages=[Message("user", prompt)])
    return compute_features(view, RequestMeta(account, "free", org, "", ip, "ua"), t, rs.matchers)


def _summary(v: Verdict) -> tuple:
    return ([(h.rule, h.mode, h.key, h.values) for h in v.hits], v.actions, dict(v.controls), sorted(v.tags), v.scores,
            (v.block.rule, v.block.until) if v.block else None, [a["rule"] for a in v.alerts], v.errors)


async def test_fast_path_decides_as_the_phased_path_across_window_edges_and_evictions() -> None:
    rs = load_text("t.yaml", RULES)
    fast, phased = Engine(rs), Engine(rs, store=_PhasedMemory(rs))
    rng = random.Random(5)
    t = T0
    hits = 0
    for _ in range(1500):
        t += rng.choice([0.2, 1.0, 3.0, 9.5, 10.0, 19.9, 20.0, 31.0, 65.0, 400.0])
        kw = {"account": rng.choice("abcdefg"), "prompt": "x" * rng.choice([3, 5, 8, 13, rng.randrange(1, 40)]),
              "model": rng.choice(["o3", "o3", "gpt-x", "o4-mini"]), "ip": f"10.0.{rng.randrange(4)}.9",
              "org": rng.choice(["", "acme", "beta"])}
        vf = fast.evaluate(_feats(rs, t, **kw), t)
        vp = await phased.aevaluate(_feats(rs, t, **kw), t)
        assert _summary(vf) == _summary(vp), (t - T0, kw)
        hits += len(vf.hits)
    assert fast.hit_counts == phased.hit_counts and fast.errors == phased.errors
    # every rule fired, and the small tables were evicted from
    assert {r.id for r in rs.rules} <= set(fast.hit_counts) and hits > 100
    assert len(fast.windows[rs.rule("by-ip").fingerprint]) <= 2
    for r in rs.rules:  # the same window states in the end
        if r.aggregates:
            assert dict(fast.windows[r.fingerprint]) == dict(phased.store.windows[r.fingerprint]), r.id


def test_distinct_inline_cases_count_as_push() -> None:
    """The inline cases of a distinct push (a new set; the value seen last, nothing to prune) give the value
    and state ``Aggregate._push_distinct`` gives, also for one value whose own sighting left the window."""
    rs = load_text("t.yaml", RULES)
    rule = rs.rule("sets")
    agg = rule.aggregates[0]  # window 20 s, max_values 2
    engine = Engine(rs)
    ref: list = []
    t = T0
    for step, n in [(0.0, 5), (1.0, 5), (25.0, 5), (1.0, 8), (1.0, 8), (30.0, 8), (0.5, 3), (0.5, 5), (0.5, 5)]:
        t += step
        v = engine.evaluate(_feats(rs, t, "a", "x" * n, "o3", "10.0.0.1", ""), t)
        want = agg.push(ref, t, n)
        st = engine.windows[rule.fingerprint]["a"][0]
        assert st == ref and agg.read(st, t) == want
        assert any(h.rule == "sets" for h in v.hits) == (want >= 2)


def test_collect_local_merges_as_collect() -> None:
    """Actions in force read straight from the memory store's table: single actions, several per target,
    expired ones dropped (the same ones ``collect`` drops), blocks, tags and controls merged alike."""
    rs = load_text("t.yaml", RULES)
    rng = random.Random(3)
    kinds = [("redact", "omit"), ("redact", "drop"), ("throttle", 0.5), ("throttle", 0.25), ("pace", 5),
             ("tag", "x"), ("block", True)]
    for _ in range(300):
        stores = [MemoryRuleStore(rs), MemoryRuleStore(rs)]
        now = T0 + 100
        for _ in range(rng.randrange(6)):
            feat = rng.choice(["account.id", "client.ip_prefix", "client.ip"])
            target = feat + SEP + rng.choice(["a", "10.0.0", "10.0.0.1"])
            kind, value = rng.choice(kinds)
            rule = rng.choice(["r1", "r2"])
            act = Active(kind, value, now + rng.choice([-5.0, 0.0, 5.0, 50.0]), rule)
            for s in stores:
                s.set_action(target, (kind, rule), act)
        ctx = {"account.id": "a", "client.ip_prefix": "10.0.0", "client.ip": "10.0.0.1"}
        keys = ("account.id", "client.ip", "client.ip_prefix")
        va, vb = Verdict(), Verdict()
        collect(keys, ctx, now, va, stores[0])
        collect_local(keys, ctx, now, vb, stores[1])
        assert _summary(va) == _summary(vb)
        assert stores[0].active == stores[1].active


def test_scores_are_filled_for_every_scope() -> None:
    """``fill_scores`` (unrolled over the scopes) sets every ``score.*`` key, 0.0 where the request's value
    has no score, and returns the known ones decayed and rounded."""
    rs = load_text("t.yaml", RULES)
    store = MemoryRuleStore(rs)
    store.now = T0
    store.add_score("account", "a", 4.0)
    store.add_score("ip", "10.0.0.1", 2.5)
    store.now = T0 + 3600.0  # one default half-life later
    ctx = {"account.id": "a", "client.ip": "10.0.0.2", "account.org": "acme"}
    assert store.fill_scores(ctx) == {"account": 2.0}
    assert ctx["score.account"] == 2.0 and ctx["score.ip"] == 0.0 and ctx["score.org"] == 0.0
    assert sorted(k for k in ctx if k.startswith("score.")) == sorted(
        "score." + s for s in ("account", "key", "org", "ip", "ip_prefix", "template", "prefix", "user_agent"))


def test_swap_takes_the_new_half_lives_and_layout() -> None:
    """A reload that changes the half-lives and the rows' layout: scores decay with the new half-life at
    once, and a rule's new states are made in its new slots (the store rebuilds what it derives from the
    rule set)."""
    rs = load_text("t.yaml", RULES)
    engine = Engine(rs)
    t = T0
    for _ in range(3):
        t += 1.0
        engine.evaluate(_feats(rs, t, "a", "xxxxx", "o3", "10.0.0.1", ""), t)
    before = engine.score("account", "a", t + 7200.0)
    new = load_text("t.yaml", RULES.replace("rules:\n", "scoring:\n  half_life: {account: 2h}\nrules:\n", 1).replace(
        "  - id: counts", "  - id: first\n    when: \"true\"\n    key: account\n    aggregates:\n"
        "      n: {kind: count, window: 1m}\n    threshold: \"agg.n >= 2\"\n  - id: counts", 1))
    engine.swap(new)
    assert engine.score("account", "a", t + 7200.0) == 2 * before  # one half-life instead of two
    ctx = _feats(new, t + 7200.0, "a", "xxxxx", "o3", "10.0.0.1", "")
    engine.evaluate(ctx, t + 7200.0)
    assert ctx["score.account"] > 0 and engine._memory().fill_scores(dict(ctx)).get("account") == round(
        engine.score("account", "a", t + 7200.0), 3)
    t += 7201.0
    v = engine.evaluate(_feats(new, t, "a", "xxxxx", "o3", "10.0.0.1", ""), t)
    assert "first" in {h.rule for h in v.hits}  # its count: 2 in its own new slot
    assert engine.windows[new.rule("first").fingerprint]["a"][0].total == 2
