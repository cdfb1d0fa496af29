"""Rule stores without a server: the memory store's view, a Redis view's local reads of its own writes,
and the packing of window specs (the contract suite in tests/state runs both stores end to end)."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest

from proxy.policy.loader import load_text
from proxy.policy.store import Active, Fetch, MemoryRuleStore, decay
from proxy.policy.store_redis import RedisView, static_spec

T0 = 1_767_225_600.0
RULES = """format: 1
scoring: {half_life: {account: 1h}}
rules:
  - id: w
    when: "true"
    key: account
    aggregates:
      n: {kind: count, window: 1h, buckets: 12}
      d: {kind: distinct, of: account.id, window: 1d, max_values: 50}
      r: {kind: rate, window: 10m, per: 1m}
      e: {kind: ewma, value: "1.0", half_life: 5m}
      g: {kind: interarrival, stat: min, samples: 8}
    threshold: "agg.n > 0"
"""


class _Queue:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def enqueue(self, writes: list[Any], now: float) -> None:
        self.got.append((list(writes), now))


def test_memory_store_is_its_own_view_and_applies_updates() -> None:
    rs = load_text("t.yaml", RULES)
    rule = rs.rules[0]
    store = MemoryRuleStore(rs)
    view = store.fetch_now(Fetch([(rule, "a1", [None, "a1", None, 1.0, None])]), T0)
    assert view is store and view.values == [[1.0, 1.0, 0.1, 1.0, 0.0]]
    view.add_score("account", "a1", 4.0)
    assert store.score_at("account", "a1", T0 + 3600) == pytest.approx(2.0)
    view = store.fetch_now(Fetch([(rule, "a1", [None])]), T0 + 1)  # an input failed after the first
    assert view.values == [[2.0]]
    assert store.state_now("account", "account.id", "a1", T0 + 1)["windows"]["w"]["d"] == 1.0


def test_a_score_is_one_small_object_holding_points_and_time_exactly() -> None:
    store = MemoryRuleStore(load_text("t.yaml", RULES))
    t = T0 + 0.123456789  # a time with all its float bits in use
    store.now = t
    store.add_score("account", "a1", 4.0)
    cur = store.scores["account"]["a1"]
    assert sys.getsizeof(cur) <= 32 and not gc.is_tracked(cur)  # a (points, time) tuple took 56 + a float
    assert store.score("account", "a1") == 4.0 and store.score_at("account", "a1", t + 3600) == pytest.approx(2.0)
    store.now = t + 7200
    store.add_score("account", "a1", 1.0)  # decayed to 1.0 at the new time, plus 1.0
    assert store.score("account", "a1") == pytest.approx(2.0) and store.scores["account"]["a1"].imag == t + 7200
    ctx: dict[str, Any] = {"account.id": "a1"}
    assert store.fill_scores(ctx) == {"account": 2.0} and ctx["score.account"] == pytest.approx(2.0)
    assert store.sweep_now(t + 7200 + 3600 * 10) == 1 and store.score("account", "a1") is None  # faded out


def test_redis_view_reads_its_own_writes_and_queues_them() -> None:
    q = _Queue()
    view = RedisView(q, T0)  # type: ignore[arg-type]
    view.scores[("account", "a1")] = 3.0
    view.add_score("account", "a1", 2.0)
    view.add_score("account", "a1", 1.5)
    assert view.score("account", "a1") == 6.5 and view.score_writes == 2
    view.set_action("account.id\x1fa1", ("block", "b"), Active("block", True, T0 + 60, "b"))
    view.set_ban("account.id\x1fa1", 3)
    view.set_alerted("r", "account.id\x1fa1")
    assert view.has_actions() and view.ban("account.id\x1fa1") == (3, T0)
    assert view.alert_time("r", "account.id\x1fa1") == T0
    ctx: dict[str, Any] = {"account.id": "a1"}
    assert view.fill_scores(ctx) == {"account": 6.5} and ctx["score.org"] == 0.0
    view.commit()
    assert [w[0] for w in q.got[0][0]] == ["S", "S", "A", "B", "C"] and q.got[0][1] == T0


def test_static_spec_tokens_and_decay() -> None:
    rs = load_text("t.yaml", RULES)
    head, toks = static_spec(rs.rules[0])
    assert head == b"90720.0,5"  # the longest window (1d) plus one bucket; 5 aggregates
    assert toks[0] == b"c12" and toks[1].startswith(b"d20,") and toks[1].endswith(b",50")
    assert toks[2] == b"r20,60.0,600.0" and toks[4] == b"i8,min"
    assert decay(8.0, T0, T0 + 7200, 3600.0) == pytest.approx(2.0)
    assert decay(8.0, T0, T0 - 5, 3600.0) == 8.0  # no growth for a time before the last write


def test_cluster_sets_are_swept_when_idle_and_capped_by_max_keys() -> None:
    """Large distinct sets (a sample past 64 values) expire with their key and count under ``max_keys``."""
    rs = load_text(
        "t.yaml",
        """format: 1
rules:
  - id: owners
    when: "true"
    key: signals.prefix
    max_keys: 4
    aggregates:
      owners: {kind: distinct, of: account.id, window: 1h, max_values: 4096}
    threshold: "agg.owners >= 1000000"
