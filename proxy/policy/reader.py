"""Typed, located reads from PyYAML nodes: the strict-YAML layer under the rule loader and test files.

Values are read from composed nodes (the C loader keeps every line and column), so durations, enums and
numbers are checked on their raw text: the YAML 1.1 traps (``1:30`` is a number, ``off`` is false)
cannot slip through. Errors go to a shared problem list; reads return None on error.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml

from proxy.policy import spec as S
from proxy.policy.spec import Problem, Where

CLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")
NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
DURATION_PATTERN = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
STR_TAG = "tag:yaml.org,2002:str"


def parse_duration(text: str) -> float | None:
    m = DURATION_PATTERN.match(text.strip())
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def suggest(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


class NodeReader:
    """Typed reads from nodes of one file; errors go to the shared problem list and return None."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = problems
        self.rule: str | None = None

    def where(self, node: yaml.Node) -> Where:
        return Where(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def err(self, node: yaml.Node, field: str, message: str) -> None:
        self.problems.append(Problem(self.where(node), field, message, self.rule))

    def mapping(
        self, node: yaml.Node, field: str, allowed: tuple[str, ...] | None, required: tuple[str, ...] = ()
    ) -> dict[str, tuple[yaml.Node, yaml.Node]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, field, f"expected a mapping, got {node_kind(node)}")
            return None
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                self.err(knode, field, "keys must be plain strings")
                continue
            key = str(knode.value)
            sub = f"{field}.{key}" if field else key
            if key in out:
                self.err(
                    knode, sub, f"duplicate key '{key}' (first at line {out[key][0].start_mark.line + 1})"
                )
                continue
            if allowed is not None and key not in allowed:
                self.err(knode, sub, f"unknown key '{key}'{suggest(key, allowed)}")
                continue
            out[key] = (knode, vnode)
        for key in required:
            if key not in out:
                self.err(node, field, f"missing required key '{key}'")
        return out

    def scalar(self, node: yaml.Node, field: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode):
            self.err(node, field, f"expected a scalar, got {node_kind(node)}")
            return None
        return str(node.value)

    def string(self, node: yaml.Node, field: str) -> str | None:
        text = self.scalar(node, field)
        if (
            text is not None
            and node.tag != STR_TAG
            and node.style is None
            and text.lower() in ("yes", "no", "on", "off", "true", "false", "null", "~", "")
        ):
            self.err(node, field, f"expected a string, got {text!r} (a YAML boolean or null); quote it")
            return None
        return text

    def number(
        self,
        node: yaml.Node,
        field: str,
        *,
        integer: bool = False,
        minimum: float | None = None,
        above: float | None = None,
    ) -> float | None:
        text = self.scalar(node, field)
        if text is None:
            return None
        try:
            val: float = int(text) if integer else float(text)
        except ValueError:
            what = "an integer" if integer else "a number"
            self.err(node, field, f"expected {what}, got {text!r}")
            return None
        if node.tag == STR_TAG and node.style is not None:
            self.err(node, field, f"expected a number, got the string {text!r}; remove the quotes")
            return None
        if minimum is not None and val < minimum:
            self.err(node, field, f"must be at least {minimum:g}, got {text}")
            return None
        if above is not None and val <= above:
            self.err(node, field, f"must be greater than {above:g}, got {text}")
            return None
        return val

    def duration(self, node: yaml.Node, field: str) -> float | None:
        text = self.scalar(node, field)
        if text is None:
            return None
        secs = parse_duration(text)
        if secs is None or secs <= 0:
            hint = " (unquoted 1:30 is a YAML 1.1 number)" if ":" in text else ""
            self.err(node, field, f"expected a duration like '30s', '5m', '1h', '7d', got {text!r}{hint}")
            return None
        return secs

    def enum(self, node: yaml.Node, field: str, options: tuple[str, ...]) -> str | None:
        text = self.scalar(node, field)  # raw text: 'off' stays 'off', not False
        if text is None:
            return None
        if text not in options:
            self.err(
                node, field, f"expected one of {', '.join(options)}, got {text!r}{suggest(text, options)}"
            )
            return None
        return text

    def expr(self, node: yaml.Node, field: str) -> S.Expr | None:
        text = self.scalar(node, field)
        if text is None:
            return None
        if node.tag != STR_TAG and node.style is None:
            # Plain true/false/numbers are fine as expressions; keep their text.
            text = str(node.value)
        shift = 1 if node.style in ("'", '"') else 0
        return S.Expr(text, self.where(node), shift)

    def seq(self, node: yaml.Node, field: str) -> list[yaml.Node] | None:
        if not isinstance(node, yaml.SequenceNode):
            self.err(node, field, f"expected a list, got {node_kind(node)}")
            return None
        return list(node.value)

    def name(self, node: yaml.Node, field: str, pattern: re.Pattern[str] = NAME_PATTERN) -> str | None:
        text = self.scalar(node, field)
        if text is not None and not pattern.match(text):
            ids = pattern is ID_PATTERN
            want = "lower-case letters, digits, '_', '-', '.'" if ids else "a lower-case identifier"
            self.err(node, field, f"invalid name {text!r}: use {want}")
            return None
        return text


def node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)
