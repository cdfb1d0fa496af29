"""Text matchers compiled into RE2 sets: one linear pass per text answers which patterns fired.

Patterns are attacker-facing, so they use RE2 semantics (no backreferences, no lookaround); a pattern
RE2 refuses is a load error, never a slow request. Matching is case-insensitive. Each named matcher is
exposed to conditions as ``matchers.<name>``: the number of its patterns that matched (0 = none).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
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

# ASCII symbols with no case variant (case-insensitive matching leaves them alone) that ordinary prose seldom holds,
# rarest first: a filtered pattern every match of which contains one of them is run only on text that has it
# (``required_byte``). The tags family's patterns all need a "<": on a 100 KB prompt without one, three RE2 passes
# over the whole text (~0.5 ms) are skipped.
GATE_BYTES = b"<>{}[]|~`^@#$%&*=+\\"
# The gated filter calls the wrapper's compiled RE2 directly (``_Regexp._regexp.Match``, what ``search`` calls without
# building a match object): google-re2 internals, so a version without them runs every filter part ungated.
_ANCHOR = getattr(re2, "_Anchor", None)
_UNANCHORED = getattr(_ANCHOR, "UNANCHORED", None)
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT))


def _required(items: Any) -> set[int]:
    """Code points every match of the parsed (``re._parser``) sequence ``items`` contains: its literals, those of
    groups and of repeats of at least one, and those common to every branch of an alternation. (Classes, categories
    and anything else require nothing: read conservatively.)"""
    out: set[int] = set()
    for op, av in items:
        if op is sre.LITERAL:
            out.add(av)
        elif op is sre.SUBPATTERN:
            out |= _required(av[3])
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            out |= _required(av)
        elif op in _REPEATS and av[0] >= 1:
            out |= _required(av[2])
        elif op is sre.BRANCH:
            out |= set.intersection(*(_required(b) for b in av[1]))
        elif op is sre.IN and len(av) == 1 and av[0][0] is sre.LITERAL:
            out.add(av[0][1])
    return out


def required_byte(pattern: str) -> bytes:
    """A byte of ``GATE_BYTES`` that every match of ``pattern`` (RE2 syntax) contains, or ``b""`` when none is sure.

    Read with Python's own regex parser, which agrees with RE2 on what is a literal in the patterns it accepts; a
    pattern it refuses or warns about (RE2-only syntax: ``\\pL``, ``\\x{..}``, ``(?-i)``, POSIX classes, which Python
    would read as nested sets) gets no gate. A wrong gate could only come from a literal Python sees and RE2 does not:
    ``tests/policy/test_feat_gates.py`` checks every gated pattern's matches on the phrasing corpora."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            need = _required(sre_parse.parse(pattern))
    except Exception:  # any trouble reading it: no gate
        return b""
    for b in GATE_BYTES:
        if b in need:
            return bytes((b,))
    return b""


def _gates(matcher: Any, items: list[tuple[int, str]]) -> tuple[tuple[Any, bytes], ...] | None:
    """Per pattern of a compiled filter: its compiled RE2 and its gate byte; None (run the filter ungated) when this
    google-re2 lacks the internals used."""
    if _UNANCHORED is None:
        return None
    try:
        regexps = [matcher.re(k)._regexp for k in range(len(items))]
    except AttributeError:
        return None
    if not all(callable(getattr(r, "Match", None)) for r in regexps):
        return None
    return tuple((r, required_byte(p)) for r, (_, p) in zip(regexps, items, strict=True))


@dataclass(slots=True)
class PatternSet:
    """Named groups of patterns matched in one or a few RE2 passes (``PARTS``); ``hits`` counts matched
    patterns per group."""

    parts: tuple[tuple[Any, tuple[int, ...]], ...]  # (re2.Set or re2.Filter, its index -> ours)
    owners: tuple[str, ...]  # pattern index -> group name
    names: tuple[str, ...]
    # per part: None (a set), or for a filter, per pattern its compiled RE2 and its gate byte (``required_byte``)
    gates: tuple[tuple[tuple[Any, bytes], ...] | None, ...]

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
        gates: list[tuple[tuple[Any, bytes], ...] | None] = []
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
            gates.append(_gates(matcher, items) if isinstance(matcher, re2.Filter) else None)
        return cls(tuple(parts), tuple(owners), tuple(names), tuple(gates))

    def match(self, data: bytes) -> list[int]:
        """Indices (into ``owners``) of the patterns that match ``data`` (UTF-8).

        A filter part runs as ``FilteredRE2::AllMatches`` does (the patterns its literal pass lets through, each
        searched for), here with the gate first: a pattern whose ``required_byte`` the text lacks cannot match."""
        out: list[int] = []
        for (m, idx), gates in zip(self.parts, self.gates, strict=True):
            if gates is None:
                out += [idx[i] for i in m.Match(data) or ()]
                continue
            end = len(data)
            for i in m.Match(data, potential=True) or ():
                regexp, gate = gates[i]
                if gate and data.find(gate) < 0:
                    continue
                if regexp.Match(_UNANCHORED, data, 0, end)[0][0] >= 0:
                    out.append(idx[i])
        return out

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
