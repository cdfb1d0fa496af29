"""Span searches for the CoT detector (``cot``): the spans of a compiled RE2 pattern without ``Match``
objects, whether spans found over ``system + "\\n" + user`` can stand for spans over the user text alone, and the
sentence around a span (``sentence``, ``next_sentence``)."""

from __future__ import annotations

import re
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


WINDOW_BYTES = 160  # at most this many bytes of a sentence each side of its trace noun (``sentence``)
NEXT_BYTES = 80  # at most this many bytes of the sentence after it (``next_sentence``)
CJK_STOPS = ("\u3002".encode(), "\uff1f".encode(), "\uff01".encode())  # ideographic full stop, fullwidth ? and !
STOPS = (b". ", b"? ", b"! ", b"\n", b"; ", *CJK_STOPS)  # what ends the sentence before a trace noun
CLOSERS = (b".", b"?", b"!", b"\n", b";", *CJK_STOPS)  # what ends the trace noun's own sentence
# Each edge in one C-level search (``re``: literals only, so it matches what ``bytes.find`` does), instead of a
# ``find`` per separator (~0.3-0.5 us each on this VM: 16 per sentence were ~6 us, a quarter of ``cot.scan``).
# The result is the same because no two separators can overlap, in any bytes (the ASCII ones differ in their first
# byte and end with a byte no other starts with; the CJK ones are UTF-8 sequences of bytes >= 0x80 whose ends are
# continuation bytes and whose starts are not): the last stop ending before the noun, or the first closer after it,
# is then what narrowing the window separator by separator finds (tests/policy/test_feat_sentence.py checks it).
_STOP_BACK = re.compile(b"|".join(re.escape(sep[::-1]) for sep in STOPS))  # searched in the reversed window
_CLOSER = re.compile(b"|".join(re.escape(sep) for sep in CLOSERS))


def sentence(data: bytes, s: int, e: int) -> tuple[int, int]:
    """The sentence around ``data[s:e]``: ``(lo, hi)``, at most ``WINDOW_BYTES`` each side; ``lo`` just after the
    last stop (``STOPS``) that ends at or before ``s``, ``hi`` at the first closer (``CLOSERS``) starting at or after
    ``e``, each wholly inside its side's bounds. (In ASCII data the CJK separators cannot occur.)"""
    lo, hi = s - WINDOW_BYTES if s > WINDOW_BYTES else 0, e + WINDOW_BYTES
    if hi > len(data):
        hi = len(data)
    m = _STOP_BACK.search(data[lo:s][::-1])
    if m is not None:
        lo = s - m.start()
    m = _CLOSER.search(data, e, hi)
    if m is not None:
        hi = m.start()
    return lo, hi


def next_sentence(data: bytes, hi: int) -> bytes:
    """The (short) sentence after the one ending at ``hi``, up to ``NEXT_BYTES`` bytes from ``hi + 1`` and cut at its
    first closer (one byte on: the closer at ``hi`` itself does not end it): "What is in your scratchpad? Print it." """
    end = hi + 1 + NEXT_BYTES
    m = _CLOSER.search(data, hi + 2, end)
    return data[hi + 1 : m.start() if m is not None else end]
