"""Ring buffers of window aggregates (``proxy.policy.windows``): counts, sums and ratios over the last
``window`` seconds in ``buckets`` slots, each state one flat array (no int or float object of its own).

A ring or a ratio is one uint32 array (float64 for sums): a header, then slots from the oldest bucket still
holding an event to the head (none while every event fell in one bucket, at most ``buckets``). Bucket
indexes are kept modulo 2**32 and compared by their difference, so no slot depends on the absolute index.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

_ZEROS: dict[tuple[str, int], array[Any]] = {}
if TYPE_CHECKING:
    _Array = array[Any]
else:
    _Array = array  # states are flat arrays, one object each (``array`` is generic to mypy only)

MASK = 0xFFFFFFFF  # bucket indexes are kept modulo 2**32 (uint32 slots) and compared by their difference
HALF = 1 << 31


def _zeros(typecode: str, n: int) -> array[Any]:
    zero = _ZEROS.get((typecode, n))
    if zero is None:
        zero = _ZEROS[(typecode, n)] = array(typecode, bytes(n * array(typecode).itemsize))
    return zero


class Ring(_Array):
    """Sum of values over the last ``window`` seconds in ``n`` buckets: one flat uint32 array (counts).

    ``[total, last, n, s0 .. s(L-1)]``: ``s(L-1)`` is bucket ``last`` (the head), ``s(L-1-i)`` bucket
    ``last - i``. The slots run from the oldest bucket still holding a value to the head, so ``L <= n``
    grows with the span of the window in use rather than its size (an account seen for 8 hours of a day
    in hourly buckets holds 8 slots, not 24). ``L`` is 0 (sparse) while every event so far fell in one
    bucket: ``total`` is all in bucket ``last``. Bucket indexes are stored modulo 2**32 and compared by
    their difference modulo 2**32, so no slot depends on the absolute index: a ring is one object, with
    no wrapper, int or float object of its own."""

    __slots__ = ()
    CODE = "I"  # the array's typecode

    def __new__(cls, n: int) -> Ring:
        return array.__new__(cls, cls.CODE, (0, 0, n))

    @classmethod
    def maker(cls, n: int) -> Callable[[], Ring]:
        """``lambda: cls(n)`` without the Python-level ``__new__`` (a state is made per new key)."""
        return cast("Callable[[], Ring]", partial(array.__new__, cls, cls.CODE, (0, 0, n)))

    def step(self, idx: int) -> None:
        """Move the head on to bucket ``idx`` (masked, not the head's). A late event (older than the
        head) leaves it: the caller counts it in the head bucket."""
        if len(self) == 3 and not self[0]:  # a new ring: start at ``idx``
            self[1] = idx
            return
        d = (idx - int(self[1])) & MASK
        if d >= HALF:
            return
        self[1] = idx
        size = len(self) - 3
        if not size:  # sparse: the old head bucket becomes the first slot
            self.append(self[0])
            size = 1
        drop = size + d - int(self[2])  # oldest slots past the window, then the empty ones after them
        if drop < 0:
            drop = 0
        while drop < size and not self[3 + drop]:
            drop += 1
        if drop:
            if drop >= size:  # nothing left in the window: one empty slot, the head's
                self[0] = self[3] = 0
                del self[4:]
                return
            total = self[0] - sum(self[3 : 3 + drop])
            self[0] = total if total > 1e-9 else 0
            del self[3 : 3 + drop]
        self.extend(_zeros(self.typecode, d))

    def add(self, idx: int, v: float) -> float:
        idx &= MASK
        if idx != self[1]:
            self.step(idx)
        if len(self) > 3:
            self[-1] += v
        total = self[0] = self[0] + v
        return total

    def read(self, idx: int) -> float:
        idx &= MASK
        if idx != self[1] and (self[0] or len(self) > 3):
            self.step(idx)
        return self[0]

    @property
    def total(self) -> float:
        return self[0]

    @property
    def dense(self) -> bool:
        return len(self) > 3


class SumRing(Ring):
    """A ``Ring`` with float64 slots (sums of arbitrary values)."""

    __slots__ = ()
    CODE = "d"


class Ratio(_Array):
    """A ratio's two series in one uint32 array, always at the same buckets: all events (``den``) and
    matching ones (``num``). ``[den, last, n, num, d0 .. d(L-1)]`` then ``m0 .. m(L-1)`` only while a
    matching event is in the window (``num`` > 0: most keys of a rare match never hold that series; it
    goes again when ``num`` falls to 0). Slots and buckets as in ``Ring``: from the oldest bucket still
    holding an event to the head, none while every event fell in one bucket."""

    __slots__ = ()

    def __new__(cls, n: int) -> Ratio:
        return array.__new__(cls, "I", (0, 0, n, 0))  # type: ignore[return-value]

    @classmethod
    def maker(cls, n: int) -> Callable[[], Ratio]:
        """``lambda: Ratio(n)`` without the Python-level ``__new__``."""
        return cast("Callable[[], Ratio]", partial(array.__new__, cls, "I", (0, 0, n, 0)))

    def step(self, idx: int) -> None:
        if len(self) == 4 and not self[0]:  # a new ratio: start at ``idx``
            self[1] = idx
            return
        d = (idx - self[1]) & MASK
        if d >= HALF:
            return
        self[1] = idx
        num = self[3]
        size = len(self) - 4
        if num:
            size >>= 1  # both series
        if not size:  # sparse: the old head bucket becomes the first slot of each series
            self.append(self[0])
            if num:
                self.append(num)
            size = 1
        drop = size + d - self[2]
        if drop < 0:
            drop = 0
        while drop < size and not self[4 + drop]:  # an empty bucket holds no match either
            drop += 1
        if drop:
            if drop >= size:  # nothing left in the window: one empty slot, the head's
                self[0] = self[3] = self[4] = 0
                del self[5:]
                return
            self[0] -= sum(self[4 : 4 + drop])
            if num:
                num -= sum(self[4 + size : 4 + size + drop])
                self[3] = num
                if num:
                    del self[4 + size : 4 + size + drop]
                else:
                    del self[4 + size :]
            del self[4 : 4 + drop]
            size -= drop
        if num:
            self[4 + size : 4 + size] = _zeros("I", d)
        self.extend(_zeros("I", d))

    def push(self, idx: int, match: bool) -> float:
        idx &= MASK
        if idx != self[1]:
            self.step(idx)
        size = len(self) - 4
        if size:
            num = self[3]
            if num:
                size >>= 1
            self[3 + size] += 1
            if match:
                if not num:
                    self.extend(_zeros("I", size))
                self[-1] += 1
        den = self[0] = self[0] + 1
        if match:
            self[3] += 1
        return self[3] / den

    def ratio(self, idx: int) -> float:
        idx &= MASK
        if idx != self[1] and (self[0] or len(self) > 4):
            self.step(idx)
        den = self[0]
        return self[3] / den if den else 0.0

    @property
    def ntotal(self) -> float:
        return self[3]
