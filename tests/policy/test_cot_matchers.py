"""The CoT detector's matchers (``cot._GroupSet``: RE2 set, FilteredRE2 or both) answer exactly what searching
each pattern alone answers, on whole prompts and on the sentence windows ``cot.scan`` builds."""

from __future__ import annotations

import random

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.policy import cot
from proxy.policy.matchers import re2_options
from proxy.sim.phrasings import load_benign, load_families


def _texts() -> list[bytes]:
    rnd = random.Random(5)
    phrasings = [p for ps in load_families("dev").values() for p in ps]
    benign = list(load_benign("dev"))
    texts = rnd.sample(phrasings, 250) + rnd.sample(benign, 250)
    # longer mixed texts: several prompts run together, as a long request would carry them
    texts += [" ".join(rnd.sample(texts, 6)) for _ in range(60)]
    return [cot.normalise(t).encode() for t in texts]


def _windows(texts: list[bytes]) -> list[bytes]:
    out = []
    for d in texts:
        for s, e in cot._occurrences(d):
            lo, hi = cot._sentence(d, s, e)
            out.append(b"".join((d[lo:s], b"\x00", d[e:hi])))
    return out


def _reference(gs: cot._GroupSet) -> list[tuple[str, re2._Regexp]]:
    return [(name, re2.compile(p, re2_options())) for name, p in gs.items]


@pytest.mark.parametrize("name", ["_WINDOW", "_OWN_STRONG", "_STRUCT", "_GLOBAL", "_TERMS"])
def test_group_set_answers_as_each_pattern_searched_alone(name: str) -> None:
    gs = getattr(cot, name)
    texts = _texts()
    inputs = _windows(texts) if name in ("_WINDOW", "_OWN_STRONG") else texts
    assert len(inputs) > 300
    ref = _reference(gs)
    seen: set[str] = set()
    for d in inputs:
        want = {n for n, r in ref if r.search(d)}
        assert gs.hits(d) == want, d[:200]
        seen |= want
    assert len(seen) >= len({n for n, _ in gs.items}) // 2  # the inputs exercise most groups


def test_hybrid_keeps_patterns_without_required_words_in_a_set() -> None:
    kinds = [type(m).__name__ for m, _ in cot._STRUCT.parts]
    assert kinds == ["Filter", "Set"]
    assert [type(m).__name__ for m, _ in cot._WINDOW.parts] == ["Filter"]
    assert sum(len(owners) for _, owners in cot._STRUCT.parts) == len(cot._STRUCT.items)


_GROUPS = sorted(
    {n for n, _ in cot._WINDOW.items} | {n for n, _ in cot._TERMS.items}
    | {"pretext", "sibling", "is_question", "take_next", "self_direct"}
)


# strong_trace and names_you are never without specific: their nouns are among specific's (_TERMS)
_WITHOUT = [n for n in _GROUPS if n not in ("specific", "own_strong", "strong_trace", "names_you")]


@settings(max_examples=3000, deadline=None)
@given(st.sets(st.sampled_from(_WITHOUT)), st.booleans())
def test_asks_never_says_yes_without_a_specific_noun_or_an_ownership_word(g: set[str], need_take: bool) -> None:
    assert {p for n, p in cot._TERMS.items if n in ("strong_trace", "names_you")} <= {
        p for n, p in cot._TERMS.items if n == "specific"
    }
    # scan() skips the window groups of such sentences: this is the rule that makes the skip exact
    assert not cot._asks(g, need_take)
    assert not cot._asks(g | {"self_direct"}, need_take)


def test_scan_answers_as_without_the_skip() -> None:
    """The same answer as scanning every sentence's window groups, on phrasings, benign prompts and long
    mixes of them (the skip may only save work)."""
    texts = _texts()
    saved = cot._OWN_STRONG
    full: list[bool] = []
    try:
        cot._OWN_STRONG = _Always()  # type: ignore[assignment]
        full = [cot.scan(d, p) for d in texts for p in (False, True)]
    finally:
        cot._OWN_STRONG = saved
    assert [cot.scan(d, p) for d in texts for p in (False, True)] == full
    assert 100 < sum(full) < len(full) - 100


class _Always:
    def hits(self, data: bytes) -> set[str]:
        return {"own_strong"}  # every sentence gets its window groups
