"""Invalid rule snippets paired with the exact errors they must produce (file:line:col: rule: field: message)."""
# ruff: noqa: E501  (tables of snippets and exact messages read best one per line)

from __future__ import annotations

import pytest

from proxy.policy.loader import load_text
from proxy.policy.spec import RulesError

CASES = [
    (
        "unknown_key",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    thresold: 'true'\n",
        ["r.yaml:6:5: rule 'r1': thresold: unknown key 'thresold'; did you mean 'threshold'?"],
    ),
    (
        "bad_mode",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    mode: dryrun\n",
        ["r.yaml:6:11: rule 'r1': mode: expected one of enforce, shadow, off, got 'dryrun'"],
    ),
    ("mode_off_ok", "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    mode: off\n", []),
    (
        "dup_key",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    when: 'false'\n",
        ["r.yaml:6:5: rule 'r1': when: duplicate key 'when' (first at line 5)"],
    ),
    (
        "sexagesimal",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    aggregates:\n      n: {kind: count, window: 1:30}\n    threshold: 'agg.n > 1'\n",
        [
            "r.yaml:7:32: rule 'r1': aggregates.n.window: expected a duration like '30s', '5m', '1h', '7d', got '1:30' (unquoted 1:30 is a YAML 1.1 number)"
        ],
    ),
    (
        "bad_duration",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    aggregates:\n      n: {kind: count, window: 30 secs}\n    threshold: 'agg.n > 1'\n",
        [
            "r.yaml:7:32: rule 'r1': aggregates.n.window: expected a duration like '30s', '5m', '1h', '7d', got '30 secs'"
        ],
    ),
    (
        "cel_unknown",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'requets.max_tokens > 4000'\n",
        [
            "r.yaml:5:12: rule 'r1': when: unknown name 'requets.max_tokens'; did you mean 'request.max_tokens'?"
        ],
    ),
    (
        "cel_type",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'request.model > 3'\n",
        ["r.yaml:5:26: rule 'r1': when: cannot order string > int"],
    ),
    (
        "cel_not_bool",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: request.max_tokens\n",
        ["r.yaml:5:11: rule 'r1': when: expression must be bool, but it is int"],
    ),
    (
        "cel_syntax",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'request.n > '\n",
        ["r.yaml:5:24: rule 'r1': when: expected a value, found end of expression"],
    ),
    (
        "agg_in_when",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'agg.n > 1'\n",
        ["r.yaml:5:12: rule 'r1': when: unknown name 'agg.n'"],
    ),
    (
        "response_in_request",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'response.output_tokens > 1'\n",
        [
            "r.yaml:5:12: rule 'r1': when: unknown name 'response.output_tokens' (response.* is known only in rules with phase: response)"
        ],
    ),
    (
        "re2_backref",
        "format: 1\nmatchers:\n  m:\n    on: prompt\n    patterns: ['(a+)\\1']\nrules: []\n",
        ["r.yaml:5:16: matchers.m.patterns: RE2 refuses '(a+)\\1': invalid escape sequence: \\1"],
    ),
    (
        "re2_lookahead",
        "format: 1\nmatchers:\n  m:\n    on: prompt\n    patterns: ['foo(?=bar)']\nrules: []\n",
        ["r.yaml:5:16: matchers.m.patterns: RE2 refuses 'foo(?=bar)': invalid perl operator: (?="],
    ),
    ("missing_format", "rules: []\n", ["r.yaml:1:1: missing required key 'format'"]),
    (
        "wrong_format",
        "format: 2\nrules: []\n",
        ["r.yaml:1:9: format: unsupported format '2'; this version reads format: 1"],
    ),
    (
        "missing_when",
        "format: 1\nrules:\n  - id: r1\n    key: account\n",
        ["r.yaml:3:5: rule 'r1': missing required key 'when'"],
    ),
    (
        "bad_action",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    actions:\n      - {do: ban, for: 1h}\n",
        [
            "r.yaml:7:14: rule 'r1': actions[].do: expected one of log, tag, throttle, pace, redact, harden, cut, block, alert, got 'ban'"
        ],
    ),
    (
        "throttle_gt1",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    actions:\n      - {do: throttle, factor: 2, for: 1h}\n",
        [
            "r.yaml:7:32: rule 'r1': actions[throttle].factor: a throttle factor multiplies the rate limit and must be in (0, 1], got 2"
        ],
    ),
    (
        "redact_mode",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    actions:\n      - {do: redact, mode: hide}\n",
        [
            "r.yaml:7:28: rule 'r1': actions[redact].mode: expected one of pass, seal, placeholder, omit, drop, got 'hide'"
        ],
    ),
    (
        "agg_no_threshold",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    aggregates:\n      n: {kind: count, window: 1h}\n",
        ["r.yaml:3:5: rule 'r1': threshold: a rule with aggregates needs a threshold over agg.*"],
    ),
    (
        "dup_rule",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n  - id: r1\n    key: account\n    when: 'true'\n",
        [
            "r.yaml:6:9: rule 'r1': id: duplicate rule id (first defined at r.yaml:3:5); to change it from a later file, add 'override: true'"
        ],
    ),
    (
        "bad_key",
        "format: 1\nrules:\n  - id: r1\n    key: acount.id\n    when: 'true'\n",
        [
            "r.yaml:3:5: rule 'r1': key: cannot aggregate by 'acount.id': use one of account, key, org, ip, ip_prefix, template, template_cluster, prefix, user_agent, model, global, or a string feature; did you mean 'account.id'?"
        ],
    ),
    (
        "unknown_list",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'request.model in lists.reasoning'\n",
        ["r.yaml:5:29: rule 'r1': when: unknown list 'reasoning'"],
    ),
    (
        "yaml_syntax",
        "format: 1\nrules: [\n",
        ["r.yaml:3:1: YAML syntax error: did not find expected node content"],
    ),
    (
        "escalate_no_for",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    actions:\n      - {do: block, increment: {factor: 2}}\n",
        [
            "r.yaml:7:9: rule 'r1': actions[block].increment: an escalating block needs a base duration in 'for'"
        ],
    ),
    (
        "sum_no_value",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'true'\n    aggregates:\n      n: {kind: sum, window: 1h}\n    threshold: 'agg.n > 1'\n",
        ["r.yaml:7:10: rule 'r1': aggregates.n: kind 'sum' needs 'value'"],
    ),
    (
        "method_escape",
        "format: 1\nrules:\n  - id: r1\n    key: account\n    when: 'request.model.__class__ == \"x\"'\n",
        [
            "r.yaml:5:12: rule 'r1': when: unknown name 'request.model.__class__'; did you mean 'request.model'?"
        ],
    ),
]


