"""Seeded, reproducible, event-time traffic from a persona mix.

``make_accounts(seed, accounts, mix)`` creates the population; ``generate(seed, accounts, days)`` yields
``Event``s in timestamp order (ties broken by account id). Requests use the compact form of rule tests
and replay (model, system, prompt/messages, parameters), so the same events drive the real proxy
(``runner_proxy``) and the engine directly (``runner_replay``).
"""

from __future__ import annotations

import heapq
import math
import random
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from proxy.sim import personas as P
from proxy.sim.phrasings import load_benign, load_families, split_present

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a Thursday
# people (not scripts): activity follows their waking hours
DIURNAL = frozenset(
    ("chat", "multilingual", "reasoning_curious", "coding_agent", "jailbreaker", "app_user", "app_forced")
)


@dataclass(frozen=True, slots=True)
class Event:
    ts: float
    account: str
    request: dict[str, Any]


def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random(f"{seed}:" + ":".join(str(p) for p in parts))


def allocate(total: int, mix: dict[str, float]) -> dict[str, int]:
    """Accounts per persona: largest remainder, every persona with weight > 0 gets at least one."""
    w = {k: v for k, v in mix.items() if v > 0}
    s = sum(w.values())
    raw = {k: total * v / s for k, v in w.items()}
    n = {k: max(1, math.floor(r)) for k, r in raw.items()}
    rest = total - sum(n.values())
    for k in sorted(raw, key=lambda k: raw[k] - math.floor(raw[k]), reverse=True)[: max(0, rest)]:
        n[k] += 1
    return n


def make_accounts(seed: int, total: int, mix: dict[str, float] | None = None) -> list[P.Account]:
    mix = dict(P.DEFAULT_MIX if mix is None else mix)
    unknown = set(mix) - set(P.PERSONAS)
    if unknown:
        raise ValueError(f"unknown persona(s): {', '.join(sorted(unknown))}; known: {', '.join(P.PERSONAS)}")
    counts = allocate(total, mix)
    out: list[P.Account] = []
    for persona in P.PERSONAS:
        for i in range(counts.get(persona, 0)):
            out.append(_account(seed, persona, i))
    return out


def _home_ip(rng: random.Random) -> str:
    return f"100.{rng.randint(64, 127)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"


def _account(seed: int, persona: str, i: int) -> P.Account:
    rng = _rng(seed, persona, i)
    aid = f"{persona}-{i:04d}"
    ua = rng.choice(("openai-python/1.54", "Mozilla/5.0", "openai-node/4.2"))
    if persona in ("chat", "multilingual", "reasoning_curious"):
        tier = P.pick_tier(rng, (0.15, 0.6, 0.25))
        org, ip = "", _home_ip(rng)
        if rng.random() < 0.15:  # campus / coworking NAT: many unrelated users on one /24
            ip = (
                f"192.0.2.{rng.randint(2, 254)}"
                if rng.random() < 0.5
                else f"198.18.{rng.randint(0, 3)}.{rng.randint(2, 254)}"
            )
        elif rng.random() < 0.2:  # company NAT
            k = rng.randint(0, 29)
            org, ip = f"corp{k:02d}", f"172.16.{k}.{rng.randint(2, 254)}"
        rate = rng.uniform(5, 40)
        return P.Account(aid, persona, tier, org, ip, ua, rate, extra={"oss_tool": rng.random() < 0.1})
    if persona in ("app_user", "app_forced"):
        return _app_account(rng, aid, persona, i)
    if persona == "coding_agent":
        tier = P.pick_tier(rng, (0.3, 0.6, 0.1))
        return P.Account(
            aid,
            persona,
            tier,
            rng.choice(("", f"dev{i % 40:02d}")),
            _home_ip(rng),
            "openai-python/1.54 agent",
            rng.uniform(40, 250),
            extra={"system": rng.randrange(3)},
        )
    if persona == "automation":
        k = i // 8  # fleets of up to 8 CI/eval accounts per org, one /24 per org
        return P.Account(
            aid,
            persona,
            rng.choice(("trusted", "standard")),
            f"evalco{k:02d}",
            f"172.20.{k}.{10 + i % 8}",
            "python-httpx/0.27",
            rng.uniform(200, 1500),
            extra={"logprobs": i % 3 == 0, "period": rng.uniform(0.9, 1.1)},
        )
    if persona == "batch":
        return P.Account(
            aid,
            persona,
            "standard",
            f"batchco{i:02d}",
            f"172.24.{i % 250}.5",
            "python-requests/2.31",
            rng.uniform(300, 2000),
            extra={"hour": rng.randint(0, 23)},
        )
    if persona in ("hydra", "release_chaser"):
        size = 40 if persona == "hydra" else 25
        c = i // size
        base = 30 + c * 4 if persona == "hydra" else 200 + c * 4
        # a proxy service's egress pool: two /24s per cluster (sim parameter; see docs/rules-pack.md)
        ip = f"203.{base}.{rng.randint(0, 1)}.{rng.randint(2, 254)}"
        return P.Account(
            aid,
            persona,
            P.pick_tier(rng, (0.25, 0.5, 0.25)),
            "",
            ip,
            "python-httpx/0.27",
            rng.uniform(26, 150),
            start=rng.uniform(0, 0.5 * P.DAY),
            extra={"cluster": c, "templates": rng.sample(range(4), 2), "resold": 0.3},
        )
    if persona == "low_slow":
        return P.Account(
            aid,
            persona,
            P.pick_tier(rng, (0.25, 0.5, 0.25)),
            "",
            _home_ip(rng),
            ua,
            rng.uniform(22, 30),
            extra={"templates": [i % 4]},
        )
    if persona == "jailbreaker":
        return P.Account(aid, persona, P.pick_tier(rng, (0.25, 0.5, 0.25)), "", _home_ip(rng), ua, rng.uniform(10, 40))
    if persona == "logprob":
        return P.Account(
            aid,
            persona,
            P.pick_tier(rng, (0.2, 0.4, 0.4)),
            "",
            _home_ip(rng),
            "python-httpx/0.27",
            rng.uniform(150, 600),
        )
    raise ValueError(persona)


