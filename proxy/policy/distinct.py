"""Distinct sampling for large ``distinct`` window sets (``proxy.policy.windows``): past ``SAMPLE_SIZE`` live
values a set keeps only the values whose stable hash has its low ``level`` bits zero, and counts them
times ``2**level``."""

from __future__ import annotations

import sys
from hashlib import blake2b
from typing import Any

SAMPLE_SIZE = 256  # values a DistinctSample keeps at most: exact up to it, a 2**-level hash sample past it

# Bytes of a dict of n entries built afresh (index n). A dict kept in sighting order (a value seen again is
# deleted and inserted at the end, the oldest popped) leaves a deleted entry per update; when they use
# up its table, CPython resizes it to 3 times its live entries, so a set churning at its cap sits in a
# table twice the fresh size (64 values: 4.7 KB instead of 2.3; 256: 18.5 instead of 9.3). The next update
# of such a dict copies it into a fresh one (``dict(d.items())``: ``dict(d)`` would clone the oversized
# table), which keeps the sets of cluster keys at the fresh size. The test is against a fresh dict of a
# third more entries, so a dict that merely shrank a little is not copied (nor again and again as its
# length moves across a table size).
FRESH_SIZE = [sys.getsizeof(dict.fromkeys(range(n), 0.0)) for n in range(2 * SAMPLE_SIZE)]
_getsizeof = sys.getsizeof


def level_hash(x: Any) -> int:
    """64-bit hash of a distinct value, the same in every process and replay (``hash`` is salted)."""
    return int.from_bytes(blake2b(x.encode() if isinstance(x, str) else b"\0" + repr(x).encode(),
                                  digest_size=8).digest(), "little")


class DistinctSample:
    """A large distinct set's values whose hash has its low ``level`` bits zero, each with its last
    sighting, oldest first (Gibbons' distinct sampling: the sample is the same subset of values in every
    process, and it keeps exact times, so it slides with the window like the exact set). The count is the
    live sampled values times ``2**level``: exact while ``level`` is 0 (up to ``SAMPLE_SIZE`` values), then
    unbiased with a relative standard error of about ``1/sqrt(sampled)`` (``sampled`` is about 128 to 256 at
    the window's peak: 6-9 %). Past ``SAMPLE_SIZE`` live values the level goes up and half the sample goes.
    Two sets of values from one population (``owners`` and ``r_owners``) sample the same values."""

    __slots__ = ("level", "seen")

    def __init__(self, tier: dict[Any, float], spilled: Any, t: float) -> None:
        self.level = 0
        self.seen: dict[Any, float] = {spilled: t}
        self.seen.update(tier)

    def add(self, x: Any, now: float, cutoff: float, known: bool = False) -> None:
        """``known``: ``x`` is in the set's dict, so (past level 0) it is in the sample exactly when it is
        sampled: no hash needed (the dict's values were all in the sample when it began, and every value
        seen since was offered to it)."""
        seen = self.seen
        n = len(seen)
        if _getsizeof(seen) > FRESH_SIZE[n + n // 3]:  # deleted entries grew its table (``FRESH_SIZE``)
            self.seen = seen = dict(seen.items())
        if x in seen:
            del seen[x]
        elif self.level and (known or level_hash(x) & ((1 << self.level) - 1)):
            return
        seen[x] = now
        if len(seen) > SAMPLE_SIZE:
            self.count(cutoff)
            while len(self.seen) > SAMPLE_SIZE:
                self.level += 1
                mask = (1 << self.level) - 1
                self.seen = {v: t for v, t in self.seen.items() if not level_hash(v) & mask}

    def count(self, cutoff: float) -> int:
        """Estimated values seen since ``cutoff`` (past sightings dropped)."""
        seen = self.seen
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= cutoff:
                break
            del seen[oldest]
        return len(seen) << self.level


__all__ = ["FRESH_SIZE", "SAMPLE_SIZE", "DistinctSample", "level_hash"]
