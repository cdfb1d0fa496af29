"""CoT-elicitation phrasing evaluation on the development and held-out splits of phrasing families."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.sim.phrasings import evaluate, load_benign, load_families

PACK = str(Path(__file__).resolve().parents[2] / "rules" / "default")


@pytest.fixture(scope="module")
def result() -> dict:
    return evaluate([PACK])


def test_splits_do_not_share_families_or_phrasings() -> None:
    dev, held = load_families("dev"), load_families("heldout")
    assert not set(dev) & set(held)
    assert not {p for ps in dev.values() for p in ps} & {p for ps in held.values() for p in ps}
    assert len(load_benign()) >= 200


def test_benign_prompts_that_mention_reasoning_stay_under_one_percent(result: dict) -> None:
    assert result["benign"]["rate"] <= 0.01, result["benign"]["hits"]


def test_development_families_are_caught(result: dict) -> None:
    assert result["dev"].rate >= 0.95, result["dev"].misses


@pytest.mark.xfail(
    strict=True,
    reason="measured on heldout2: 24/48 = 50.0% (first held-out split: 38/52 = 73.1%); target 90% not met",
)
def test_heldout_families_reach_the_target(result: dict) -> None:
    assert result["heldout"].rate >= 0.90