""",
    )
    rule = rs.rules[0]
    store = MemoryRuleStore(rs)
    for i in range(200):  # one busy prefix: 200 owners, past the 64 its dict keeps
        store.fetch_now(Fetch([(rule, "busy", [f"acct-{i}"])]), T0 + i)
    states = store.windows[rule.fingerprint]["busy"]
    assert len(states[0]) == 3 and len(states[0][0]) == 64  # [dict of the 64 latest, spill time, sample]
    view = store.fetch_now(Fetch([(rule, "busy", ["acct-0"])]), T0 + 600)
    assert view.values == [[200.0]]  # still exact: 200 values fit the sample at level 0
    assert store.sweep_now(T0 + 1800) == 0 and "busy" in store.windows[rule.fingerprint]
    assert store.sweep_now(T0 + 600 + 3601) == 1 and not store.windows[rule.fingerprint]
    for i in range(20):  # 20 prefixes through a table capped at 4 keys
        store.fetch_now(Fetch([(rule, f"p{i}", ["a"])]), T0 + 10_000 + i)
    assert 1 <= len(store.windows[rule.fingerprint]) <= 4 and "p19" in store.windows[rule.fingerprint]


ROWS = """format: 1
rules:
  - id: a
    when: "true"
    key: account
    max_keys: {max_a}
    aggregates:
      n: {{kind: count, window: 1h, buckets: 6}}
    threshold: "agg.n > 1000"
  - id: b
    when: "true"
    key: account
    aggregates:
      n: {{kind: count, window: 1d, buckets: 6}}
      d: {{kind: distinct, of: account.id, window: 1d}}
    threshold: "agg.n > 1000"
  - id: c
    when: "true"
    key: signals.prefix
    aggregates:
      n: {{kind: count, window: 1h}}
    threshold: "agg.n > 1000"
"""


def test_rules_keyed_by_one_feature_share_one_row_per_key() -> None:
    rs = load_text("t.yaml", ROWS.format(max_a=100))
    a, b, c = rs.rules
    store = MemoryRuleStore(rs)
    assert store.slots == {a.fingerprint: ("account.id", 0), b.fingerprint: ("account.id", 1),
                           c.fingerprint: ("signals.prefix", 0)}
    store.fetch_now(Fetch([(a, "u1", [None]), (b, "u1", [None, "u1"]), (c, "p1", [None])]), T0)
    store.fetch_now(Fetch([(b, "u2", [None, "u2"])]), T0 + 1)
    row = store.rows["account.id"]["u1"]
    assert type(row) is tuple and len(row) == 3 and row[2] == ["u1", T0]  # a's ring, b's ring, b's set
    assert store.rows["account.id"]["u2"][0] is None  # rule a never saw u2
    assert store.windows[a.fingerprint] == {"u1": (row[0],)} and len(store.windows[b.fingerprint]) == 2
    assert store.windows[b.fingerprint]["u2"][1] == ["u2", T0 + 1]
    assert store.states(a, "u2") and store.counts[a.fingerprint] == 2  # created on demand


def test_max_keys_is_per_rule_in_a_shared_table() -> None:
    rs = load_text("t.yaml", ROWS.format(max_a=16))
    a, b, _ = rs.rules
    store = MemoryRuleStore(rs)
    for i in range(40):
        store.fetch_now(Fetch([(a, f"u{i}", [None]), (b, f"u{i}", [None, "x"])]), T0 + i)
    table = store.rows["account.id"]
    assert len(table) == 40 and len(store.windows[b.fingerprint]) == 40  # b keeps every key
    held = list(store.windows[a.fingerprint])
    assert 1 <= len(held) <= 16 and "u39" in held and len(held) == store.counts[a.fingerprint]
    assert all(table[k][0] is None for k in table if k not in held)  # evicted: a's slot only


def test_sweep_drops_idle_states_of_one_rule_and_empty_rows() -> None:
    rs = load_text("t.yaml", ROWS.format(max_a=100))
    a, b, _ = rs.rules
    store = MemoryRuleStore(rs)
    store.fetch_now(Fetch([(a, "u1", [None]), (b, "u1", [None, "u1"]), (a, "u2", [None])]), T0)
    assert store.sweep_now(T0 + 7200) == 2  # a's 1 h window: idle for both keys; b's day is not
    assert list(store.rows["account.id"]) == ["u1"] and store.rows["account.id"]["u1"][0] is None
    assert store.counts == {a.fingerprint: 0, b.fingerprint: 1, rs.rules[2].fingerprint: 0}
    assert store.sweep_now(T0 + 2 * 86400) == 1 and not store.rows["account.id"]


def test_swap_moves_kept_states_to_the_new_layout() -> None:
    rs = load_text("t.yaml", ROWS.format(max_a=100))
    a, b, c = rs.rules
    store = MemoryRuleStore(rs)
    store.fetch_now(Fetch([(a, "u1", [None]), (b, "u1", [None, "u1"]), (c, "p1", [None])]), T0)
    ring_b, set_b, ring_c = store.windows[b.fingerprint]["u1"] + store.windows[c.fingerprint]["p1"]
    prefix_table = store.rows["signals.prefix"]
    # rule a goes, a new rule z comes first: b's states move from offset 1 to offset 1 of a new layout
    new = load_text("t.yaml", ROWS.format(max_a=100).replace("  - id: a\n", "  - id: z\n").replace(
        "n: {kind: count, window: 1h, buckets: 6}\n    threshold: \"agg.n > 1000\"",
        "m: {kind: sum, value: '1.0', window: 1h}\n    threshold: \"agg.m > 1000\"", 1))
    z = new.rules[0]
    store.swap(new)
    assert store.slots[b.fingerprint] == ("account.id", 1) and z.fingerprint in store.slots
    assert store.rows["account.id"]["u1"] == (None, ring_b, set_b)
    assert store.rows["signals.prefix"] is prefix_table and prefix_table["p1"] == (ring_c,)  # unchanged
    assert store.counts[z.fingerprint] == 0 and store.counts[b.fingerprint] == 1
    view = store.fetch_now(Fetch([(b, "u1", [None, "u1"]), (z, "u1", [1.0])]), T0 + 1)
    assert view.values == [[2.0, 1.0], [1.0]]
