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


def _forced_app_prefix() -> str:
    """``signals.prefix`` of the forced-reasoning app, as an operator reads it from an alert or the audit log."""
    from proxy.policy.signals import RequestMeta, compute_features, view_from_record
    from proxy.sim import personas as P

    _name, system, wrapper, _ua, _f = P.FORCED_APP
    req = {"model": P.REASONING_MODEL, "system": system, "prompt": wrapper.format(p="x + 1 = 2"), "reasoning": True}
    meta = RequestMeta(account_id="a", tier="standard", org="", key_id="k", ip="100.64.0.1", user_agent="", path="/")
    rs = load_ruleset([str(PACK)])
    return str(compute_features(view_from_record(req), meta, 0.0, rs.matchers)["signals.prefix"])


def test_template_spread_separates_low_and_slow_from_app_users(tmp_path: Path) -> None:
    """Replay, 3 days: the low-and-slow campaign (30 accounts on residential addresses, two wrappers, reasoning
    always on) loses reasoning; users of apps with a per-user reasoning setting are untouched. An app that forces
    reasoning on looks like the campaign (its heavy users are acted on) until the operator lists its prefix."""
    from proxy.sim.runner_replay import run_replay

    mix = {"low_slow": 0.3, "app_user": 0.5, "app_forced": 0.2}
    s = run_replay(seed=7, accounts=100, days=3.0, mix=mix, rules=[str(PACK)])
    p = s["personas"]
    assert p["low_slow"]["accounts_acted_on"] == p["low_slow"]["active_accounts"] == 30
    assert p["low_slow"]["reasoning_tokens_after_action"] == 0
    # no app user is acted on by the template-spread rules (a heavy one on a campus /24 may be by
    # hydra-prefix-infra when 4+ students there all have the setting on: docs/rules-pack.md, known gaps)
    spread = [a for a in s["impacted_benign_accounts"] if "template-spread" in a]
    assert not [a for a in spread if a.startswith("app_user")], spread
    assert p["app_forced"]["accounts_acted_on"] > 0  # the stated trade-off: no allowlist, no separation
    local = tmp_path / "site.local.yaml"
    local.write_text(f"format: 1\nlists:\n  known_app_prefixes: {{append: ['{_forced_app_prefix()}']}}\n")
    s2 = run_replay(seed=7, accounts=100, days=3.0, mix=mix, rules=[str(PACK), str(local)])
    p2 = s2["personas"]
    assert p2["app_forced"]["accounts_acted_on"] == 0
    assert p2["low_slow"]["accounts_acted_on"] == 30