def _app_account(rng: random.Random, aid: str, persona: str, i: int) -> P.Account:
    """A user of a third-party app on their own key: self-serve or one of many small companies, home or campus
    network, a heavy-tailed volume (median ~8 requests a day, a few past 60), part of it sent directly."""
    tier = P.pick_tier(rng, (0.15, 0.6, 0.25))
    org = f"appco{rng.randrange(200):03d}" if rng.random() < 0.25 else ""
    ip = _home_ip(rng) if rng.random() < 0.85 else f"192.0.2.{rng.randint(2, 254)}"
    if persona == "app_forced":
        app, reasoning = P.FORCED_APP, 1.0
    else:
        app = rng.choices(P.APPS, weights=(0.4, 0.35, 0.25))[0]
        reasoning = 1.0 if rng.random() < 0.35 else 0.0  # the app's "deep thinking" setting, per user
    rate = min(120.0, max(1.0, rng.lognormvariate(math.log(8.0), 0.9)))
    extra = {"app": app, "reasoning": reasoning, "in_app": rng.uniform(0.6, 1.0), "oss_tool": False}
    return P.Account(aid, persona, tier, org, ip, app[3], rate, extra=extra)


# --------------------------------------------------------------------------- arrival times


def _times(rng: random.Random, a: P.Account, days: float) -> list[float]:
    end = days * P.DAY
    out: list[float] = []
    if a.persona == "automation":
        gap = P.DAY / a.rate * a.extra["period"]
        t = rng.uniform(0, gap)
        while t < end:
            out.append(t)
            t += gap * rng.uniform(0.98, 1.02)  # scheduled: metronome-regular
        return out
    if a.persona == "batch":
        for d in range(math.ceil(days)):
            n = int(a.rate)
            t0 = d * P.DAY + a.extra["hour"] * 3600.0
            out += [t0 + k * (7200.0 / n) for k in range(n) if t0 + k * (7200.0 / n) < end]
        return out
    diurnal = a.persona in DIURNAL
    t = a.start
    while True:
        t += rng.expovariate(a.rate / P.DAY)
        if t >= end:
            break
        if diurnal:
            hour = (t % P.DAY) / 3600.0
            if not (7 <= (hour + zlib.crc32(a.id.encode()) % 12) % 24 <= 23) and rng.random() < 0.8:
                continue  # people sleep
        out.append(t)
    return out


# --------------------------------------------------------------------------- requests


class _Corpus:
    def __init__(self) -> None:
        fam = load_families("dev")
        if split_present("heldout"):
            fam.update(load_families("heldout"))
        self.elicit = [p for ps in fam.values() for p in ps]
        self.benign_reasoning = load_benign()


def _chat_req(rng: random.Random, a: P.Account) -> dict[str, Any]:
    if a.extra.get("oss_tool") and rng.random() < 0.3:
        return {
            "model": P.REASONING_MODEL,
            "system": P.OSS_TOOL_SYSTEM,
            "prompt": P.fill(rng, P.OSS_TOOL_ASK),
        }
    prompt = rng.choice(P.SHORT) if rng.random() < 0.08 else P.fill(rng, rng.choice(P.ASKS))
    model = P.REASONING_MODEL if rng.random() < 0.6 else P.PLAIN_MODEL
    return {"model": model, "prompt": prompt}


