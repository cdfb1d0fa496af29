"""Inter-arrival statistics of a window aggregate (``kind: interarrival``): the last N gaps between
events with running sums, one flat array('d') per state."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    _Array = array[Any]
else:
    _Array = array  # one flat array per state (``array`` is generic to mypy only)

_IRREGULAR = {"cv": 1.0, "burstiness": 0.0, "mean": 0.0, "min": 0.0}


class Gaps(_Array):
    """Last N inter-arrival gaps with running sums, in one array('d'):
    ``[last_t, s, ss, i, n, size, g0, ...]`` (the gaps grow to ``size`` as they arrive, then wrap)."""

    __slots__ = ()

    def __new__(cls, size: int) -> Gaps:
        return array.__new__(cls, "d", (-1.0, 0.0, 0.0, 0.0, 0.0, float(size)))  # type: ignore[return-value]

    @classmethod
    def maker(cls, size: int) -> Callable[[], Gaps]:
        """``lambda: Gaps(size)`` without the Python-level ``__new__`` (a state is made per new key)."""
        return cast("Callable[[], Gaps]", partial(array.__new__, cls, "d", (-1.0, 0.0, 0.0, 0.0, 0.0, float(size))))

    @property
    def last_t(self) -> float:
        return self[0]

    @property
    def n(self) -> int:
        return int(self[4])

    @property
    def gaps(self) -> array[float]:
        return self[6:]

    def add(self, now: float) -> None:
        last = self[0]
        if last >= 0:
            g = now - last
            if g < 0:
                g = 0.0
            n = int(self[4])
            if n < self[5]:
                self.append(g)  # while filling, slot i is n: the next append
                self[3] = self[4] = n + 1
            else:
                j = int(self[3]) % n
                old = self[6 + j]
                self[1] -= old
                self[2] -= old * old
                self[6 + j] = g
                self[3] = j + 1
            self[1] += g
            self[2] += g * g
        self[0] = now

    def stat(self, which: str) -> float:
        n = int(self[4])
        if n < 2:
            # Not enough gaps to judge regularity: report "irregular" values that do not trip thresholds.
            return _IRREGULAR[which]
        mean = self[1] / n
        if which == "mean":
            return mean
        if which == "min":
            return min(self[6 : 6 + n])
        var = max(0.0, self[2] / n - mean * mean)
        cv = math.sqrt(var) / mean if mean > 0 else 0.0
        return cv if which == "cv" else (cv - 1.0) / (cv + 1.0)
