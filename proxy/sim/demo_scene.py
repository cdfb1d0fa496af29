"""Demo scene: a small hydra campaign caught next to unaffected benign users.

``await hydra_scene()`` starts its own fake reasoning model and proxy (rules: the default pack; redaction:
every tier ``pass``, i.e. reasoning granted), replays twelve simulated hours of seeded traffic on event time
(sixteen hydra accounts on two /24s sharing campaign templates, trusted tier included, plus a chat user, a
coding agent and one org's CI job) and prints, per account, the reasoning tokens the client actually
received before and after the proxy first acted, and when that was. Returns 0 when every hydra account was
acted on and no benign account was, else 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxy.sim.personas import BENIGN
from proxy.sim.traffic import generate, make_accounts

SCENE_MIX = {"hydra": 16, "chat": 2, "coding_agent": 1, "automation": 1}


def scene_lines(rec: Any, meta: dict[str, Any]) -> list[str]:
    head = (
        f"{'account':<18} {'tier':<10} {'reqs':>5} {'1st action':>10} {'after':>8} "
        f"{'reasoning before':>16} {'after':>6}  why"
    )
    out = [head, "-" * len(head)]
    for aid, t in sorted(rec.tracks.items(), key=lambda kv: (kv[1].persona in BENIGN, kv[0])):
        first = f"#{t.flag_index}" if t.flag_index else "none"
        took = f"{(t.flag_ts - t.first_ts) / 60:.0f} min" if t.flag_ts is not None else "-"
        why = t.flag_reason if t.flag_index else ("unaffected" if t.persona in BENIGN else "NOT CAUGHT")
        out.append(
            f"{aid:<18} {t.tier:<10} {t.requests:>5} {first:>10} {took:>8} "
            f"{t.reasoning_before:>16} {t.reasoning_after:>6}  {why}"
        )
    out.append("")
    out.append(
        f"{meta['requests']} requests through the proxy on event time; reasoning = tokens the client "
        "received. 'after' must be 0: once acted on, an account gets no reasoning."
    )
    return out


async def hydra_scene(
    *,
    seed: int = 7,
    hours: float = 12.0,
    rules: list[str] | None = None,
    print_fn: Callable[[str], Any] = print,
) -> int:
    from proxy.sim.runner_proxy import run_proxy_recorded

    rules = rules or [str(Path(__file__).resolve().parents[2] / "rules" / "default")]
    accts = make_accounts(seed, sum(SCENE_MIX.values()), {k: float(v) for k, v in SCENE_MIX.items()})
    for a in accts:
        a.start = 0.0  # everyone is active from the first minute of the scene
    events = list(generate(seed, accts, hours / 24))
    print_fn(
        f"\nhydra scene: {sum(1 for a in accts if a.persona == 'hydra')} hydra accounts sharing templates "
        f"and two /24s, next to benign users; {hours:g} simulated hours, default rule pack\n"
    )
    rec, meta = await run_proxy_recorded(
        seed=seed,
        accounts=len(accts),
        days=hours / 24,
        mix=None,
        rules=rules,
        events=events,
        population=accts,
        baseline=0,
    )
    for line in scene_lines(rec, meta):
        print_fn(line)
    hydra = [t for t in rec.tracks.values() if t.persona == "hydra"]
    benign = [t for t in rec.tracks.values() if t.persona in BENIGN]
    ok = (
        all(t.flag_index is not None for t in hydra)
        and all(t.flag_index is None for t in benign)
        and all(t.reasoning_after == 0 for t in rec.tracks.values())
    )
    return 0 if ok else 1
