"""The rule set's version changes with anything its files say, and only with that."""

from __future__ import annotations

from pathlib import Path

from proxy.policy.loader import load_ruleset

BASE = """format: 1
lists:
  tiers: [free]
macros:
  hot: "account.tier in lists.tiers"
rules:
  - id: r1
    description: d
    mode: enforce
    when: "hot"
    key: account
    actions: [{do: log, message: "m"}]
"""


def _version(tmp_path: Path, text: str, name: str = "a.yaml") -> str:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return load_ruleset([str(f)]).version


def test_same_files_give_the_same_version(tmp_path: Path) -> None:
    assert _version(tmp_path, BASE) == _version(tmp_path, BASE)


def test_a_macro_list_or_action_edit_changes_the_version(tmp_path: Path) -> None:
    base = _version(tmp_path, BASE)
    for edited in (
        BASE.replace('"account.tier in lists.tiers"', '"account.tier in lists.tiers || request.n > 4"'),
        BASE.replace("[free]", "[free, education]"),
        BASE.replace('message: "m"', 'message: "other"'),
    ):
        assert _version(tmp_path, edited) != base, edited
