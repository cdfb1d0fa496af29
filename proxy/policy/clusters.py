"""Near-duplicate prompt templates grouped into clusters: SimHash over the masked skeleton, banded LSH.

``signals.template`` is an exact hash of the masked skeleton (digits, URLs, whitespace and case already
folded), so a harvester that changes one word of its instruction gets a new template. ``simhash`` turns
the skeleton's distinct words into a 64-bit fingerprint whose Hamming distance grows with the share of
words that differ. ``TemplateClusters`` maps each exact template to a cluster: the earliest cluster
whose fingerprint is within ``max_distance`` bits, found through ``bands`` LSH tables (a near
duplicate shares at least one band exactly whenever it differs in fewer bits than there are bands,
and usually when it differs in a few more).

Measured on masked templates of 15-60 words under one shared system prompt: changing one word moves
the SimHash by a median of 4-5 bits (95th percentile 8-10, at most 13), while unrelated templates sit
a median of 28 bits apart (5th percentile 21, at least 16); hence the defaults: a 10-bit radius and
8 bands of 8 bits (a near duplicate within 7 bits is always found; at 8-10 bits most are).

Timing: clustering never delays a request. ``cluster_of`` (one dict read) runs while features are
computed and answers with what is known at that moment: the cluster of a template seen before, else the
template itself (its own singleton cluster, which it stays unless a near duplicate came first).
``observe`` runs after the request (the judge calls it from ``on_done``) and does the SimHash and the
band look-ups for templates not seen yet, so the second request of a new near-duplicate template already
reads the shared cluster id. Memory is bounded: at most ``max_templates`` exact templates and
``max_clusters`` clusters are kept, each evicted least recently used, with their band entries.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_SHINGLES = 255  # per-bit counts share one byte lane each (see simhash)
BUCKET_MAX = 8  # clusters kept per LSH bucket (most recently used): bounds one look-up's work
# _MAJ[n] maps a lane count to the character "1" when it is a majority of n words, else "0".
_MAJ: dict[int, bytes] = {}


# word -> its 64-bit hash spread over 64 byte lanes (lane i holds bit i): a 512-bit int. Summing the
# spreads of a skeleton's words counts, in every lane at once, how many words have that bit set. Skeleton
# vocabularies repeat (masked instructions), so the cache stays small; it is cleared when full.
_SPREAD: dict[bytes, int] = {}
_SPREAD_MAX = 1 << 16
_BYTE_LANES = [bytes((x >> i) & 1 for i in range(8)) for x in range(256)]


def word_hash(w: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(w, digest_size=8).digest(), "little")


def _spread(w: bytes) -> int:
    if len(_SPREAD) >= _SPREAD_MAX:
        _SPREAD.clear()
    d = hashlib.blake2b(w, digest_size=8).digest()
    v = _SPREAD[w] = int.from_bytes(b"".join([_BYTE_LANES[x] for x in d]), "little")
    return v


def shingles(skeleton: bytes) -> list[bytes]:
    """The skeleton's distinct words (at most ``MAX_SHINGLES``, first seen first)."""
    return list(dict.fromkeys(skeleton.split()))[:MAX_SHINGLES]


