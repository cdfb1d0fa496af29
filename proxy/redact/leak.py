"""Leak check: was hidden reasoning copied into the visible answer?

The reasoning is reduced to the set of hashes of its word n-grams (``min_words`` words, lower-cased,
punctuation ignored). The answer is checked as written and after three cheap decodings: ROT13, reversal
(characters reversed, which also reverses word order), and base64 (every run of 24+ base64 characters is
decoded and checked as text). N-grams that also occur in the client's own prompt are not counted: an
answer may quote the question, and so may the reasoning.

The index holds the reasoning's n-grams as written, ROT13-encoded and reversed, so an answer is scanned
once (plus a decode of each base64 run). Answer n-grams are sampled every ``stride = n // 2`` words: a
copy of ``n + stride - 1`` words or more (14 with the default ``min_words: 10``) is always caught, a copy
of ``n`` to ``n + stride - 2`` words depending on where it starts. Cost: well under 1 ms per 10 KB answer
(figures in tests/benchmarks/bench_redact.py). Memory: at most ``max_ngrams`` hashes per reasoning.

What streams can and cannot catch (``StreamLeakCheck``):

* caught: a verbatim, ROT13, reversed or base64 copy (sizes as above), at the latest ``every`` (1024)
  characters after its last word arrived, or at the end of the stream; copies spanning the check
  windows are seen whole thanks to the overlap (a base64 run longer than ``overlap`` is checked only
  in pieces, and is caught only if a piece decodes on its own).
* not caught before it is sent: the words of the first matching n-gram are already on the wire when it
  is detected (the check never holds visible text back); ``withhold`` then ends the stream with the
  dialect's error event, so the rest of the copy is not sent.
* never caught: paraphrase, translation, copies shorter than ``min_words`` words, encodings other than
  the three above (hex, URL-encoding, a custom cipher), copies split across several responses, and
  reasoning the proxy never saw (omitted upstream by request suppression: nothing to compare with, but
  then nothing to leak either).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import string
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass

_B64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
# Punctuation (ASCII and common typographic) reads as a word break; str.translate + split run in C.
_BREAKS = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"})


def _words(text: str) -> list[str]:
    return text.lower().translate(_BREAKS).split()


def _ngrams(words: list[str], n: int, step: int = 1) -> list[int]:
    return [hash(" ".join(words[i : i + n])) for i in range(0, len(words) - n + 1, step)]


class _HashSet:
    """A set of 64-bit hashes in a sorted ``array`` (8 bytes each, against ~70 for a Python set entry):
    appended in batches, sorted lazily, looked up by bisection."""

    __slots__ = ("_a", "_sorted")

    def __init__(self) -> None:
        self._a = array("q")
        self._sorted = True

    def update(self, items: Iterable[int]) -> None:
        n = len(self._a)
        self._a.extend(items)
        if len(self._a) != n:
            self._sorted = False

    def _ready(self) -> array[int]:
        if not self._sorted:
            self._a = array("q", sorted(set(self._a)))
            self._sorted = True
        return self._a

    def __contains__(self, h: int) -> bool:
        a = self._ready()
        i = bisect_left(a, h)
        return i < len(a) and a[i] == h

    def isdisjoint(self, items: Iterable[int]) -> bool:
        a = self._ready()
        n = len(a)
        for h in items:
            i = bisect_left(a, h)
            if i < n and a[i] == h:
                return False
        return True

    def __len__(self) -> int:
        return len(self._a)


@dataclass(frozen=True, slots=True)
class LeakFinding:
    encoding: str  # plain | rot13 | reversed | base64
    words: int  # n-gram length that matched


class ReasoningIndex:
    """The n-gram hashes of hidden reasoning, built incrementally and bounded."""

    __slots__ = ("_pending", "_size", "_tail", "hashes", "max_ngrams", "n", "plain", "prompt", "stride")

    def __init__(self, n: int = 10, *, max_ngrams: int = 40_000, prompt: str = "") -> None:
        self.n = n
        self.stride = max(1, n // 2)
        self.max_ngrams = max_ngrams
        self.hashes = _HashSet()  # plain, ROT13 and reversed n-grams
        self.plain = _HashSet()  # plain only (to name the encoding of a hit)
        self._tail: list[str] = []  # the last n-1 words, so n-grams spanning two batches are indexed
        self._pending: list[str] = []  # pieces not indexed yet (indexing runs in batches)
        self._size = 0
        self.prompt = set(_ngrams(_words(prompt), n)) if prompt else set()

    def add(self, text: str) -> None:
        """Queue a piece of reasoning (pieces may split words anywhere); indexed in ~4 KB batches."""
        if not text or len(self.hashes) >= self.max_ngrams:
            return
        self._pending.append(text)
        self._size += len(text)
        if self._size >= 4096:
            self._index(final=False)

    def _index(self, *, final: bool) -> None:
        text = "".join(self._pending)
        cut = len(text) if final else max(text.rfind(" "), text.rfind("\n"))
        if cut <= 0:
            return
        done, rest = text[:cut], text[cut:]
        self._pending = [rest] if rest else []
        self._size = len(rest)
        words = self._tail + _words(done)
        n = self.n
        new = _ngrams(words, n)
        self.plain.update(new)
        # The same passage ROT13-encoded and reversed (characters reversed: words reversed, in reverse
        # order), so the answer is scanned once whatever the encoding.
        new += _ngrams(_words(codecs.encode(" ".join(words), "rot13")), n)
        new += _ngrams([w[::-1] for w in reversed(words)], n)
        self.hashes.update(h for h in new if h not in self.prompt)
        self._tail = words[-(n - 1) :] if n > 1 else []

    def flush(self) -> None:
        if self._pending:
            self._index(final=True)

    def __bool__(self) -> bool:
        return len(self.hashes) > 0 or bool(self._pending)

    def check(self, answer: str) -> LeakFinding | None:
        """The encoding under which ``answer`` shares an n-gram with the reasoning, if any.

        Answer n-grams are taken every ``stride`` words (the index holds every position), so any copy of
        ``n + stride - 1`` words or more is caught for sure, shorter ones down to ``n`` words by chance.
        """
        self.flush()
        if not len(self.hashes) or not answer:
            return None
        hs = self.hashes
        n, step = self.n, self.stride
        if not hs.isdisjoint(_ngrams(_words(answer), n, step)):
            return LeakFinding(self._encoding_of(answer), n)
        for m in _B64.finditer(answer):
            decoded = _b64_text(m.group(0))
            if decoded and not hs.isdisjoint(_ngrams(_words(decoded), n, 1)):
                return LeakFinding("base64", n)
        return None

    def _encoding_of(self, answer: str) -> str:
        """Which variant matched (only computed after a hit, so its cost does not matter)."""
        return (
            "plain"
            if self._plain_hit(answer)
            else ("rot13" if self._plain_hit(codecs.encode(answer, "rot13")) else "reversed")
        )

    def _plain_hit(self, text: str) -> bool:
        return not self.plain.isdisjoint(_ngrams(_words(text), self.n))


def _b64_text(s: str) -> str:
    s = s.rstrip("=")
    s = s[: len(s) - len(s) % 4] if len(s) % 4 == 1 else s
    try:
        raw = base64.b64decode(s + "=" * (-len(s) % 4), altchars=b"-_" if ("-" in s or "_" in s) else None)
    except (binascii.Error, ValueError):
        return ""
    return raw.decode("utf-8", "ignore")


class StreamLeakCheck:
    """Checks visible text as it streams: each new stretch of ``every`` characters is checked together
    with the ``overlap`` characters before it, so an n-gram (or base64 run) straddling two stretches is
    still seen whole. Memory: at most ``every + overlap`` characters."""

    __slots__ = ("_buf", "_new", "every", "finding", "index", "overlap")

    def __init__(self, index: ReasoningIndex, *, every: int = 1024, overlap: int = 768) -> None:
        self.index = index
        self.every = every
        self.overlap = overlap
        self._buf = ""
        self._new = 0
        self.finding: LeakFinding | None = None

    def feed(self, text: str) -> LeakFinding | None:
        if self.finding is not None or not text or not self.index:
            return self.finding
        self._buf += text
        self._new += len(text)
        if self._new >= self.every:
            self._run()
        return self.finding

    def close(self) -> LeakFinding | None:
        if self.finding is None and self._new and self.index:
            self._run()
        return self.finding

    def _run(self) -> None:
        self.finding = self.index.check(self._buf)
        self._buf = self._buf[-self.overlap :]
        self._new = 0
