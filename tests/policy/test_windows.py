"""Window states against a naive model recomputed from the raw events, and the compact state layout:
sparse rings, growing gap arrays, small distinct lists, one ratio object, one action per target."""

from __future__ import annotations

import itertools
import math
import random
import sys
from typing import Any

import pytest

from proxy.exchange import Message, RequestView
from proxy.policy.distinct import SAMPLE_SIZE, DistinctSample
from proxy.policy.engine import Engine
from proxy.policy.loader import load_text
from proxy.policy.signals import RequestMeta, compute_features
from proxy.policy.spec import AggregateSpec
from proxy.policy.store import Active, MemoryRuleStore
from proxy.policy.windows import (
    EXACT_DISTINCT,
    SMALL_DISTINCT,
    Aggregate,
    Gaps,
    Ratio,
    Ring,
    SumRing,
)

T0 = 1_767_225_600.0


def agg(kind: str, window: float = 60.0, **kw: Any) -> Aggregate:
    return Aggregate(AggregateSpec("a", kind, window, **kw), None, None, None)


def bucket_sum(events: list[tuple[int, float]], idx: int, n: int) -> float:
    """What a ring of ``n`` buckets holds at bucket ``idx``: events of buckets (idx-n, idx], a late event
    counted in the bucket that was the head when it arrived."""
    return sum(v for b, v in events if idx - n < b <= idx)


def test_ring_matches_a_model_of_its_buckets_sparse_or_not() -> None:
    rnd = random.Random(1)
    for n in (2, 6, 24):
        r = Ring(n)
        events: list[tuple[int, float]] = []
        head = -1
        for _ in range(400):
            idx = max(0, head + rnd.choice([0, 0, 0, 1, 2, n - 1, n, 3 * n, -1]))
            if rnd.random() < 0.2:
                head = max(head, idx)
                assert r.read(idx) == bucket_sum(events, head, n)
                continue
            head = max(head, idx)
            events.append((head, 1.0))  # a late event lands in the head bucket
            assert r.add(idx, 1) == bucket_sum(events, head, n)
            # slots from the oldest bucket holding an event to the head, never more than n
            assert len(r) == 3 or (len(r) <= 3 + n and (r[3] or len(r) == 4) and r[0] == sum(r[3:]))
    fresh = Ring(24)
    fresh.add(10, 1)
    fresh.add(10, 1)
    assert not fresh.dense and len(fresh) == 3  # one bucket used: total, head, bucket count
    fresh.add(11, 1)
    assert fresh.dense and fresh.total == 3 and list(fresh[3:]) == [2, 1]  # buckets 10 and 11 only
    fresh.add(14, 1)
    assert list(fresh[3:]) == [2, 1, 0, 0, 1]
    fresh.add(34, 1)  # window 11..34: bucket 10 left
    assert fresh.total == 3 and len(fresh) == 3 + 24 and fresh[3] == 1
    fresh.add(35, 1)  # bucket 11 left, and the empty buckets 12 and 13 after it: slots 14..35
    assert fresh.total == 3 and len(fresh) == 3 + 22 and fresh[3] == 1 and fresh[-1] == 1
    fresh.add(100, 1)
    assert fresh.total == 1 and list(fresh) == [1, 100, 24, 1]  # all past the window: one slot again


def test_ring_indexes_wrap_modulo_2_32() -> None:
    """Buckets are kept modulo 2**32: a ring fed ``base + i`` (across the wrap, or past 2**32) counts as
    one fed ``i``, late events included."""
    rnd = random.Random(4)
    seq, head = [], 5
    for _ in range(300):
        head += rnd.choice([0, 0, 1, 2, 5])
        seq.append(head - rnd.choice([0, 0, 0, 1, 3]))
    for base in (2**32 - 40, 5 * 2**32 + 7, 2**40):
        r, model = Ring(6), Ring(6)
        for i in seq:
            assert r.add(base + i, 1) == model.add(i, 1)
        assert r.read(base + head + 3) == model.read(head + 3) and r.read(base + head + 6) == 0


def test_sum_ring_keeps_float_values() -> None:
    s = SumRing(3)
    assert s.add(100, 0.25) == 0.25 and s.add(101, 1.5) == 1.75 and s.read(103) == 1.5 and s.read(104) == 0.0


