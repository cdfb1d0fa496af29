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


# Which RE2 pass a group's patterns join: group name -> part (groups not listed share the part ""). One big set
# over many patterns with ``.{0,N}`` gaps is slow on real prose: its DFA's states are the product of every
# pattern's open gaps, so a varied text keeps building new states (measured by tests/benchmarks/bench_rules.py
# ``--pattern-groups``). A part named ``filter:...`` runs as a FilteredRE2: a literal pass over the words each
# pattern needs, then only the patterns whose words are all there. Either way a pattern matches exactly when
# ``re2.search`` would: the split only changes how many passes find the same answer.
PARTS: dict[str, str] = {}


@dataclass(slots=True)
class PatternSet:
    """Named groups of patterns matched in one or a few RE2 passes (``PARTS``); ``hits`` counts matched
    patterns per group."""

    parts: tuple[tuple[Any, tuple[int, ...]], ...]  # (re2.Set or re2.Filter, its index -> ours)
    owners: tuple[str, ...]  # pattern index -> group name
    names: tuple[str, ...]

    @classmethod
    def build(
        cls, groups: Iterable[tuple[str, Iterable[str]]], layout: Mapping[str, str] | None = None
    ) -> PatternSet:
        """Compile; raises ``ValueError(group, pattern, reason)`` for the first refused pattern. ``layout``: group
        name -> part, ``PARTS`` by default."""
        if layout is None:
            layout = PARTS
        owners: list[str] = []
        names: list[str] = []
        by_part: dict[str, list[tuple[int, str]]] = {}
        for name, patterns in groups:
            names.append(name)
            part = layout.get(name.removeprefix("builtin:"), "")
            for p in patterns:
                reason = check_pattern(p)
                if reason is not None:
                    raise ValueError(name, p, reason)
                by_part.setdefault(part, []).append((len(owners), p))
                owners.append(name)
        parts: list[tuple[Any, tuple[int, ...]]] = []
        for part, items in by_part.items():
            if part.startswith("filter:"):  # same Match(bytes) -> indices | None as a set
                matcher: Any = re2.Filter()
                for _, p in items:
                    matcher.Add(p, re2_options())
            else:
                matcher = re2.Set.SearchSet(re2_options())
                for _, p in items:
                    matcher.Add(p)
            matcher.Compile()
            parts.append((matcher, tuple(i for i, _ in items)))
        return cls(tuple(parts), tuple(owners), tuple(names))

    def match(self, data: bytes) -> list[int]:
        """Indices (into ``owners``) of the patterns that match ``data`` (UTF-8)."""
        if len(self.parts) == 1:
            m, idx = self.parts[0]
            return [idx[i] for i in m.Match(data) or ()]
        return [idx[i] for m, idx in self.parts for i in m.Match(data) or ()]

    def hits(self, text: str) -> dict[str, int]:
        out = dict.fromkeys(self.names, 0)
        if not self.parts or not text:
            return out
        for i in self.match(text.encode()):
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
        prompt = self.by_source.get("prompt")
        # The built-in groups the prompt's set answers (``run``'s result covers these only).
        self.builtin = frozenset(n[8:] for n in prompt.names if n.startswith("builtin:")) if prompt else frozenset()
        # Per source: the set and, per pattern index, (is_builtin, output name); resolved once here.
        self._sets = [
            (source, ps, tuple(
                (True, o[8:]) if o.startswith("builtin:") else (False, "matchers." + o) for o in ps.owners
            ))
            for source, ps in self.by_source.items()
            if ps.parts
        ]

    def run(self, texts: Mapping[str, str | bytes], out: dict[str, Any]) -> dict[str, int]:
        """Write ``matchers.<name>`` counts into ``out``; returns the built-in groups' counts (hits only).
        A text may come already encoded (UTF-8 ``bytes``): the caller's copy is used as it is."""
        out.update(self.defaults)
        builtin: dict[str, int] = {}
        for source, ps, owners in self._sets:
            text = texts.get(source)
            if not text:
                continue
            for i in ps.match(text if isinstance(text, bytes) else text.encode()):
                is_builtin, name = owners[i]
                if is_builtin:
                    builtin[name] = builtin.get(name, 0) + 1
                else:
                    out[name] += 1
        return builtin
