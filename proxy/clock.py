"""Injected time. Logic asks a clock, never ``time.time()`` directly, so tests and replays run on event time."""

from __future__ import annotations

import time


class Clock:
    """Wall clock (``now``, seconds since the epoch) and a monotonic clock (``mono``) for durations."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    def mono(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that only moves when told to; ``now`` and ``mono`` advance together."""

    __slots__ = ("_offset", "_t")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start
        self._offset = start

    def now(self) -> float:
        return self._t

    def mono(self) -> float:
        return self._t - self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._t += seconds

    def set(self, t: float) -> None:
        self._t = max(self._t, t)


class SystemClock(Clock):
    """The real clocks, as the C functions themselves: reading one costs no Python frame (the relay
    reads the clock several times per request)."""

    __slots__ = ()

    now = staticmethod(time.time)
    mono = staticmethod(time.monotonic)


SYSTEM_CLOCK = SystemClock()
