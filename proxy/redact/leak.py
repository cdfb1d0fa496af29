"""Leak check: was hidden reasoning copied into the visible answer?

The reasoning is reduced to the set of keys of its word n-grams (``min_words`` words, lower-cased,
punctuation other than the base64 alphabet's ``+/_=-`` read as a break). An n-gram's key is the hash of
its words in order. The answer is checked as written, which also covers two cheap encodings, and after
decoding a third:

* ROT13: words are read with each letter of n-z folded onto its ROT13 image in a-m (one ``translate``),
  so a text and its ROT13 encoding have the same keys. Which of the two a hit was is told apart
  afterwards by letter frequencies (English-like text against its ROT13): a label, not a guarantee.
* reversal (characters reversed, which also reverses word order): the answer is also read backwards,
  each of its words reversed, so a reversed copy has the keys of the reasoning it copies; a hit there is
  a reversed copy. (The reasoning, usually longer than the answer, is indexed once, as written.)
* base64: every run of 24+ base64 characters is decoded and checked as text (looked for only when some
  word of the answer is that long: a run lies inside one word).

N-grams that also occur in the client's own prompt are not counted: an answer may quote the question,
and so may the reasoning. Reasoning n-grams are indexed at every 2nd word and answer n-grams sampled at
every 3rd (coprime steps): a copy of ``n + 5`` words or more (15 with the default ``min_words: 10``) is
always caught, a copy of ``n`` to ``n + 4`` words depending on where it starts. Every step runs in C
(``translate``, ``split``, ``map``, ``zip``, set operations; lookups in the sorted part of the
index through a byte filter), none per word in Python: the reasoning is read once, the answer twice (as
written and with its words reversed; figures in tests/benchmarks/bench_redact.py ``--leak-only``). Memory:
at most ``max_ngrams`` keys (8 bytes each, plus up to 16 bytes of filter) per response, one key per two
reasoning words.

What streams can and cannot catch (``StreamLeakCheck``):

* caught: a verbatim, ROT13, reversed or base64 copy (sizes as above), at the latest ``every`` (1024)
  characters (bytes, for text fed as raw JSON) after its last word arrived, or at the end of the
  stream; in the relay's read mode the text of a whole upstream read comes as one piece, checked
  before any of that read is sent (a window is then up to ``every`` plus one read). Each window
  starts with the previous one's last ``n + 6`` words (a copy long enough to be caught for sure that
  straddles two windows is either whole in the second or long enough in the first), or with the
  base64-looking run the previous window ended with; at most ``overlap`` (768) characters are
  carried, so with words averaging over ~48 characters, or a base64 run longer than ``overlap``, a
  straddling copy is checked only in pieces (a base64 piece is caught only if it decodes on its own).
* not caught before it is sent: the check never holds visible text back, so when it fires, the copy and
  up to ``every`` characters after it are already on the wire; ``withhold`` then ends the stream with
  the dialect's error event, so the rest of the answer is not sent. (Bodies are checked whole before
  anything is sent: ``withhold`` answers 403 ``policy_blocked`` instead.)
* not checked: visible text that comes before any reasoning was seen (it cannot copy reasoning that
  comes after it; this is the whole answer of a stream whose reasoning was suppressed upstream).
* never caught: paraphrase, translation, copies shorter than ``min_words`` words, encodings other than
  the three above (hex, URL-encoding, a custom cipher), copies split across several responses, reasoning
  past ``leak.max_reasoning_bytes`` / ``max_ngrams`` (not indexed), and
  reasoning the proxy never saw (omitted upstream by request suppression: nothing to compare with, but
  then nothing to leak either).
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from array import array
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import and_

import orjson

_B64_MIN = 24
_B64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
# Punctuation (ASCII and common typographic) reads as a word break; str.translate + split run in C.
# (The base64 alphabet's ``+/_=-`` stay inside words: a base64 run is then always inside one word, so a
# check looks for one only when some word is long enough to hold it.)
_B64_PUNCT = "+/_=-"
_BREAK_CHARS = [c for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026" if c not in _B64_PUNCT]
_BREAKS = str.maketrans(dict.fromkeys(_BREAK_CHARS, " "))
_ROT13 = str.maketrans(string.ascii_lowercase, string.ascii_lowercase[13:] + string.ascii_lowercase[:13])
# Word breaks, and ROT13 folded away: each letter of n-z read as its ROT13 image in a-m, so a text and its
# ROT13 encoding read the same (applied after ``lower()``; one translate, in C).
_HALVES = dict(zip(string.ascii_lowercase[13:], string.ascii_lowercase[:13], strict=True))
_FOLD = str.maketrans({**dict.fromkeys(_BREAK_CHARS, " "), **_HALVES})
_B64_CHARS = frozenset(string.ascii_letters + string.digits + _B64_PUNCT)


def _norm(text: str) -> str:
    """Lower-cased, punctuation as spaces, ROT13 folded (see ``_FOLD``)."""
    return text.lower().translate(_FOLD)


def _words(text: str) -> list[str]:
    return text.lower().translate(_FOLD).split()


def _both(text: str) -> tuple[list[str], list[str]]:
    """The words of ``text`` (``_words``) and the same words each reversed, in the same order (the words
    of the text reversed, read backwards: reversal keeps word breaks where they are)."""
    norm = _norm(text)
    rev = norm[::-1].split()
    rev.reverse()
    return norm.split(), rev


def _ngrams(words: list[str], n: int, step: int = 1, start: int = 0) -> list[int]:
    """The keys of the n-grams of ``words`` taken from ``start``, every ``step``: each the hash of its
    ``n`` words as a tuple (made in C by ``zip`` over ``n`` strided slices, which reuses one tuple; the
    words' own hashes are cached on the strings), ~40 % cheaper than prefix sums of the words' hashes."""
    m = len(words) - n + 1 - start  # n-gram starts from ``start`` on, every one
    if m <= 0:
        return []
    return list(map(hash, zip(*[words[start + i : start + i + m : step] for i in range(n)], strict=True)))


# Reasoning n-grams are indexed at every INDEX_STEP-th word (by position in the whole reasoning), answer
# n-grams are taken every QUERY_STEP-th word. The steps are coprime, so within any INDEX_STEP*QUERY_STEP
# consecutive starts of a copied passage one is both indexed and queried (Chinese remainder theorem):
# a copy of n + INDEX_STEP*QUERY_STEP - 1 words or more is always caught.
INDEX_STEP = 2
QUERY_STEP = 3


class _HashSet:
    """A set of 64-bit hashes kept mostly in a sorted ``array`` (8 bytes each, against ~70 for a Python
    set entry), with recent additions in a small Python set merged in once it grows past a quarter of
    the array. A byte filter over the array (byte ``h & (size - 1)`` set for each key ``h``; ``size``:
    ``8 * len(array)`` rounded up to a power of two, so 8 to 16 bytes per key) answers most lookups in
    C; only the keys it lets through (at most one in eight by chance, and true hits) are looked up by
    bisection."""

    __slots__ = ("_a", "_f", "_new")

    def __init__(self) -> None:
        self._a = array("q")
        self._f = bytearray()  # _f[h & (len(_f) - 1)] == 1 for every h in _a
        self._new: set[int] = set()

    def update(self, items: Iterable[int], exclude: set[int] | None = None) -> None:
        """Add ``items`` but those in ``exclude`` (a small set: removed from the recent additions, in C)."""
        new = self._new
        new.update(items)
        if exclude:
            new.difference_update(exclude)
        if len(new) > max(2048, len(self._a) // 4):
            # (sorted() finds the array's sorted run and merges the new hashes into it in C; the
            # temporary list lives only during this call, one stream at a time on the event loop)
            self._a = array("q", sorted(chain(self._a, new)))
            size = 1 << (8 * len(self._a) - 1).bit_length()
            added: Iterable[int] = new
            if size != len(self._f):
                self._f, added = bytearray(size), self._a  # (a new size: every key set again)
            f = self._f
            deque(map(f.__setitem__, map(and_, added, repeat(size - 1)), repeat(1)), maxlen=0)  # (in C)
            self._new = set()

    def __contains__(self, h: int) -> bool:
        if h in self._new:
            return True
        a = self._a
        i = bisect_left(a, h)
        return i < len(a) and a[i] == h

    def isdisjoint(self, items: list[int]) -> bool:
        if not self._new.isdisjoint(items):  # (in C)
            return False
        a = self._a
        n = len(a)
        if not n:
            return True
        f = self._f
        for h in compress(items, map(f.__getitem__, map(and_, items, repeat(len(f) - 1)))):  # (filter in C)
            i = bisect_left(a, h)
            if i < n and a[i] == h:
                return False
        return True

    def __len__(self) -> int:
        return len(self._a) + len(self._new)


@dataclass(frozen=True, slots=True)
class LeakFinding:
    encoding: str  # plain | rot13 | reversed | base64
    words: int  # n-gram length that matched


class ReasoningIndex:
    """The n-gram hashes of hidden reasoning, built incrementally and bounded."""

    __slots__ = (
        "_pending",
        "_pos",
        "_raw",
        "_size",
        "_tail",
        "added",
        "full",
        "hashes",
        "max_ngrams",
        "n",
        "prompt",
        "stride",
    )

    def __init__(self, n: int = 10, *, max_ngrams: int = 40_000, prompt: str = "") -> None:
        self.n = n
        self.stride = QUERY_STEP
        self._pos = 0  # position in the whole reasoning of the first word of ``_tail``
        self.max_ngrams = max_ngrams
        self.full = False  # max_ngrams reached: later reasoning is not indexed
        self.added = False  # some reasoning was added (until then visible text cannot copy any)
        self.hashes = _HashSet()  # the n-grams as written (ROT13 folded)
        self._tail: list[str] = []  # the last n-1 words, so n-grams spanning two batches are indexed
        self._pending: list[str] = []  # pieces not indexed yet (indexing runs in batches)
        self._raw: list[bytes] = []  # JSON string bodies after ``_pending``, not decoded yet
        self._size = 0
        self.prompt = set(_ngrams(_words(prompt), n)) if prompt else set()

    def add(self, text: str) -> None:
        """Queue a piece of reasoning (pieces may split words anywhere); indexed in ~4 KB batches."""
        if not text or self.full:
            return
        self.added = True
        if self._raw:
            self._pending.append(_decode(self._raw))
        self._pending.append(text)
        self._size += len(text)
        if self._size >= 4096:
            self._index(final=False)

    def add_raw(self, body: bytes) -> None:
        """``add`` for the body of a JSON string, as it came on the wire: decoded once per batch."""
        if not body or self.full:
            return
        self.added = True
        self._raw.append(body)
        self._size += len(body)
        if self._size >= 4096:
            self._index(final=False)

    def add_raw_many(self, bodies: list[bytes], size: int) -> None:
        """``add_raw`` for several bodies at once (``size``: their total length), as one piece."""
        if not size or self.full:
            return
        self.added = True
        self._raw.extend(bodies)
        self._size += size
        if self._size >= 4096:
            self._index(final=False)

    def _index(self, *, final: bool) -> None:
        if self._raw:
            self._pending.append(_decode(self._raw))
        text = "".join(self._pending)
        cut = len(text) if final else max(text.rfind(" "), text.rfind("\n"))
        if cut <= 0:
            return
        done, rest = text[:cut], text[cut:]
        self._pending = [rest] if rest else []
        self._size = len(rest)
        words = self._tail + _words(done)
        n = self.n
        first = -self._pos % INDEX_STEP  # the first start in this batch that is indexed
        # Bounded pieces (a whole body may come as one batch), each starting on an indexed position
        piece = 1024 * INDEX_STEP
        for k in range(first, len(words) - n + 1, piece):
            self.hashes.update(_ngrams(words[k : k + piece + n - 1], n, INDEX_STEP), self.prompt)
        self.full = len(self.hashes) >= self.max_ngrams
        keep = min(len(words), n - 1)
        self._pos += len(words) - keep
        self._tail = words[len(words) - keep :]

    def flush(self) -> None:
        if self._pending or self._raw:
            self._index(final=True)

    def __bool__(self) -> bool:
        return len(self.hashes) > 0 or bool(self._pending) or bool(self._raw)

    def check(self, answer: str) -> LeakFinding | None:
        """The encoding under which ``answer`` shares an n-gram with the reasoning, if any.

        Answer n-grams are taken every ``QUERY_STEP`` words, reasoning ones every ``INDEX_STEP``: any copy
        of ``n + INDEX_STEP * QUERY_STEP - 1`` words or more is caught for sure, shorter ones by chance
        (a reversed copy too: read backwards with each word reversed it is the copied words in order, and
        the positions sampled every ``QUERY_STEP`` words are reasoning positions ``QUERY_STEP`` apart).
        ROT13 is folded into the words, so a plain or ROT13 copy matches the answer's words as written and
        a reversed copy the answer read backwards; base64 runs are decoded.
        """
        self.flush()
        if not len(self.hashes) or not answer:
            return None
        n, step = self.n, self.stride
        words, rwords = _both(answer)
        keys = _ngrams(words, n, step)
        if not self.hashes.isdisjoint(keys):
            return LeakFinding(_plain_or_rot13(answer, keys, self.hashes, n, step), n)
        rwords.reverse()  # the answer read backwards, each word reversed: a reversed copy reads as written
        if not self.hashes.isdisjoint(_ngrams(rwords, n, step)):
            return LeakFinding("reversed", n)
        if max(map(len, words), default=0) >= _B64_MIN:  # (a base64 run lies inside one word)
            for m in _B64.finditer(answer):
                decoded = _b64_text(m.group(0))
                if decoded and not self.hashes.isdisjoint(_ngrams(_words(decoded), n, 1)):
                    return LeakFinding("base64", n)
        return None


# English letters, most frequent first: which reading of a copy is the text (``_plain_or_rot13``)
_FREQ = {c: 26 - i for i, c in enumerate("etaoinsrhldcumfpgwybvkxjqz")}


def _plain_or_rot13(answer: str, keys: list[int], hashes: _HashSet, n: int, step: int) -> str:
    """Which of a copy and its ROT13 decoding reads more like text (letter frequencies of the n-grams that
    matched): the keys cannot tell them apart, ROT13 being folded away. Runs after a hit only."""
    plain = answer.lower().translate(_BREAKS).split()  # (word for word the words of ``_words``)
    hit: set[int] = set()
    for i, key in enumerate(keys):
        if key in hashes:
            hit.update(range(i * step, i * step + n))
    text = " ".join(plain[i] for i in sorted(hit) if i < len(plain))
    rot = text.translate(_ROT13)
    score = sum(w * (text.count(c) - rot.count(c)) for c, w in _FREQ.items())
    return "plain" if score >= 0 else "rot13"


def _decode(raw: list[bytes]) -> str:
    """JSON string bodies (validated as such by the caller's framing), decoded; emptied."""
    text = orjson.loads(b'"' + b"".join(raw) + b'"')
    raw.clear()
    return text if isinstance(text, str) else ""


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
    with the end of the stretch before it (its last ``n + 6`` words, or the base64-looking run it ends
    with, at most ``overlap`` characters; see ``_carry``), so a copy (or base64 run) straddling two
    stretches is still seen whole. Memory: at most ``every + overlap`` characters, plus the last piece
    (``feed_raw_many``: one upstream read's visible text). Visible text that comes while no reasoning was
    seen is not kept (it cannot copy reasoning that comes after it): a stream without reasoning (asked
    not to send it upstream) costs one test per piece."""

    __slots__ = ("_buf", "_new", "_raw", "every", "finding", "index", "overlap")

    def __init__(self, index: ReasoningIndex, *, every: int = 1024, overlap: int = 768) -> None:
        self.index = index
        self.every = every
        self.overlap = overlap
        self._buf = ""
        self._raw: list[bytes] = []  # JSON string bodies after ``_buf``, decoded when checked
        self._new = 0
        self.finding: LeakFinding | None = None

    def feed(self, text: str) -> LeakFinding | None:
        if self.finding is not None or not text or not self.index.added:
            return self.finding
        if self._raw:
            self._buf += _decode(self._raw)
        self._buf += text
        self._new += len(text)
        if self._new >= self.every:
            self._run()
        return self.finding

    def feed_raw(self, body: bytes) -> LeakFinding | None:
        """``feed`` for the body of a JSON string. Counted in bytes (>= characters), so a check never
        comes later than with ``feed``."""
        if self.finding is not None or not body or not self.index.added:
            return self.finding
        self._raw.append(body)
        self._new += len(body)
        if self._new >= self.every:
            self._run()
        return self.finding

    def feed_raw_many(self, bodies: list[bytes], size: int) -> LeakFinding | None:
        """``feed_raw`` for several bodies at once (``size``: their total length), checked as one piece:
        a window then holds up to ``every`` characters plus the last piece (one upstream read in the relay's
        read mode), checked before any of it is sent."""
        if self.finding is not None or not size or not self.index.added:
            return self.finding
        self._raw.extend(bodies)
        self._new += size
        if self._new >= self.every:
            self._run()
        return self.finding

    def close(self) -> LeakFinding | None:
        if self.finding is None and self._new and self.index:
            self._run()
        return self.finding

    def _run(self) -> None:
        if self._raw:
            self._buf += _decode(self._raw)
        if self.index:  # nothing indexed yet: nothing to compare with (the carry still goes on)
            self.finding = self.index.check(self._buf)
        self._buf = self._carry(self._buf)
        self._new = 0

    def _carry(self, text: str) -> str:
        """What the next window starts with: the last ``n + INDEX_STEP * QUERY_STEP`` words (a caught copy
        plus a word the window may have cut), normalised (punctuation as spaces: checks read it so
        anyway), followed by the base64-looking run that ends the window, if any, as written; never
        more than ``overlap`` characters of the window."""
        tail = text[-self.overlap :]
        i = len(tail)
        while i and tail[i - 1] in _B64_CHARS:
            i -= 1
        if len(tail) - i < 24:  # the last word, not a base64 run
            i = len(tail)
        head = tail[:i].translate(_BREAKS)
        k = self.index.n + INDEX_STEP * QUERY_STEP
        parts = head.rsplit(None, k)
        if len(parts) <= k:
            return tail
        sep = " " if head[-1:].isspace() else ""
        return " ".join(parts[1:]) + sep + tail[i:]