def _app_req(rng: random.Random, a: P.Account) -> dict[str, Any]:
    if rng.random() >= a.extra["in_app"]:
        return _chat_req(rng, a)  # the same account used directly
    _name, system, wrapper, _ua, follow = a.extra["app"]
    req: dict[str, Any] = {"model": P.REASONING_MODEL, "system": system}
    ask = P.fill(rng, wrapper)
    if rng.random() < follow:  # a follow-up in the app's chat pane: the history comes along
        req["messages"] = [
            {"role": "user", "text": ask},
            {"role": "assistant", "text": "Here is the revised passage."},
            {"role": "user", "text": rng.choice(P.FOLLOW_UPS)},
        ]
    else:
        req["prompt"] = ask
    if a.extra["reasoning"]:
        req["reasoning"] = True
    return req


def request_for(rng: random.Random, a: P.Account, t: float, corpus: _Corpus, release_at: float) -> dict[str, Any]:
    p = a.persona
    if p == "chat":
        return _chat_req(rng, a)
    if p == "multilingual":
        if rng.random() < 0.7:
            return {"model": P.REASONING_MODEL, "prompt": P.fill(rng, rng.choice(P.MULTI))}
        return _chat_req(rng, a)
    if p == "reasoning_curious":
        if rng.random() < 0.3:
            return {"model": P.REASONING_MODEL, "prompt": rng.choice(corpus.benign_reasoning)}
        return _chat_req(rng, a)
    if p in ("app_user", "app_forced"):
        return _app_req(rng, a)
    if p == "coding_agent":
        turns = rng.randint(1, 12)
        msgs: list[dict[str, Any]] = []
        for k in range(turns):
            msgs.append(
                {
                    "role": "user",
                    "text": P.fill(rng, rng.choice(P.AGENT_TASKS)) + " " + "x = 1\n" * rng.randint(5, 200),
                }
            )
            if k < turns - 1:
                msgs.append({"role": "assistant", "text": "Calling the tool.", "has_reasoning": True})
        return {
            "model": P.REASONING_MODEL,
            "system": P.AGENT_SYSTEMS[a.extra["system"]],
            "messages": msgs,
            "tools": 12,
            "reasoning": True,
        }
    if p == "automation":
        req: dict[str, Any] = {
            "model": P.REASONING_MODEL,
            "prompt": P.fill(rng, P.AUTOMATION_TEMPLATES[int(a.id[-4:]) % 4]),
        }
        if a.extra["logprobs"]:
            req.update(logprobs=True, top_logprobs=5)
        return req
    if p == "batch":
        return {"model": P.REASONING_MODEL, "prompt": P.fill(rng, P.BATCH_TEMPLATES[int(a.id[-4:]) % 2])}
    if p in ("hydra", "release_chaser"):
        if rng.random() < a.extra["resold"]:
            return _chat_req(rng, a)  # resold customer traffic mixed in (§1.1)
        k = rng.choice(a.extra["templates"])
        c = a.extra["cluster"]
        model = P.REASONING_MODEL
        if p == "release_chaser" and t >= release_at and rng.random() < 0.7:
            model = P.NEW_MODEL
        return {
            "model": model,
            "system": P.CAMPAIGN_SYSTEMS[(k + c) % 4],
            "prompt": P.fill(rng, P.CAMPAIGN_ASKS[k]),
            "reasoning": True,
        }
    if p == "low_slow":
        k = a.extra["templates"][0] % 2
        return {
            "model": P.REASONING_MODEL,
            "system": P.SLOW_SYSTEMS[k],
            "prompt": P.fill(rng, P.SLOW_ASKS[k]),
            "reasoning": True,
        }
    if p == "jailbreaker":
        if rng.random() < 0.4:
            return {
                "model": P.REASONING_MODEL,
                "prompt": P.fill(rng, rng.choice(P.PROBLEMS)) + ". " + rng.choice(corpus.elicit),
            }
        return _chat_req(rng, a)
    if p == "logprob":
        return {
            "model": P.REASONING_MODEL,
            "prompt": "Continue the text: " + P.fill(rng, rng.choice(P.ASKS)),
            "logprobs": True,
            "top_logprobs": 20,
            "n": rng.choice((1, 1, 5)),
        }
    raise ValueError(p)


def generate(seed: int, accounts: list[P.Account], days: float, *, release_day: float = 1.0) -> Iterator[Event]:
    """All events of all accounts over ``days``, merged in timestamp order (deterministic for a seed)."""
    corpus = _Corpus()
    release_at = START + release_day * P.DAY

    def stream(a: P.Account) -> Iterator[tuple[float, str, dict[str, Any]]]:
        rng = _rng(seed, "traffic", a.id)
        for t in _times(rng, a, days):
            ts = START + t
            yield ts, a.id, request_for(rng, a, ts, corpus, release_at)

    for ts, aid, req in heapq.merge(*(stream(a) for a in accounts), key=lambda e: (e[0], e[1])):
        yield Event(ts, aid, req)