def test_ratio_keeps_both_series_on_one_bucket() -> None:
    rnd = random.Random(2)
    q = Ratio(4)
    events: list[tuple[int, bool]] = []
    head = -1
    for _ in range(300):
        idx = max(0, head + rnd.choice([0, 0, 1, 3, 4, 9, -1]))
        match = rnd.random() < 0.4
        head = max(head, idx)
        events.append((head, match))
        live = [m for b, m in events if head - 4 < b <= head]
        assert q.push(idx, match) == pytest.approx(sum(live) / len(live))
        size = (len(q) - 4) // (2 if q[3] else 1)  # the matching series only while a match is live
        assert len(q) == 4 + size * (2 if q[3] else 1) and size <= 4 and q[0] == sum(q[4 : 4 + size] or [q[0]])
    assert q.ratio(head + 100) == 0.0 and q.ntotal == 0.0


def test_ratio_holds_its_matching_series_only_while_a_match_is_in_the_window() -> None:
    q = Ratio(4)
    q.push(10, False)
    q.push(11, False)
    assert list(q[4:]) == [1, 1]  # dense (buckets 10, 11), no matching series
    assert q.push(12, True) == pytest.approx(1 / 3) and list(q[4:]) == [1, 1, 1, 0, 0, 1]
    assert q.push(13, False) == pytest.approx(1 / 4)
    assert q.push(16, False) == pytest.approx(0 / 2) and list(q[4:]) == [1, 0, 0, 1]  # the match left
    assert q.push(16, True) == pytest.approx(1 / 3) and q.ntotal == 1
    sparse = Ratio(4)
    sparse.push(20, True)
    assert sparse.push(21, False) == 0.5 and list(sparse[4:]) == [1, 1, 1, 0]  # sparse -> dense keeps the match
    assert sparse.ratio(24) == 0.0 and sparse.ratio(25) == 0.0 and list(sparse) == [0, 25, 4, 0, 0]


def test_distinct_matches_a_model_small_and_large() -> None:
    rnd = random.Random(3)
    for max_values in (1, 3, SMALL_DISTINCT, 50):
        a = agg("distinct", 100.0, max_values=max_values)
        st = a.new()
        seen: dict[str, float] = {}  # value -> last sighting, insertion = sighting order
        t = T0
        for _ in range(600):
            t += rnd.choice([0.0, 1.0, 7.0, 40.0, 150.0])
            x = f"v{rnd.randrange(20)}"
            seen.pop(x, None)
            seen[x] = t
            while seen and (next(iter(seen.values())) < t - 100.0 or len(seen) > max_values):
                del seen[next(iter(seen))]
            assert a.push(st, t, x) == len(seen)
            assert a.values_of(st) == list(seen)
            assert a.last_seen(st) == max(seen.values())
        assert a.read(st, t + 1000.0) == 0.0
    small = agg("distinct", 100.0, max_values=1000)
    st = small.new()
    for i in range(SMALL_DISTINCT):
        small.push(st, T0 + i, i)
    assert len(st) == 2 * SMALL_DISTINCT  # values then times, one flat list
    small.push(st, T0 + 9, "one more")
    assert len(st) == 1 and list(st[0]) == [*range(SMALL_DISTINCT), "one more"]
    assert type(st[0]) is dict  # a plain dict in sighting order, not an OrderedDict


def model_count(seen: dict[str, float], cutoff: float) -> int:
    return sum(1 for t in seen.values() if t >= cutoff)


