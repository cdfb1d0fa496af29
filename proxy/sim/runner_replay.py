"""Long horizons: the same seeded events through the rule engine directly, on event time.

Features are computed exactly as the judge filter does (``compute_features`` on the compact request);
the engine is swept hourly as in replay. Reasoning delivered is what the fake model would send
(``proxy.fake.content.reasoning_for``), zero when the verdict blocks or hides reasoning. Latency is the
per-request cost of feature extraction plus rule evaluation (microseconds), the part of the proxy's added
latency the pack is responsible for.
"""

from __future__ import annotations

import time
from typing import Any

from proxy.fake.chat import flavour
from proxy.fake.content import reasoning_for, tokens
from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import RequestMeta, compute_features, view_from_record
from proxy.sim.personas import Account
from proxy.sim.report import Recorder, summarize
from proxy.sim.traffic import generate, make_accounts

HIDING = frozenset(("omit", "drop", "seal", "placeholder"))


def reasoning_tokens(req: dict[str, Any]) -> int:
    """Reasoning tokens the fake model sends for this request (Chat Completions, by model name)."""
    if flavour(str(req.get("model", ""))) == "plain":
        return 0
    if "prompt" in req:
        last = str(req["prompt"])
    else:
        users = [m["text"] for m in req.get("messages", []) if m.get("role") == "user"]
        last = users[-1] if users else ""
    return len(tokens(reasoning_for(last)))


def run_replay(
    *,
    seed: int,
    accounts: int,
    days: float,
    mix: dict[str, float] | None,
    rules: list[str],
    base_redaction: str = "pass",
) -> dict[str, Any]:
    rs = load_ruleset(rules)
    engine = Engine(rs)
    accts = make_accounts(seed, accounts, mix)
    by_id: dict[str, Account] = {a.id: a for a in accts}
    rec = Recorder(by_id)
    last_sweep = None
    n = 0
    for ev in generate(seed, accts, days):
        if last_sweep is None:
            last_sweep = ev.ts
        elif ev.ts - last_sweep >= 3600:
            engine.sweep(ev.ts)
            last_sweep = ev.ts
        a = by_id[ev.account]
        meta = RequestMeta(
            account_id=a.id,
            tier=a.tier,
            org=a.org,
            key_id=a.id + "-key",
            ip=a.ip,
            user_agent=a.user_agent,
            path="/v1/chat/completions",
        )
        t0 = time.perf_counter()
        ctx = compute_features(view_from_record(ev.request), meta, ev.ts, rs.matchers)
        v = engine.evaluate(ctx, ev.ts)
        us = (time.perf_counter() - t0) * 1e6
        blocked = v.block is not None
        acted = blocked or bool(v.controls)
        mode = v.controls.get("redaction", base_redaction)
        got = 0 if blocked or mode in HIDING else reasoning_tokens(ev.request)
        rec.record(a.id, ev.ts, acted, blocked, got, us, [(h.rule, h.mode) for h in v.hits])
        n += 1
    meta_out = {
        "seed": seed,
        "accounts": accounts,
        "days": days,
        "through": "replay",
        "requests": n,
        "rules": [str(r) for r in rules],
        "mix": mix or "default",
        "latency_unit": "us",
        "latency_note": "latency (replay): feature extraction + rule evaluation per request, microseconds",
    }
    return summarize(rec, latency_unit="us", meta=meta_out)
