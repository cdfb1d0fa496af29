"""Template clustering: SimHash over the masked skeleton, banded look-ups, bounded memory, and the
request-time semantics of ``signals.template_cluster`` (known cluster now, clustering after)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from proxy.exchange import Message, RequestView
from proxy.filters.judge import JudgeFilter
from proxy.policy.clusters import TemplateClusters, shingles, simhash, word_hash
from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import SKELETON_KEY, RequestMeta, compute_features, template_hash, template_skeleton

SYSTEM = "You are a data generator. Produce one training example per request."
# Pronounceable made-up words (no digits: the skeleton masks digits).
VOCAB = ["".join(p) for p in itertools.product("bcdfgklmnprstvz", "aeiou", "bcdfgklmnprstvz")][::3][:400]


def skeleton(user: str, system: str = SYSTEM) -> bytes:
    return template_skeleton(RequestView(system=system, messages=[Message("user", user)]), user)


def naive_simhash(sk: bytes) -> int:
    hs = [word_hash(w) for w in shingles(sk)]
    out = 0
    for bit in range(64):
        if 2 * sum((h >> bit) & 1 for h in hs) > len(hs):
            out |= 1 << bit
    return out


def test_simhash_is_the_bitwise_majority_of_word_hashes() -> None:
    rnd = random.Random(5)
    for n in (0, 1, 2, 7, 40, 255, 400):  # 400 words: only the first 255 distinct ones vote
        sk = " ".join(rnd.choice(VOCAB) for _ in range(n)).encode()
        assert simhash(sk) == naive_simhash(sk)
    assert simhash(b"") == 0


def _template(rnd: random.Random, words: int) -> list[str]:
    return [rnd.choice(VOCAB) for _ in range(words)]


def test_near_duplicates_share_a_cluster_and_different_templates_do_not() -> None:
    rnd = random.Random(11)
    tc = TemplateClusters()
    together = apart = numbers = 0
    for i in range(60):
        words = _template(rnd, 30)
        first = " ".join(words) + f" item {rnd.randint(1, 999)}: {rnd.random():.4f}"
        changed = list(words)
        changed[rnd.randrange(len(words))] = rnd.choice(VOCAB)  # one word changed ...
        second = " ".join(changed) + f" item {rnd.randint(1, 999)}: {rnd.random():.4f}"  # ... numbers too
        a, b = skeleton(first), skeleton(second)
        ca = tc.observe(template_hash(a), a)
        cb = tc.observe(template_hash(b), b)
        assert ca == template_hash(a)  # a new template starts its own cluster, named after itself
        together += ca == cb
        # An unrelated template under the same system prompt: never merged with this one.
        c = skeleton(" ".join(_template(rnd, 30)))
        apart += tc.observe(template_hash(c), c) not in (ca, cb)
        # Only the numbers changed: digits are masked, but their lengths move where the head and tail
        # windows cut, so the exact template may differ; the cluster does not.
        same = skeleton(" ".join(words) + f" item {i + 1000}: 0.5")
        numbers += tc.observe(template_hash(same), same) == ca
    assert together >= 54  # ~90 %: SimHash is probabilistic; seeded, so this is exact and repeatable
    assert apart == 60 and numbers == 60


def test_earliest_cluster_wins_and_lookups_never_compute() -> None:
    tc = TemplateClusters()
    words = _template(random.Random(3), 40)
    base = skeleton(" ".join(words))
    variants = []
    for k in range(5):
        w = list(words)
        w[k * 7] = "zebraword"
        variants.append(skeleton(" ".join(w)))
    t0 = template_hash(base)
    assert tc.cluster_of(t0) == t0 and tc.observed == 0  # unknown: its own id, nothing computed
    assert tc.observe(t0, base) == t0
    for v in variants:
        assert tc.cluster_of(template_hash(v)) == template_hash(v)  # before clustering: itself
        assert tc.observe(template_hash(v), v) == t0
        assert tc.cluster_of(template_hash(v)) == t0  # after: the earliest near cluster
    assert len(tc.clusters) == 1 and tc.clusters[t0].members == 6


def test_memory_is_bounded() -> None:
    rnd = random.Random(9)
    tc = TemplateClusters(max_templates=300, max_clusters=100)
    for _ in range(2000):
        sk = skeleton(" ".join(_template(rnd, 25)), system="")
        tc.observe(template_hash(sk), sk)
    assert len(tc.exact) <= 300 and len(tc.clusters) <= 100
    live = {id(c) for c in tc.clusters.values()}
    entries = [c for table in tc._tables for lst in table.values() for c in lst]
    assert len(entries) <= tc.bands * 100  # band tables hold only live clusters
    assert {id(c) for c in entries} <= live


def test_features_read_the_cluster_known_at_request_time(example_rules: Path) -> None:
    rs = load_ruleset([str(example_rules)])
    tc = TemplateClusters()
    meta = RequestMeta("a1", "free", "", "", "198.51.100.7", "x")
    words = _template(random.Random(4), 30)
    v1 = RequestView(model="o3", messages=[Message("user", " ".join(words))])
    words[3] = "zebraword"
    v2 = RequestView(model="o3", messages=[Message("user", " ".join(words))])
    f1 = compute_features(v1, meta, 0.0, rs.matchers, clusters=tc)
    assert f1["signals.template_cluster"] == f1["signals.template"]
    tc.observe(f1["signals.template"], f1[SKELETON_KEY])
    f2 = compute_features(v2, meta, 1.0, rs.matchers, clusters=tc)
    assert f2["signals.template"] != f1["signals.template"]
    assert f2["signals.template_cluster"] == f2["signals.template"]  # first request of a new template
    tc.observe(f2["signals.template"], f2[SKELETON_KEY])
    f3 = compute_features(v2, meta, 2.0, rs.matchers, clusters=tc)
    assert f3["signals.template_cluster"] == f1["signals.template"]  # clustered after the first one


async def test_judge_clusters_after_the_request(tmp_path: Path, example_rules: Path, new_exchange) -> None:
    make_exchange = new_exchange
    idle = JudgeFilter(Engine(load_ruleset([str(example_rules)])))  # no rule reads the cluster
    ex = make_exchange(" ".join(_template(random.Random(8), 30)))
    await idle.on_request(ex)
    await idle.on_done(ex)
    assert len(idle.clusters) == 0 and ex.features["signals.template_cluster"] == ex.features["signals.template"]

    pack = tmp_path / "pack.yaml"
    pack.write_text(
        "format: 1\nrules:\n  - id: c\n    when: 'true'\n    key: template_cluster\n"
        "    actions: [{do: tag, tag: seen}]\n"
    )
    judge = JudgeFilter(Engine(load_ruleset([str(pack)])))
    words = _template(random.Random(8), 30)
    ex1 = make_exchange(" ".join(words))
    await judge.on_request(ex1)
    await judge.on_done(ex1)
    words[5] = "zebraword"
    ids = []
    for _ in range(2):
        ex = make_exchange(" ".join(words))
        await judge.on_request(ex)
        ids.append(ex.features["signals.template_cluster"])
        await judge.on_done(ex)
    assert ids == [ex.features["signals.template"], ex1.features["signals.template"]]
    assert judge.clusters.cpu_seconds > 0 and len(judge.clusters) == 2


PERTURBED = [
    "Write a careful step by step solution to this competition problem and show each derivation clearly: {}",
    "Write a careful step by step solution to this olympiad problem and show each derivation clearly: {}",
    "Write a careful step by step answer to this competition problem and show each derivation clearly: {}",
    "Write a detailed step by step solution to this competition problem and show each derivation clearly: {}",
]


def test_a_rule_keyed_by_template_cluster_sees_one_campaign_across_reworded_templates(tmp_path: Path) -> None:
    from proxy.policy.ruletests import run_tests

    (tmp_path / "pack.yaml").write_text(
        """format: 1
rules:
  - id: by-cluster
    when: "request.prompt_chars >= 40"
    key: template_cluster
    aggregates:
      owners: {kind: distinct, of: account.id, window: 1h}
    threshold: "agg.owners >= 4"
    actions:
      - {do: tag, tag: campaign}
  - id: by-template
    when: "request.prompt_chars >= 40"
    key: template
    aggregates:
      owners: {kind: distinct, of: account.id, window: 1h}
    threshold: "agg.owners >= 4"
    actions:
      - {do: tag, tag: campaign}
"""
    )
    # Each account rewords one word of the campaign's instruction and sends two problems.
    reqs = []
    for rnd in range(2):
        for i, text in enumerate(PERTURBED):
            prompt = text.format(f"problem {rnd * 4 + i}")
            reqs.append(f"      - after: 1m\n        account: a{i}\n        prompt: '{prompt}'")
    reqs[-1] += "\n        expect: {hits: [by-cluster], no_hits: [by-template]}"
    (tmp_path / "pack.test.yaml").write_text(
        "format: 1\nrules: [pack.yaml]\ncases:\n  - name: reworded campaign\n    requests:\n" + "\n".join(reqs) + "\n"
    )
    code, out = run_tests([str(tmp_path)])
    assert code == 0, out