def test_distinct_is_exact_up_to_the_sample_size_and_slides_with_the_window() -> None:
    """Past ``EXACT_DISTINCT`` values the dict keeps the most recent ones and a sample counts; while the
    window never held more than ``SAMPLE_SIZE`` values the sample keeps them all: exact, on exact times."""
    rnd = random.Random(5)
    a = agg("distinct", 100.0, max_values=4096)
    st = a.new()
    seen: dict[str, float] = {}
    t = T0
    sampled = False
    for i in range(6000):
        slow = (i // 1000) % 2  # busy stretches (~200 values a window) and quiet ones (~8)
        t += rnd.choice([0.0, 0.05, 0.2, 0.5]) if not slow else rnd.choice([1.0, 7.0, 20.0, 150.0])
        x = f"v{rnd.randrange(SAMPLE_SIZE)}"
        seen[x] = t
        n = a.push(st, t, x)
        assert n == model_count(seen, t - 100.0)
        sampled = sampled or len(st) == 3
        assert len(st[0]) <= EXACT_DISTINCT and a.last_seen(st) == t
    assert sampled  # the sample was used ...
    assert a.read(st, t + 100.0) == model_count(seen, t) and a.read(st, t + 101.0) == 0.0
    assert len(st) == 1 and not st[0]  # ... and dropped once every spilled value left the window


def test_sets_churning_at_their_cap_keep_a_fresh_dict_size() -> None:
    """A value seen again moves to the young end (delete, insert), which leaves a deleted entry in the dict:
    when they fill its table, CPython doubles it. The next update copies the dict afresh, so a busy
    cluster key's set is never left at the doubled size (sizes against fresh dicts of the same keys)."""
    rnd = random.Random(9)
    a = agg("distinct", 1e6, max_values=4096)
    st = a.new()
    fresh = [sys.getsizeof(dict.fromkeys([f"acct-{i}" for i in range(n)], 0.0)) for n in range(400)]
    late = 0

    def dicts() -> list[dict[str, float]]:
        return [st[0], st[2].seen] if len(st) == 3 else [st[0]] if len(st) == 1 else []

    for i in range(20_000):  # 200 owners seen again and again: the dict at its cap, the sample past it
        big = [id(d) for d in dicts() if sys.getsizeof(d) > fresh[len(d) + len(d) // 2]]
        a.push(st, T0 + i, f"acct-{rnd.randrange(200)}")
        late += sum(1 for d in dicts() if id(d) in big)  # still the same oversized dict one update later
    assert late == 0 and len(st) == 3 and len(st[0]) == EXACT_DISTINCT and len(st[2].seen) <= SAMPLE_SIZE
    assert a.read(st, T0 + 20_000) == 200.0  # exact: 200 values fit the sample at level 0


def test_distinct_hands_back_to_the_exact_count_after_a_burst() -> None:
    a = agg("distinct", 100.0, max_values=4096)
    st = a.new()
    for i in range(5000):  # a burst of 5000 values within 50 s: sampled, level > 0
        a.push(st, T0 + i / 100, f"burst-{i}")
    assert len(st) == 3 and st[2].level > 0 and len(st[2].seen) <= SAMPLE_SIZE
    for i in range(5):  # later, a few values only: exact as soon as the burst has left the window
        n = a.push(st, T0 + 151 + i, f"late-{i}")
    assert n == 5.0 and len(st) == 1
    assert a.push(st, T0 + 152, "late-0") == 5.0


def test_distinct_cap_and_small_max_values_stay_exact() -> None:
    capped = agg("distinct", 1e6, max_values=100)
    st = capped.new()
    counts = [capped.push(st, T0 + i, f"v{i}") for i in range(1000)]
    assert counts[:100] == [float(i + 1) for i in range(100)] and set(counts[100:]) == {100.0}
    few = agg("distinct", 1e6, max_values=EXACT_DISTINCT)  # the dict alone: no sample
    st = few.new()
    assert [few.push(st, T0 + i, i) for i in range(200)][-1] == EXACT_DISTINCT and len(st) == 1
    assert few.values_of(st) == list(range(200 - EXACT_DISTINCT, 200))


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_distinct_estimate_within_its_error_bound(n: int) -> None:
    """Past ``SAMPLE_SIZE`` values the count is ``sampled * 2**level`` with a relative standard error of
    about ``1/sqrt(sampled)``, sampled about SAMPLE_SIZE/2 to SAMPLE_SIZE (<= ~8.9 %): over 40
    independent value families the mean error stays near it and none is past 4 standard errors."""
    errors = []
    for fam in range(30):
        a = agg("distinct", 1e6, max_values=100_000)
        st = a.new()
        est = 0.0
        for i in range(n):
            est = a.push(st, T0 + i * 1e-3, f"acct-{fam}-{i:07d}")
        sample: DistinctSample = st[2]
        assert SAMPLE_SIZE // 3 <= len(sample.seen) <= SAMPLE_SIZE and est == len(sample.seen) << sample.level
        errors.append(est / n - 1.0)
    rmse = math.sqrt(sum(e * e for e in errors) / len(errors))
    bound = 1 / math.sqrt(SAMPLE_SIZE / 2)
    assert rmse <= 1.3 * bound and max(abs(e) for e in errors) <= 4 * bound
    assert abs(sum(errors) / len(errors)) <= 2 * bound / math.sqrt(len(errors)) + 0.01  # unbiased


def test_two_sets_of_one_population_sample_the_same_values() -> None:
    """``owners`` and ``r_owners`` (a subset) keep the same sampled values, so their ratio errs less
    than either count."""
    a = agg("distinct", 1e6, max_values=100_000)
    owners, r_owners = a.new(), a.new()
    for i in range(20_000):
        x = f"acct-{i:07d}"
        a.push(owners, T0 + i, x)
        a.push(r_owners, T0 + i, x if i % 10 else "")  # 90 % of owners ask for reasoning
    o, r = owners[2], r_owners[2]
    assert o.level == r.level and set(r.seen) - {""} <= set(o.seen)
    # the ratio's error is that of a 90 % share among the sampled owners (~2.5 %), not two counts' (~12 %)
    ratio_se = math.sqrt(0.9 * 0.1 / len(o.seen))
    assert a.read(r_owners, T0 + 20_000) / a.read(owners, T0 + 20_000) == pytest.approx(0.9, abs=3 * ratio_se)


def test_gaps_grow_to_their_size_then_wrap() -> None:
    g = Gaps(4)
    times = [0.0, 10.0, 30.0, 60.0, 61.0, 100.0, 140.0]
    for t in times:
        g.add(t)
    gaps = [b - a for a, b in itertools.pairwise(times)][-4:]
    assert len(g.gaps) == 4 and sorted(g.gaps) == sorted(gaps)
    mean = sum(gaps) / 4
    cv = math.sqrt(sum(x * x for x in gaps) / 4 - mean * mean) / mean
    assert g.stat("mean") == pytest.approx(mean) and g.stat("cv") == pytest.approx(cv)
    assert g.stat("min") == min(gaps)
    assert len(Gaps(32).gaps) == 0 and len(Gaps(32)) == 6  # the array grows as gaps arrive


def test_one_action_per_target_is_stored_without_a_dict() -> None:
    rs = load_text("t.yaml", "format: 1\nrules: []\n")
    st = MemoryRuleStore(rs)
    st.set_action("t", ("redact", "r1"), Active("redact", "omit", 100.0, "r1"))
    assert isinstance(st.active["t"], Active) and st.actions("t") == {
        ("redact", "r1"): Active("redact", "omit", 100.0, "r1")
    }
    st.set_action("t", ("redact", "r1"), Active("redact", "drop", 200.0, "r1"))  # replaces it
    assert isinstance(st.active["t"], Active) and st.active["t"].value == "drop"
    st.set_action("t", ("pace", "r2"), Active("pace", 5, 50.0, "r2"))
    assert set(st.actions("t") or {}) == {("redact", "r1"), ("pace", "r2")}
    assert st.sweep_now(60.0) == 0 and set(st.actions("t") or {}) == {("redact", "r1")}
    st.drop_action("t", ("redact", "r1"))
    assert "t" not in st.active and st.actions("t") is None
    st.set_action("u", ("tag", "r3"), Active("tag", "x", 10.0, "r3"))
    assert st.pardon_now("account", "u", "u") == 1 and not st.active


def test_state_of_an_account_with_several_actions_and_windows() -> None:
    rs = load_text(
        "t.yaml",
        """format: 1
rules:
  - id: many
    when: "true"
    key: account
    aggregates:
      n: {kind: count, window: 1h, buckets: 4}
      q: {kind: ratio, match: "request.logprobs", window: 1h, buckets: 4}
      d: {kind: distinct, of: request.model, window: 1h}
    threshold: "agg.n >= 2"
    actions: [{do: pace, tps: 5, for: 1h}, {do: tag, tag: busy, for: 1h}]
""",
    )
    e = Engine(rs)
    for i, model in enumerate(["o3", "o4", "o3"]):
        view = RequestView(model=model, messages=[Message("user", "hi")], logprobs=i == 0)
        t = T0 + 1000 * i
        e.evaluate(compute_features(view, RequestMeta(account_id="a1"), t, rs.matchers), t)
    state = e.state_of("account", "a1", T0 + 2000)
    assert state["windows"]["many"] == {"n": 3.0, "q": pytest.approx(1 / 3), "d": 2.0}
    assert sorted(a["do"] for a in state["active"]) == ["pace", "tag"]
