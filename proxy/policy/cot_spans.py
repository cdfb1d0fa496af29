"""Span searches for the CoT detector (``cot``): the spans of a compiled RE2 pattern without ``Match``
objects, and whether spans found over ``system + "\\n" + user`` can stand for spans over the user text alone."""

from __future__ import annotations

from collections.abc import Iterable

import re2

_UNANCHORED = re2._Anchor.UNANCHORED
NA_OPEN = r"(?:^|\P{L})"  # the one use of ``^`` a shiftable pattern may make (``shiftable``)


def spans(terms: re2._Regexp, data: bytes, pos: int, limit: int) -> list[tuple[int, int]]:
    """The first ``limit`` spans ``terms.finditer(data, pos)`` yields (the same spans, in the same order), without
    a ``Match`` object and a generator step per span: the compiled RE2 object is called directly."""
    out: list[tuple[int, int]] = []
    end = len(data)
    if pos > end:
        return out
    match = terms._regexp.Match
    while len(out) < limit:
        span = match(_UNANCHORED, data, pos, end)[0]
        if span[0] < 0:
            break
        out.append(span)
        if pos == end:
            break
        pos = pos + 1 if span[1] == pos else span[1]  # an empty match: step past it, as ``finditer`` does
    return out


def shiftable(patterns: Iterable[str]) -> bool:
    """Can the spans of ``patterns`` over ``system + b"\\n" + user`` stand for their spans over ``user`` alone
    (``user_spans``)? Every assertion looks at one byte before a position at most, and the newline before the user
    text is what its start looks like (not a word character, not a letter) to all of them except ``^`` and
    ``\\A``: so no pattern may use those, except as ``(?:^|\\P{L})`` opening one of its top-level alternatives
    (a match from the user text's start then also matches from the newline before it: a span that starts in the
    system part, for which ``user_spans`` says None). Read conservatively: an unsure pattern says no."""
    for p in patterns:
        if r"\A" in p:
            return False
        starts, carets = {0}, []
        depth, i, in_class = 0, 0, False
        while i < len(p):
            c = p[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
                i += 2 if p.startswith("^", i + 1) else 1  # a negated class; "[]" or "[^]" would be odd: say no
                if p.startswith("]", i):
                    return False
                continue
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "|" and depth == 0:
                starts.add(i + 1)
            elif c == "^":
                carets.append(i)
            i += 1
        if any(not (p.startswith(NA_OPEN, c - 3) and c - 3 in starts) for c in carets):
            return False
    return True
