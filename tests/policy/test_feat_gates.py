"""``matchers.PatternSet`` filter parts with byte gates (``required_byte``): the same matches as the filter's own
``FilteredRE2::AllMatches``, on the phrasing corpora and on prompts that do and do not hold the gate bytes."""

from __future__ import annotations

import random

import pytest
import re2

from proxy.policy import cot
from proxy.policy.compiler import builtin_groups, builtin_layout
from proxy.policy.matchers import PatternSet, re2_options, required_byte
from proxy.sim.phrasings import load_benign, load_families


@pytest.fixture(scope="module")
def texts() -> list[bytes]:
    rnd = random.Random(7)
    out = [p for ps in load_families("dev").values() for p in ps] + list(load_benign("dev"))
    out += [" ".join(rnd.sample(out, 12)) for _ in range(300)]
    # the gate byte added or taken away: "<think>" in a request, and the same request without its "<"
    out += [t.replace("<", " ") for t in out if "<" in t] + [f"<{t}" for t in rnd.sample(out, 200)]
    return [cot.normalise(t).encode("utf-8", "replace") for t in out]


@pytest.mark.parametrize(
    ("pattern", "gate"),
    [
        (r"<\s*think\s*>", b"<"),
        (r"a(<b|<c)", b"<"),  # in every branch
        (r"a(<|>)", b""),  # in no single one
        (r"x<?", b""),  # optional
        (r"(x<){2,}", b"<"),
        (r"\pL<", b""),  # RE2-only syntax: Python's parser refuses it, no gate
        (r"[[:alpha:]]<", b""),  # a POSIX class Python would read as a nested set: no gate
        (r"[<]", b"<"),
        (r"[<>]", b""),
        (r"\<", b"<"),
        (r"hello", b""),
    ],
)
def test_required_byte(pattern: str, gate: bytes) -> None:
    assert required_byte(pattern) == gate


def test_gated_filter_matches_what_the_filter_matches(texts: list[bytes]) -> None:
    ps = PatternSet.build(builtin_groups(), builtin_layout())
    filters = [(m, idx) for (m, idx), g in zip(ps.parts, ps.gates, strict=True) if g is not None]
    assert filters and any(gate for g in ps.gates if g for _, gate in g)  # the tags family is gated
    gated_off = 0
    for d in texts:
        old = sorted([idx[i] for m, idx in ps.parts for i in m.Match(d) or ()])
        assert sorted(ps.match(d)) == old, d
        gated_off += d.find(b"<") < 0
    assert 0 < gated_off < len(texts)


def test_gated_patterns_only_match_text_with_their_byte(texts: list[bytes]) -> None:
    ps = PatternSet.build(builtin_groups(), builtin_layout())
    seen = 0
    for (m, idx), gates in zip(ps.parts, ps.gates, strict=True):
        for k, (_, gate) in enumerate(gates or ()):
            if not gate:
                continue
            regexp = re2.compile(m._patterns[k], re2_options())
            hits = [d for d in texts if regexp.search(d)]
            assert all(gate in d for d in hits), ps.owners[idx[k]]
            seen += len(hits)
    assert seen > 20  # the corpora do hold matches of the gated patterns


def test_without_the_wrapper_internals_filters_run_ungated_with_the_same_matches(
    texts: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from proxy.policy import matchers

    gated = PatternSet.build(builtin_groups(), builtin_layout())
    sample = texts[::7]
    want = [sorted(gated.match(d)) for d in sample]
    monkeypatch.setattr(matchers, "_UNANCHORED", None)  # a google-re2 without ``_Anchor``
    plain = PatternSet.build(builtin_groups(), builtin_layout())
    assert all(g is None for g in plain.gates) and any(g is not None for g in gated.gates)
    assert [sorted(plain.match(d)) for d in sample] == want
