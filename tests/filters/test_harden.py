"""Request hardening: the per-(dialect, profile) key pre-check skips only bodies the editors leave alone."""

from __future__ import annotations

import copy
import itertools
import random

import orjson
import pytest

from proxy.accounts import Account
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.filters.harden import _APPLY, HardenFilter, _Edit, touched_keys
from proxy.redact.spec import BUILTIN_PROFILES, HardenProfile

# Values that make each editor act (over the strict profile's limits) or not; nested where the API nests.
FIELDS = {
    "openai_chat": {
        "logprobs": [True], "top_logprobs": [20, 1], "logit_bias": [{"50256": -100}], "n": [8, 1],
        "max_tokens": [100_000, 10], "max_completion_tokens": [100_000], "reasoning_effort": ["high", "low"],
        "thinking_token_budget": [50_000], "thinking": [{"budget_tokens": 50_000}],
        "reasoning": [{"max_tokens": 50_000, "effort": "high"}], "temperature": [0.2], "stream": [True],
    },
    "openai_responses": {
        "top_logprobs": [20], "include": [["message.output_text.logprobs"], ["other"]],
        "max_output_tokens": [100_000], "reasoning": [{"effort": "high"}], "temperature": [0.2],
    },
    "anthropic_messages": {
        "max_tokens": [100_000, 2_000], "thinking": [{"type": "enabled", "budget_tokens": 50_000}],
        "output_config": [{"effort": "high"}], "temperature": [0.2],
    },
    "gemini": {
        "generationConfig": [{"responseLogprobs": True, "logprobs": 20, "candidateCount": 8,
                              "maxOutputTokens": 100_000, "thinkingConfig": {"thinkingBudget": -1}}],
        "generation_config": [{"candidate_count": 8}], "safetySettings": [[]],
    },
}
PROFILES = {
    **BUILTIN_PROFILES,
    "effort-only": HardenProfile(logprobs="allow", effort_max="low"),
    "thinking-only": HardenProfile(logprobs="allow", thinking_budget_max=1024),
    "tokens-only": HardenProfile(logprobs="allow", max_tokens_max=1000),
    "cap-none": HardenProfile(logprobs="cap", top_logprobs_max=None),
}


def _bodies(dialect: str, rnd: random.Random, n: int = 60) -> list[dict]:
    fields = FIELDS[dialect]
    out = [{}]
    out += [{k: rnd.choice(v)} for k, v in fields.items()]  # each field alone
    for _ in range(n):
        keys = rnd.sample(sorted(fields), rnd.randint(1, len(fields)))
        out.append({k: rnd.choice(fields[k]) for k in keys})
    return [{"model": "m", **copy.deepcopy(b)} for b in out]


def _ex(dialect: str, body: dict, tier: str = "standard", harden: str | None = None) -> Exchange:
    ex = Exchange(path="/", body=orjson.dumps(body), dialect=DIALECTS[dialect], headers={})
    ex.account = Account(id="a", tier=tier)
    if harden is not None:
        ex.controls["harden"] = harden
    return ex


def _drive(coro):
    with pytest.raises(StopIteration) as stop:
        coro.send(None)
    return stop.value.value


@pytest.mark.parametrize(("dialect", "profile"), list(itertools.product(sorted(FIELDS), sorted(PROFILES))))
def test_key_precheck_skips_only_bodies_the_editor_leaves_alone(dialect, profile):
    p = PROFILES[profile]
    keys = touched_keys(dialect, p)
    for body in _bodies(dialect, random.Random(f"{dialect}/{profile}")):
        full = copy.deepcopy(body)
        e = _Edit(_ex(dialect, body))
        _APPLY[dialect](full, p, e)
        if keys.isdisjoint(body):
            assert e.n == 0 and full == body, (dialect, profile, body)


@pytest.mark.parametrize("dialect", sorted(FIELDS))
def test_filter_edits_as_the_editor_does(dialect):
    filt = HardenFilter()
    rnd = random.Random(dialect)
    for body in _bodies(dialect, rnd, 30):
        for tier, harden in (("standard", None), ("restricted", None), ("trusted", None), ("trusted", "strict")):
            ex = _ex(dialect, body, tier, harden)
            assert _drive(filt.on_request(ex)) is None
            want = copy.deepcopy(body)
            e = _Edit(_ex(dialect, body))
            prof = filt.spec.profile_for(tier, harden)
            if prof != HardenProfile():
                _APPLY[dialect](want, prof, e)
            assert ex.json == want
            assert ex.body_changed == bool(e.n)
            assert [d for d in ex.decisions if d["filter"] == "harden"] == e.ex.decisions


def test_precheck_skips_the_bench_request_for_the_standard_tier():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 256, "temperature": 0.2}
    assert touched_keys("openai_chat", BUILTIN_PROFILES["standard"]).isdisjoint(body)
    ex = _ex("openai_chat", body)
    assert _drive(HardenFilter().on_request(ex)) is None and not ex.body_changed and not ex.decisions
    strict = _ex("openai_chat", {**body, "max_tokens": 100_000}, tier="restricted")
    _drive(HardenFilter().on_request(strict))
    assert strict.json["max_tokens"] == 16384 and strict.body_changed


def test_unhashable_control_is_resolved_uncached():
    filt = HardenFilter()
    ex = _ex("openai_chat", {"model": "m", "n": 9}, tier="standard", harden=None)
    ex.controls["harden"] = ["strict"]  # not a profile name: the tier's profile applies
    _drive(filt.on_request(ex))
    assert ex.json["n"] == 4 and not filt._plans
