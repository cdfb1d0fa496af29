"""The ``rules:`` config section: validated with the rest of the config, rule errors included."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import proxy.policy.settings as settings_mod
from proxy.config import ConfigError, load_config
from proxy.filters.judge import JudgeFilter

UPSTREAM = "upstreams:\n  - name: u\n    url: https://api.example.com\n"


def test_rules_section_builds_the_judge(example_rules: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copy(example_rules, tmp_path / "pack.yaml")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        UPSTREAM + "rules:\n  paths: [pack.yaml]\n  watch_every: null\n"
        "  audit: {path: audit.jsonl}\n  admin: {token_env: DG_ADMIN}\n"
    )
    s = load_config(cfg).sections["rules"]
    assert s.paths == (tmp_path / "pack.yaml",) and s.audit_path == tmp_path / "audit.jsonl"
    assert s.watch_every is None and s.ruleset is not None and s.admin_token() is None
    monkeypatch.setenv("DG_ADMIN", "t0k")
    assert s.admin_token() == "t0k"
    judge = settings_mod.build_judge(s)
    assert isinstance(judge, JudgeFilter) and judge.engine.ruleset is s.ruleset and judge.audit is not None


def test_rules_section_reports_rule_and_config_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("format: 1\nrules:\n  - id: x\n    key: account\n    when: 'nope'\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(UPSTREAM + "rules:\n  paths: [bad.yaml]\n  shadw: true\n")
    with pytest.raises(ConfigError) as ei:
        load_config(cfg)
    text = str(ei.value)
    assert "rules.shadw: unknown key; did you mean 'shadow'?" in text
    assert f"{tmp_path / 'bad.yaml'}:5:12: rule 'x': when: unknown name 'nope'" in text
