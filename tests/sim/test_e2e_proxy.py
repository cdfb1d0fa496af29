"""End to end: a short seeded simulation through the real proxy (judge + redaction) against the fake model.

Checks the issue's targets at this scale (150 accounts, 12 simulated hours, ~11k requests): >= 95 % of
hydra accounts acted on within their first 200 requests, benign accounts impacted <= 0.3 % (here: none of
~120, heavy automation included), and zero reasoning tokens received by any account once acted on,
counted from the bodies the client received. Also the demo scene.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.sim.demo_scene import hydra_scene
from proxy.sim.runner_proxy import run_through_proxy

PACK = str(Path(__file__).resolve().parents[2] / "rules" / "default")


@pytest.fixture(scope="module")
def summary() -> dict:
    import asyncio

    return asyncio.run(run_through_proxy(seed=7, accounts=150, days=0.5, mix=None, rules=[PACK], baseline=50))


def test_targets_through_the_proxy(summary: dict) -> None:
    t = summary["targets"]
    assert t["hydra_acted_within_200"]["met"], t
    assert t["benign_impacted"]["met"], (t, summary["impacted_benign_accounts"])
    assert t["reasoning_after_flag"]["value"] == 0, t


def test_report_has_every_persona_and_measure(summary: dict) -> None:
    p = summary["personas"]
    assert {
        "chat",
        "coding_agent",
        "automation",
        "batch",
        "multilingual",
        "reasoning_curious",
        "app_user",
        "hydra",
        "low_slow",
        "jailbreaker",
        "logprob",
        "release_chaser",
    } <= set(p)
    hydra = p["hydra"]
    assert hydra["reasoning_tokens_before_action"] > 0  # reasoning was granted before detection ...
    assert hydra["reasoning_tokens_after_action"] == 0  # ... and withheld after, as received by the client
    assert "trusted" in hydra["by_tier_acted"]
    assert p["automation"]["accounts_acted_on"] == 0  # heavy legitimate automation untouched
    assert p["app_user"]["accounts_acted_on"] == 0  # one app's wrapper from many unrelated accounts
    assert summary["meta"]["direct_p50_ms"] is not None
    assert p["chat"]["latency_p50_ms"] is not None


async def test_demo_scene_catches_hydra_and_spares_benign() -> None:
    lines: list[str] = []
    rc = await hydra_scene(hours=6.0, print_fn=lines.append)
    assert rc == 0, "\n".join(lines)
    assert any("unaffected" in line for line in lines)
