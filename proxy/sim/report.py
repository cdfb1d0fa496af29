"""Per-persona outcome accounting and the targets of issue 7, shared by the proxy and replay runners.

An account is *acted on* ("impacted beyond logging") from the first request that carried a control
(redaction, pace, throttle, harden, cut) or was blocked; tags, logs, scores and shadow hits do not count.
Reasoning tokens are counted from what the client received (proxy runner) or what it would receive
given the verdict (replay runner: 0 when blocked or redacted, else the fake model's reasoning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from proxy.sim.personas import ATTACKERS, BENIGN, PERSONAS, Account

HYDRA_WITHIN = 200
TARGETS = {
    "hydra_acted_within_200": 0.95,
    "benign_impacted_max": 0.003,
    "reasoning_after_flag": 0,
    "cot_heldout_caught": 0.90,
    "cot_benign_fp_max": 0.01,
}


@dataclass
class AccountTrack:
    persona: str
    tier: str
    requests: int = 0
    first_ts: float = 0.0
    flag_index: int | None = None  # 1-based request number of the first action
    flag_ts: float | None = None
    reasoning_before: int = 0
    reasoning_after: int = 0
    blocked: int = 0
    acted_requests: int = 0
    flag_reason: str = ""


@dataclass
class Recorder:
    accounts: dict[str, Account]
    tracks: dict[str, AccountTrack] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)  # persona -> ms (or us in replay)
    rule_hits: dict[str, list[int]] = field(default_factory=dict)  # rule -> [enforce, shadow]
    # shadow rule -> accounts it hit (what it would act on if promoted to enforce)
    shadow_accounts: dict[str, set[str]] = field(default_factory=dict)

    def record(
        self,
        account: str,
        ts: float,
        acted: bool,
        blocked: bool,
        reasoning: int,
        latency: float | None,
        hits: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> None:
        a = self.accounts[account]
        tr = self.tracks.get(account)
        if tr is None:
            tr = self.tracks[account] = AccountTrack(a.persona, a.tier, first_ts=ts)
        tr.requests += 1
        if acted and tr.flag_index is None:
            tr.flag_index, tr.flag_ts = tr.requests, ts
            tr.flag_reason = ",".join(r for r, m in hits if m == "enforce") or "action in force"
        if acted:
            tr.acted_requests += 1
        if blocked:
            tr.blocked += 1
        if tr.flag_index is None:
            tr.reasoning_before += reasoning
        else:
            tr.reasoning_after += reasoning
        if latency is not None:
            self.latencies.setdefault(a.persona, []).append(latency)
        for rule, mode in hits:
            c = self.rule_hits.setdefault(rule, [0, 0])
            c[0 if mode == "enforce" else 1] += 1
            if mode != "enforce":
                self.shadow_accounts.setdefault(rule, set()).add(account)


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


def summarize(rec: Recorder, *, latency_unit: str, meta: dict[str, Any]) -> dict[str, Any]:
    personas: dict[str, Any] = {}
    for p in PERSONAS:
        accts = [a for a in rec.accounts.values() if a.persona == p]
        if not accts:
            continue
        trs = [rec.tracks[a.id] for a in accts if a.id in rec.tracks]
        flagged = [t for t in trs if t.flag_index is not None]
        idx = [t.flag_index for t in flagged if t.flag_index is not None]
        secs = [t.flag_ts - t.first_ts for t in flagged if t.flag_ts is not None]
        lat = rec.latencies.get(p, [])
        personas[p] = {
            "kind": "attacker" if p in ATTACKERS else "benign",
            "accounts": len(accts),
            "active_accounts": len(trs),
            "requests": sum(t.requests for t in trs),
            "accounts_acted_on": len(flagged),
            "acted_share": round(len(flagged) / len(trs), 4) if trs else 0.0,
            "acted_within_200": sum(1 for i in idx if i <= HYDRA_WITHIN),
            "requests_to_first_action_median": _pct([float(i) for i in idx], 0.5),
            "requests_to_first_action_max": max(idx) if idx else None,
            "hours_to_first_action_median": round((_pct(secs, 0.5) or 0.0) / 3600, 2) if secs else None,
            "reasoning_tokens_before_action": sum(t.reasoning_before for t in trs),
            "reasoning_tokens_after_action": sum(t.reasoning_after for t in trs),
            "blocked_requests": sum(t.blocked for t in trs),
            "by_tier_acted": {
                tier: f"{sum(1 for t in flagged if t.tier == tier)}/{sum(1 for t in trs if t.tier == tier)}"
                for tier in ("trusted", "standard", "restricted")
                if any(t.tier == tier for t in trs)
            },
            "shadow_would_act": {
                r: n for r, ids in sorted(rec.shadow_accounts.items()) if (n := sum(1 for a in accts if a.id in ids))
            },
            f"latency_p50_{latency_unit}": _round(_pct(lat, 0.5)),
            f"latency_p99_{latency_unit}": _round(_pct(lat, 0.99)),
        }
    benign_tr = [t for t in rec.tracks.values() if t.persona in BENIGN]
    benign_hit = [t for t in benign_tr if t.flag_index is not None]
    hydra = [t for t in rec.tracks.values() if t.persona == "hydra"]
    hydra_ok = [t for t in hydra if t.flag_index is not None and t.flag_index <= HYDRA_WITHIN]
    after = sum(t.reasoning_after for t in rec.tracks.values())
    targets = {
        "hydra_acted_within_200": {
            "value": round(len(hydra_ok) / len(hydra), 4) if hydra else None,
            "detail": f"{len(hydra_ok)}/{len(hydra)} hydra accounts",
            "target": ">= 0.95",
            "met": bool(hydra) and len(hydra_ok) / len(hydra) >= TARGETS["hydra_acted_within_200"],
        },
        "benign_impacted": {
            "value": round(len(benign_hit) / len(benign_tr), 5) if benign_tr else None,
            "detail": f"{len(benign_hit)}/{len(benign_tr)} benign accounts",
            "target": "<= 0.003",
            "met": bool(benign_tr) and len(benign_hit) / len(benign_tr) <= TARGETS["benign_impacted_max"],
        },
        "reasoning_after_flag": {
            "value": after,
            "detail": "reasoning tokens delivered to any account at or after its first action",
            "target": "== 0",
            "met": after == 0,
        },
    }
    return {
        "meta": meta,
        "targets": targets,
        "personas": personas,
        "rules": {r: {"enforce": c[0], "shadow": c[1]} for r, c in sorted(rec.rule_hits.items())},
        "impacted_benign_accounts": sorted(
            f"{aid} ({t.flag_reason})"
            for aid, t in rec.tracks.items()
            if t.persona in BENIGN and t.flag_index is not None
        )[:50],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def format_report(s: dict[str, Any]) -> str:
    m = s["meta"]
    unit = m.get("latency_unit", "ms")
    lines = [
        f"distillguard simulate: seed={m['seed']} accounts={m['accounts']} days={m['days']} "
        f"through={m['through']} "
        f"requests={m['requests']} rules={','.join(m['rules'])}",
        "",
        f"{'persona':<18} {'kind':<8} {'accts':>5} {'reqs':>8} {'acted':>7} {'<=200':>6} {'req#1st':>7} "
        f"{'h to 1st':>8} {'CoT tok before':>14} {'after':>6} {'blocked':>7} {'p50 ' + unit:>9}  tiers acted",
    ]
    for p, d in s["personas"].items():
        lines.append(
            f"{p:<18} {d['kind']:<8} {d['active_accounts']:>5} {d['requests']:>8} "
            f"{d['accounts_acted_on']:>7} "
            f"{d['acted_within_200']:>6} {_fmt(d['requests_to_first_action_median']):>7} "
            f"{_fmt(d['hours_to_first_action_median']):>8} {d['reasoning_tokens_before_action']:>14} "
            f"{d['reasoning_tokens_after_action']:>6} {d['blocked_requests']:>7} "
            f"{_fmt(d[f'latency_p50_{unit}']):>9}  " + " ".join(f"{k}={v}" for k, v in d["by_tier_acted"].items())
        )
    lines += ["", "targets:"]
    for name, t in s["targets"].items():
        lines.append(
            f"  {'MET ' if t['met'] else 'MISS'} {name:<24} {t['value']!s:<10} target {t['target']:<8} ({t['detail']})"
        )
    if s.get("impacted_benign_accounts"):
        lines.append("  impacted benign accounts: " + ", ".join(s["impacted_benign_accounts"]))
    if "latency_note" in m:
        lines += ["", m["latency_note"]]
    would = [(p, d["shadow_would_act"]) for p, d in s["personas"].items() if d.get("shadow_would_act")]
    if would:
        lines += ["", "accounts shadow rules would act on if promoted (persona: rule=accounts):"]
        lines += [f"  {p:<18} " + " ".join(f"{r}={n}" for r, n in w.items()) for p, w in would]
    lines += ["", "rule hits (enforce / shadow):"]
    for r, c in s["rules"].items():
        lines.append(f"  {r:<28} {c['enforce']:>8} {c['shadow']:>8}")
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.1f}" if isinstance(x, float) else str(x))
