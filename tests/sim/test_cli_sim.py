"""``distillguard simulate`` (via ``proxy.cli_sim``): options, JSON output, export for ``replay``."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from proxy.cli_sim import add_subcommands, main
from proxy.policy.toolkit import replay

PACK = str(Path(__file__).resolve().parents[2] / "rules" / "default")


def test_registers_on_a_parser() -> None:
    p = argparse.ArgumentParser(prog="distillguard")
    add_subcommands(p.add_subparsers(dest="command"))
    args = p.parse_args(
        [
            "simulate",
            "--seed",
            "3",
            "--scale",
            "0.5",
            "--mix",
            "chat=1",
            "hydra=0.5",
            "--through",
            "proxy",
            "--days",
            "2",
            "--json",
        ]
    )
    assert (args.seed, args.accounts, args.scale, args.through, args.days) == (3, 1000, 0.5, "proxy", 2.0)
    assert args.mix == ["chat=1", "hydra=0.5"]


def test_replay_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["simulate", "--seed", "2", "--accounts", "60", "--days", "0.25", "--json"])
    out = orjson.loads(capsys.readouterr().out)
    assert rc == 0
    sim = out["simulation"]
    assert sim["meta"]["through"] == "replay" and sim["meta"]["requests"] > 0
    assert set(sim["targets"]) == {"hydra_acted_within_200", "benign_impacted", "reasoning_after_flag"}
    assert out["phrasings"]["benign"]["total"] >= 200


def test_bad_mix_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--mix", "dragons=1", "--no-phrasings"]) == 2
    assert "persona" in capsys.readouterr().err


def test_export_feeds_distillguard_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "traffic.jsonl"
    assert main(["simulate", "--seed", "2", "--accounts", "40", "--days", "0.2", "--export", str(out)]) == 0
    capsys.readouterr()
    code, text = replay([PACK], str(out))
    assert code == 0, text
    assert "replayed" in text and "hydra-prefix-infra" in text
