"""Leak check: was hidden reasoning copied into the visible answer?

The reasoning is reduced to the set of hashes of its word n-grams (``min_words`` words, lower-cased,
punctuation ignored). The answer is checked as written and after three cheap decodings: ROT13, reversal
(characters reversed, which also reverses word order), and base64 (every run of 24+ base64 characters is
decoded and checked as text). N-grams that also occur in the client's own prompt are not counted: an
answer may quote the question, and so may the reasoning.

The index holds the reasoning's n-grams as written, ROT13-encoded and reversed, so an answer is scanned
once (plus a decode of each base64 run). Reasoning n-grams are indexed at every 2nd word and answer
n-grams sampled at every 3rd (coprime steps): a copy of ``n + 5`` words or more (15 with the default
``min_words: 10``) is always caught, a copy of ``n`` to ``n + 4`` words depending on where it starts.
Cost: under 1 ms per 10 KB answer; indexing the reasoning costs ~1.5 hashes per reasoning word, each
n-gram sliced out of its batch's text (once as written, once ROT13-encoded, once reversed) rather than
joined word by word (figures in tests/benchmarks/bench_redact.py). Memory: at most ``max_ngrams`` hashes
(8 bytes each) per response.

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
* never caught: paraphrase, translation, copies shorter than ``min_words`` words, encodings other than
  the three above (hex, URL-encoding, a custom cipher), copies split across several responses, reasoning
  past ``leak.max_reasoning_bytes`` / ``max_ngrams`` (not indexed), and
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
from itertools import accumulate, chain

import orjson

_B64 = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
# Punctuation (ASCII and common typographic) reads as a word break; str.translate + split run in C.
_BREAKS = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014\u2026"})
_ROT13 = str.maketrans(string.ascii_lowercase, string.ascii_lowercase[13:] + string.ascii_lowercase[:13])
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/_=-")


def _words(text: str) -> list[str]:
    return text.lower().translate(_BREAKS).split()


def _spans(words: list[str], n: int, step: int = 1, start: int = 0) -> tuple[str, list[int], list[int]]:
    """The words joined by single spaces, and where each n-gram taken (from ``start``, every ``step``)
    starts and ends in that text: n-gram ``i`` is ``" ".join(words[i : i + n])``, sliced out of one string
    instead of joined word by word."""
    text = " ".join(words)
    offs = list(accumulate([len(w) + 1 for w in words], initial=0))  # offs[k]: where word k starts
    last = len(words) - n  # the last start
    if last < start:
        return text, [], []
    return text, offs[start : last + 1 : step], [b - 1 for b in offs[start + n : last + n + 1 : step]]


def _ngrams(words: list[str], n: int, step: int = 1, start: int = 0) -> list[int]:
    text, a, b = _spans(words, n, step, start)
    return [hash(text[i:j]) for i, j in zip(a, b, strict=True)]


# Reasoning n-grams are indexed at every INDEX_STEP-th word (by position in the whole reasoning), answer
# n-grams are taken every QUERY_STEP-th word. The steps are coprime, so within any INDEX_STEP*QUERY_STEP
# consecutive starts of a copied passage one is both indexed and queried (Chinese remainder theorem):
# a copy of n + INDEX_STEP*QUERY_STEP - 1 words or more is always caught.
INDEX_STEP = 2
QUERY_STEP = 3


class _HashSet:
    """A set of 64-bit hashes kept mostly in a sorted ``array`` (8 bytes each, against ~70 for a Python
    set entry), with recent additions in a small Python set merged in once it grows past a quarter of
    the array."""

    __slots__ = ("_a", "_new")

    def __init__(self) -> None:
        self._a = array("q")
        self._new: set[int] = set()

    def update(self, items: Iterable[int]) -> None:
        self._new.update(items)
        if len(self._new) > max(2048, len(self._a) // 4):
            # (sorted() finds the array's sorted run and merges the new hashes into it in C; the
            # temporary list lives only during this call, one stream at a time on the event loop)
            self._a = array("q", sorted(chain(self._a, self._new)))
            self._new = set()

    def isdisjoint(self, items: Iterable[int]) -> bool:
        a, new = self._a, self._new
        n = len(a)
        for h in items:
            if h in new:
                return False
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
        "full",
        "hashes",
        "max_ngrams",
        "n",
        "plain",
        "prompt",
        "stride",
    )

    def __init__(self, n: int = 10, *, max_ngrams: int = 40_000, prompt: str = "") -> None:
        self.n = n
        self.stride = QUERY_STEP
        self._pos = 0  # position in the whole reasoning of the first word of ``_tail``
        self.max_ngrams = max_ngrams
        self.full = False  # max_ngrams reached: later reasoning is not indexed
        self.hashes = _HashSet()  # plain, ROT13 and reversed n-grams
        self.plain = array("q")  # plain only, unsorted (read once, to name the encoding of a hit)
        self._tail: list[str] = []  # the last n-1 words, so n-grams spanning two batches are indexed
        self._pending: list[str] = []  # pieces not indexed yet (indexing runs in batches)
        self._raw: list[bytes] = []  # JSON string bodies after ``_pending``, not decoded yet
        self._size = 0
        self.prompt = set(_ngrams(_words(prompt), n)) if prompt else set()

    def add(self, text: str) -> None:
        """Queue a piece of reasoning (pieces may split words anywhere); indexed in ~4 KB batches."""
        if not text or self.full:
            return
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
        self._raw.append(body)
        self._size += len(body)
        if self._size >= 4096:
            self._index(final=False)

    def add_raw_many(self, bodies: list[bytes], size: int) -> None:
        """``add_raw`` for several bodies at once (``size``: their total length), as one piece."""
        if not size or self.full:
            return
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
        text, starts, ends = _spans(words, n, INDEX_STEP, first)
        # The same n-grams ROT13-encoded and reversed (characters reversed: words reversed, in reverse
        # order, which is the n-gram string reversed), so the answer is scanned once whatever the
        # encoding: sliced out of the batch's text encoded once. Words are lower case: ROT13 needs only
        # the lower-case table.
        rot = text.translate(_ROT13) if starts else ""
        rev = text[::-1] if starts else ""
        size = len(text)
        for k in range(0, len(starts), 1024):  # bounded pieces: a whole body may come as one batch
            a, b = starts[k : k + 1024], ends[k : k + 1024]
            new = [hash(text[i:j]) for i, j in zip(a, b, strict=True)]
            self.plain.extend(new)
            new += [hash(rev[size - j : size - i]) for i, j in zip(a, b, strict=True)]
            new += [hash(rot[i:j]) for i, j in zip(a, b, strict=True)]
            self.hashes.update(set(new).difference(self.prompt) if self.prompt else new)
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
        of ``n + INDEX_STEP * QUERY_STEP - 1`` words or more is caught for sure, shorter ones by chance.
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
        return not set(self.plain).isdisjoint(_ngrams(_words(text), self.n))


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
    (``feed_raw_many``: one upstream read's visible text)."""

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
        if self.finding is not None or not text:
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
        if self.finding is not None or not body:
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
        if self.finding is not None or not size:
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