@pytest.mark.parametrize(("name", "text", "errors"), CASES, ids=[c[0] for c in CASES])
def test_snippet_errors(name: str, text: str, errors: list[str]) -> None:
    if not errors:
        load_text("r.yaml", text)
        return
    with pytest.raises(RulesError) as ei:
        load_text("r.yaml", text)
    assert [str(p) for p in ei.value.problems] == errors


def test_all_errors_are_collected_across_rules_and_phases() -> None:
    text = """format: 1
rules:
  - id: a
    key: account
    when: 'request.n > 1'
    mode: dryrun
  - id: b
    key: account
    when: 'request.nn > 1'
  - id: c
    key: account
    when: 'true'
    aggregates:
      x: {kind: count, window: 5 minutes}
    threshold: 'agg.x > 1'
"""
    with pytest.raises(RulesError) as ei:
        load_text("r.yaml", text)
    got = [(p.rule, p.field) for p in ei.value.problems]
    assert got == [("a", "mode"), ("b", "when"), ("c", "aggregates.x.window")]


def test_problem_json_shape() -> None:
    with pytest.raises(RulesError) as ei:
        load_text("r.yaml", "format: 1\nrulez: []\n")
    assert ei.value.problems[0].as_dict() == {
        "file": "r.yaml",
        "line": 2,
        "col": 1,
        "rule": None,
        "field": "rulez",
        "message": "unknown key 'rulez'; did you mean 'rules'?",
    }
