"""Text matchers compiled into RE2 sets: one linear pass per text answers which patterns fired.

Patterns are attacker-facing, so they use RE2 semantics (no backreferences, no lookaround); a pattern
RE2 refuses is a load error, never a slow request. Matching is case-insensitive. Each named matcher is
exposed to conditions as ``matchers.<name>``: the number of its patterns that matched (0 = none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import re2

from proxy.policy.cel import re2_reason


def re2_options() -> re2.Options:
    opts = re2.Options()
    opts.case_sensitive = False
    opts.log_errors = False  # absl would print every refused pattern to stderr
    opts.max_mem = 64 << 20
    return opts


def check_pattern(pattern: str) -> str | None:
    """None when RE2 accepts the pattern, else RE2's reason."""
    try:
        re2.compile(pattern, re2_options())
    except re2.error as e:
        return re2_reason(e)
    return None


@dataclass(slots=True)
class PatternSet:
    """One RE2 set over several named groups of patterns; ``hits`` counts matched patterns per group."""

    rset: re2.Set | None
    owners: tuple[str, ...]  # pattern index -> group name
    names: tuple[str, ...]

    @classmethod
    def build(cls, groups: Iterable[tuple[str, Iterable[str]]]) -> PatternSet:
        """Compile; raises ``ValueError(group, pattern, reason)`` for the first refused pattern."""
        rset = re2.Set.SearchSet(re2_options())
        owners: list[str] = []
        names: list[str] = []
        for name, patterns in groups:
            names.append(name)
            for p in patterns:
                reason = check_pattern(p)
                if reason is not None:
                    raise ValueError(name, p, reason)
                rset.Add(p)
                owners.append(name)
        if not owners:
            return cls(None, (), tuple(names))
        rset.Compile()
        return cls(rset, tuple(owners), tuple(names))

    def hits(self, text: str) -> dict[str, int]:
        out = dict.fromkeys(self.names, 0)
        if self.rset is None or not text:
            return out
        for i in self.rset.Match(text) or ():
            out[self.owners[i]] += 1
        return out


class CompiledMatchers:
    """Rule matchers, one RE2 set per text source (prompt, last_user, system, user_agent).

    The prompt's set also carries the built-in phrase families (group names prefixed ``builtin:``), so
    the prompt is scanned once for both.
    """

    def __init__(self, by_source: Mapping[str, PatternSet]) -> None:
        self.by_source = dict(by_source)
        self.names = tuple(
            n for ps in self.by_source.values() for n in ps.names if not n.startswith("builtin:")
        )
        self.defaults = {"matchers." + n: 0 for n in self.names}
        # Per source: the set and, per pattern index, (is_builtin, output name); resolved once here.
        self._sets = [
            (source, ps.rset, tuple(
                (True, o[8:]) if o.startswith("builtin:") else (False, "matchers." + o) for o in ps.owners
            ))
            for source, ps in self.by_source.items()
            if ps.rset is not None
        ]

    def run(self, texts: Mapping[str, str], out: dict[str, Any]) -> dict[str, int]:
        """Write ``matchers.<name>`` counts into ``out``; returns the built-in groups' counts (hits only)."""
        out.update(self.defaults)
        builtin: dict[str, int] = {}
        for source, rset, owners in self._sets:
            text = texts.get(source)
            if not text:
                continue
            for i in rset.Match(text) or ():
                is_builtin, name = owners[i]
                if is_builtin:
                    builtin[name] = builtin.get(name, 0) + 1
                else:
                    out[name] += 1
        return builtin
