"""The simulator is deterministic for a seed (traffic and results), and persona mixes are configurable."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import orjson
import pytest

from proxy.cli_sim import parse_mix
from proxy.sim.personas import DEFAULT_MIX
from proxy.sim.runner_replay import run_replay
from proxy.sim.traffic import allocate, generate, make_accounts

PACK = str(Path(__file__).resolve().parents[2] / "rules" / "default")


def digest(seed: int, n: int = 120, days: float = 0.5) -> str:
    accts = make_accounts(seed, n)
    h = hashlib.sha256()
    for a in accts:
        h.update(orjson.dumps([a.id, a.tier, a.org, a.ip, a.rate]))
    for ev in itertools.islice(generate(seed, accts, days), 5000):
        h.update(orjson.dumps([ev.ts, ev.account, ev.request]))
    return h.hexdigest()


def test_same_seed_same_traffic() -> None:
    assert digest(3) == digest(3)


def test_other_seed_other_traffic() -> None:
    assert digest(3) != digest(4)


def test_events_are_in_time_order_and_cover_every_persona() -> None:
    accts = make_accounts(5, 200)
    evs = list(generate(5, accts, 1.0))
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(evs))
    seen = {e.account.rsplit("-", 1)[0] for e in evs}
    assert set(DEFAULT_MIX) <= seen


def test_app_users_share_a_wrapper_across_unrelated_owners_with_reasoning_per_user() -> None:
    """The benign counterpart of a low-and-slow campaign: one app's fixed wrapper from many accounts, orgs and
    networks, reasoning a per-user setting (some on, most off); app_forced always asks for reasoning."""
    accts = make_accounts(7, 400, {"app_user": 1.0})
    assert {a.persona for a in accts} == {"app_user"}
    owners = {a.org or a.id for a in accts}
    nets = {a.ip.rsplit(".", 1)[0] for a in accts}
    assert len(owners) > 300 and len(nets) > 300
    on = sum(1 for a in accts if a.extra["reasoning"])
    assert 0.2 * len(accts) < on < 0.5 * len(accts)
    by = {a.id: a for a in accts}
    wrapped = [ev for ev in generate(7, accts, 1.0) if ev.request.get("system", "").startswith("You are StepSolver")]
    assert len({by[ev.account].org or ev.account for ev in wrapped}) > 50
    assert {bool(ev.request.get("reasoning")) for ev in wrapped} == {True, False}
    forced = make_accounts(7, 20, {"app_forced": 1.0})
    evs = [ev for ev in generate(7, forced, 1.0) if "system" in ev.request]
    assert evs and all(ev.request["reasoning"] for ev in evs)


def test_replay_results_are_deterministic() -> None:
    a = run_replay(seed=11, accounts=80, days=0.5, mix=None, rules=[PACK])
    b = run_replay(seed=11, accounts=80, days=0.5, mix=None, rules=[PACK])
    strip = ("latency_p50_us", "latency_p99_us")
    for s in (a, b):
        for d in s["personas"].values():
            for k in strip:
                d.pop(k)
    assert a == b


def test_mix_parsing_and_allocation() -> None:
    assert parse_mix(["chat=0.6,hydra=0.4"]) == {"chat": 0.6, "hydra": 0.4}
    assert parse_mix(None) is None
    with pytest.raises(Exception, match="persona"):
        parse_mix(["wizard=1"])
    n = allocate(100, {"chat": 0.75, "hydra": 0.25})
    assert n == {"chat": 75, "hydra": 25}
    accts = make_accounts(1, 50, {"chat": 1, "hydra": 1})
    assert {a.persona for a in accts} == {"chat", "hydra"}
    with pytest.raises(ValueError, match="unknown persona"):
        make_accounts(1, 10, {"nope": 1.0})