def simhash(skeleton: bytes) -> int:
    """64-bit SimHash of a masked skeleton: bit i is set when most of its distinct words' hashes have it.

    The vote runs in C: each word's hash is cached spread over 64 byte lanes, one ``sum`` adds them
    (at most 255 words, so a lane never carries into the next), and a ``translate`` of the lane counts
    writes the majority bits as a binary string.
    """
    words = shingles(skeleton)
    n = len(words)
    if n == 0:
        return 0
    get = _SPREAD.get
    total = sum([get(w) or _spread(w) for w in words])
    maj = _MAJ.get(n)
    if maj is None:
        maj = _MAJ[n] = bytes(0x31 if 2 * c > n else 0x30 for c in range(256))  # b"1" / b"0"
    return int(total.to_bytes(64, "little").translate(maj)[::-1], 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(slots=True, eq=False)
class Cluster:
    id: str  # the template hash of its first member
    simhash: int
    seq: int  # creation order: among near clusters the earliest wins
    members: int = 0


class TemplateClusters:
    """Exact template hash -> cluster id, with near-duplicate templates sharing the earliest cluster."""

    def __init__(
        self,
        *,
        bands: int = 8,
        max_distance: int = 10,
        max_templates: int = 100_000,
        max_clusters: int = 50_000,
    ) -> None:
        if not 1 <= bands <= 64:
            raise ValueError("bands must be between 1 and 64")
        self.bands = bands
        self.max_distance = max_distance
        self.max_templates = max_templates
        self.max_clusters = max_clusters
        bits = 64 // bands
        # (shift, mask) per band; the last band takes the remaining bits.
        self._cuts = [
            (i * bits, (1 << (bits if i < bands - 1 else 64 - i * bits)) - 1) for i in range(bands)
        ]
        self.exact: OrderedDict[str, Cluster] = OrderedDict()
        self.clusters: OrderedDict[str, Cluster] = OrderedDict()  # oldest first: eviction order
        self._tables: list[dict[int, list[Cluster]]] = [{} for _ in range(bands)]
        self._seq = 0
        self.observed = 0
        self.new_clusters = 0
        self.cpu_seconds = 0.0  # thread CPU spent on new templates (SimHash and band look-ups)

    def cluster_of(self, template: str) -> str:
        """The cluster id known now for ``template`` (itself when it was never observed). Request path."""
        c = self.exact.get(template)
        return c.id if c is not None else template

    def observe(self, template: str, skeleton: bytes) -> str:
        """Record one request's template after the request; returns its cluster id.

        A template already mapped costs one dict look-up; a new one costs a SimHash and a scan of at
        most ``BUCKET_MAX`` clusters per band, and joins the earliest cluster within ``max_distance``
        bits or starts a new one.
        """
        self.observed += 1
        c = self.exact.get(template)
        if c is not None:
            self.exact.move_to_end(template)
            return c.id
        c0 = time.thread_time()
        h = simhash(skeleton)
        best: Cluster | None = None
        radius = self.max_distance
        for table, (shift, mask) in zip(self._tables, self._cuts, strict=True):
            for cand in table.get((h >> shift) & mask, ()):
                if (best is None or cand.seq < best.seq) and (cand.simhash ^ h).bit_count() <= radius:
                    best = cand
        if best is None:
            self._seq += 1
            best = Cluster(template, h, self._seq)
            self.new_clusters += 1
            self.clusters[best.id] = best
            while len(self.clusters) > self.max_clusters:
                _, old = self.clusters.popitem(last=False)
                self._unlist(old)
        else:
            self.clusters.move_to_end(best.id)
        self._list_first(best)
        best.members += 1
        self.exact[template] = best
        if len(self.exact) > self.max_templates:
            self.exact.popitem(last=False)
        self.cpu_seconds += time.thread_time() - c0
        return best.id

    def _list_first(self, c: Cluster) -> None:
        """Put ``c`` first in each of its band buckets (most recently used first; the last one past
        ``BUCKET_MAX`` drops out), so a busy campaign cluster stays findable among one-off prompts."""
        for table, (shift, mask) in zip(self._tables, self._cuts, strict=True):
            key = (c.simhash >> shift) & mask
            lst = table.get(key)
            if lst is None:
                table[key] = [c]
                continue
            if lst[0] is c:
                continue
            if c in lst:
                lst.remove(c)
            lst.insert(0, c)
            if len(lst) > BUCKET_MAX:
                lst.pop()

    def _unlist(self, c: Cluster) -> None:
        for table, (shift, mask) in zip(self._tables, self._cuts, strict=True):
            key = (c.simhash >> shift) & mask
            lst = table.get(key)
            if lst is not None and c in lst:
                lst.remove(c)
                if not lst:
                    del table[key]
        # Templates still mapped to an evicted cluster keep its id until they are evicted in turn.

    def __len__(self) -> int:
        return len(self.exact)
