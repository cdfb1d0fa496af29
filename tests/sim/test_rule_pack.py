"""The default pack loads cleanly and every *.test.yaml beside it passes (``distillguard rules test``)."""

from __future__ import annotations

from pathlib import Path

from proxy.policy.loader import load_ruleset
from proxy.policy.toolkit import check, run_tests

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "rules" / "default"


def test_pack_checks() -> None:
    code, text = check([str(PACK)])
    assert code == 0, text


def test_every_rule_file_has_a_test_file() -> None:
    for f in PACK.glob("*.yaml"):
        if f.name.endswith(".test.yaml"):
            continue
        assert (PACK / (f.stem + ".test.yaml")).exists(), f"{f.name} has no test file beside it"


def test_pack_tests_pass() -> None:
    code, text = run_tests([str(PACK)])
    assert code == 0, text
    assert "0 failed" in text


def test_every_rule_is_hit_by_some_case_and_documented() -> None:
    code, text = run_tests([str(PACK)])
    assert code == 0
    cov = [line for line in text.splitlines() if line.startswith("coverage")]
    never = [set(line.split("never hit: ", 1)[1].split(", ")) if "never hit: " in line else set() for line in cov]
    rs = load_ruleset([str(PACK)])
    for r in rs.rules:
        assert any(r.id not in s for s in never), f"rule {r.id} is hit by no test case"
        assert r.description, f"rule {r.id} has no description (rationale)"


def test_shadow_by_default_where_false_positives_are_plausible() -> None:
    rs = load_ruleset([str(PACK)])
    modes = {r.id: r.mode for r in rs.rules}
    for rid in (
        "hydra-prefix",
        "hydra-ip-prefix",
        "logprob-harvest-verified",
        "grader-use",
        "templated-bulk",
        "scripted-timing",
        "release-chase",
        "cot-elicit-multilingual",
    ):
        assert modes[rid] == "shadow", rid
