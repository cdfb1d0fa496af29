"""A simulation through the real proxy (judge, redaction, hardening) against the built-in fake model.

Events are sent one at a time in timestamp order; before each, the proxy's clock (a ``FakeClock``
injected into ``ProxyApp``) is set to the event's time, so rule windows and durations run on event time
exactly as in replay while every request crosses the real HTTP stack. The client IP reaches the proxy as
``X-Forwarded-For`` from a trusted loopback peer. Reasoning tokens are counted from the bodies the client
received (``reasoning_content`` / ``reasoning`` of each choice), so whatever the redaction filter does is
what is measured.

Redaction baseline: every tier ``pass`` (reasoning granted, the situation campaigns exploit, S14); rules
switch accounts to stricter modes. Until the redaction filter is part of ``build_filters`` the runner adds
``proxy.redact.build_redaction_filters`` to the chain itself.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from proxy.clock import FakeClock
from proxy.fake.content import tokens
from proxy.keys import digest, new_key
from proxy.sim.personas import Account
from proxy.sim.report import Recorder, summarize
from proxy.sim.traffic import START, Event, generate, make_accounts

PATH = "/v1/chat/completions"
SEAL_ENV = "DISTILLGUARD_SIM_SEAL_KEYS"  # a throwaway key ring for the simulation's own proxy


def sim_config(upstream_url: str, accounts_path: Path, rules: list[str]) -> dict[str, Any]:
    return {
        "server": {"listen": "127.0.0.1:0", "drain_timeout": "2s"},
        "upstreams": [
            {
                "name": "fake-model",
                "url": upstream_url,
                "api_key": "upstream-secret",
                "timeouts": {"connect": "2s", "first_byte": "10s", "idle": "10s"},
            }
        ],
        "accounts_file": str(accounts_path),
        "logging": {"access_log": "off"},
        "identity": {"trusted_proxies": ["127.0.0.1/32", "::1/128"]},
        "rules": {"paths": [str(Path(p).resolve()) for p in rules], "watch_every": None},
        "redaction": {
            "tiers": {"trusted": "pass", "standard": "pass", "restricted": "pass"},
            "default_mode": "pass",
        },
        "hardening": {
            "tiers": {"trusted": "off", "standard": "off", "restricted": "off"},
            "default_profile": "off",
        },
    }


def write_accounts(path: Path, accounts: list[Account]) -> dict[str, str]:
    keys: dict[str, str] = {}
    lines = ["accounts:"]
    for a in accounts:
        keys[a.id] = k = new_key()
        lines += [f"  - id: {a.id}", f"    tier: {a.tier}"]
        if a.org:
            lines.append(f"    org: {a.org}")
        lines.append(f'    keys: ["{digest(k)}"]')
    path.write_text("\n".join(lines) + "\n")
    return keys


def chat_body(req: dict[str, Any]) -> dict[str, Any]:
    msgs: list[dict[str, Any]] = []
    if req.get("system"):
        msgs.append({"role": "system", "content": req["system"]})
    for m in req.get("messages", []):
        msgs.append({"role": m["role"], "content": m["text"]})
    if "prompt" in req:
        msgs.append({"role": "user", "content": req["prompt"]})
    body: dict[str, Any] = {"model": req["model"], "messages": msgs}
    if req.get("reasoning"):
        body["reasoning_effort"] = "high"
    if req.get("logprobs"):
        body["logprobs"] = True
        body["top_logprobs"] = int(req.get("top_logprobs", 0))
    if int(req.get("n", 1)) > 1:
        body["n"] = int(req["n"])
    if req.get("tools"):
        body["tools"] = [
            {
                "type": "function",
                "function": {"name": f"tool_{i}", "parameters": {"type": "object", "properties": {}}},
            }
            for i in range(int(req["tools"]))
        ]
    return body


def reasoning_received(status: int, raw: bytes) -> int:
    """Reasoning tokens in a Chat Completions body as the client received it."""
    if status != 200:
        return 0
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return 0
    n = 0
    for ch in doc.get("choices") or []:
        msg = ch.get("message") or {}
        for k in ("reasoning_content", "reasoning"):
            v = msg.get(k)
            if isinstance(v, str):
                n += len(tokens(v))
    return n


def _ensure_redaction(app: Any, clock: FakeClock, tap: dict[str, Any]) -> list[Any]:
    from proxy.app import build_filters

    filters = build_filters(app)
    judge = next(f for f in filters if getattr(f, "name", "") == "judge")
    inner = judge.on_request

    async def on_request(ex: Any) -> Any:  # keep this request's verdict for the report
        tap.clear()
        out = await inner(ex)
        st = ex.state.get(judge.name)
        if st is not None:
            tap["verdict"] = st[2]
        return out

    judge.on_request = on_request
    if not any(getattr(f, "name", "") == "redact" for f in filters):
        from proxy.redact import build_redaction_filters

        filters += build_redaction_filters(app.config, clock=clock)
    return filters


async def run_through_proxy(
    *,
    seed: int,
    accounts: int,
    days: float,
    mix: dict[str, float] | None,
    rules: list[str],
    events: list[Event] | None = None,
    max_requests: int | None = None,
    baseline: int = 200,
) -> dict[str, Any]:
    rec, meta = await run_proxy_recorded(
        seed=seed,
        accounts=accounts,
        days=days,
        mix=mix,
        rules=rules,
        events=events,
        max_requests=max_requests,
        baseline=baseline,
    )
    return summarize(rec, latency_unit="ms", meta=meta)


async def run_proxy_recorded(
    *,
    seed: int,
    accounts: int,
    days: float,
    mix: dict[str, float] | None,
    rules: list[str],
    events: list[Event] | None = None,
    max_requests: int | None = None,
    baseline: int = 200,
    population: list[Account] | None = None,
) -> tuple[Recorder, dict[str, Any]]:
    """Run the events through the proxy; the per-account record and the run's metadata."""
    import proxy.redact  # noqa: F401  (registers the redaction and hardening config sections)
    from proxy.redact.seal import new_key_text

    os.environ.setdefault(SEAL_ENV, new_key_text("sim"))
    from proxy.accounts import AccountsWatcher
    from proxy.app import ProxyApp, Server
    from proxy.config import config_from_dict
    from proxy.fake.upstream import start_fake_upstream

    accts = population if population is not None else make_accounts(seed, accounts, mix)
    by_id = {a.id: a for a in accts}
    evs = events if events is not None else list(generate(seed, accts, days))
    if max_requests is not None:
        evs = evs[:max_requests]
    rec = Recorder(by_id)
    fake = await start_fake_upstream()
    clock = FakeClock(START)
    server = None
    direct: list[float] = []
    try:
        with tempfile.TemporaryDirectory(prefix="distillguard-sim-") as tmp:
            apath = Path(tmp) / "accounts.yaml"
            keys = write_accounts(apath, accts)
            cfg = config_from_dict(sim_config(fake.url, apath, rules), source="<simulate>")
            watcher = AccountsWatcher(apath)
            probe = ProxyApp(cfg, clock=clock, accounts=watcher, filters=[])
            tap: dict[str, Any] = {}
            app = ProxyApp(cfg, clock=clock, accounts=watcher, filters=_ensure_redaction(probe, clock, tap))
            server = Server(app, port=0)
            await server.start()
            conn = aiohttp.TCPConnector(limit=4)
            async with aiohttp.ClientSession(connector=conn) as http:
                for ev in evs:
                    a = by_id[ev.account]
                    clock.set(ev.ts)
                    body = orjson.dumps(chat_body(ev.request))
                    headers = {
                        "authorization": f"Bearer {keys[a.id]}",
                        "content-type": "application/json",
                        "x-forwarded-for": a.ip,
                        "user-agent": a.user_agent,
                    }
                    t0 = time.perf_counter()
                    async with http.post(server.url + PATH, data=body, headers=headers) as r:
                        raw = await r.read()
                        status = r.status
                    ms = (time.perf_counter() - t0) * 1000
                    v = tap.get("verdict")
                    blocked = v is not None and v.block is not None
                    acted = blocked or (v is not None and bool(v.controls))
                    hits = [(h.rule, h.mode) for h in v.hits] if v is not None else []
                    rec.record(a.id, ev.ts, acted, blocked, reasoning_received(status, raw), ms, hits)
                # baseline: the same kind of request straight to the fake model (no proxy)
                for ev in evs[:baseline]:
                    body = orjson.dumps(chat_body(ev.request))
                    t0 = time.perf_counter()
                    async with http.post(
                        fake.url + PATH,
                        data=body,
                        headers={
                            "authorization": "Bearer upstream-secret",
                            "content-type": "application/json",
                        },
                    ) as r:
                        await r.read()
                    direct.append((time.perf_counter() - t0) * 1000)
    finally:
        if server is not None:
            await server.stop(drain_timeout=1.0)
        await fake.close()
    direct.sort()
    meta = {
        "seed": seed,
        "accounts": accounts,
        "days": days,
        "through": "proxy",
        "requests": len(evs),
        "rules": [str(r) for r in rules],
        "mix": mix or "default",
        "latency_unit": "ms",
        "direct_p50_ms": round(direct[len(direct) // 2], 2) if direct else None,
        "direct_p99_ms": round(direct[int(0.99 * (len(direct) - 1))], 2) if direct else None,
    }
    meta["latency_note"] = (
        f"latency (proxy): client round trip through the proxy, ms; the same requests sent straight to the "
        f"fake model: p50 {meta['direct_p50_ms']} ms, p99 {meta['direct_p99_ms']} ms (added = difference)"
    )
    return rec, meta
