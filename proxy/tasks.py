"""Background tasks, spawned through one helper that keeps a reference and logs failures; coarse deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("distillguard.tasks")

_running: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s failed", task.get_name(), exc_info=task.exception())


def spawn(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start ``coro`` in the background; the task is referenced until done and a failure is logged."""
    task = asyncio.get_running_loop().create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_done)
    return task


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has finished (no-op for ``None``)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --------------------------------------------------------------------------- coarse deadlines


class Deadline:
    """One pending deadline of a ``TimerWheel``; ``cancel()`` forgets it at once (no memory left behind)."""

    __slots__ = ("callback", "slot", "wheel")

    def __init__(self, callback: Callable[[], object], slot: int, wheel: TimerWheel) -> None:
        self.callback: Callable[[], object] | None = callback
        self.slot = slot
        self.wheel: TimerWheel | None = wheel

    @property
    def pending(self) -> bool:
        """Neither fired nor cancelled yet."""
        return self.wheel is not None

    def cancel(self) -> None:
        w = self.wheel
        if w is None:
            return
        self.wheel = None
        self.callback = None  # (a callback bound to its owner would otherwise make a reference cycle)
        bucket = w.buckets.get(self.slot)
        if bucket is not None:
            bucket.discard(self)
            if not bucket:
                del w.buckets[self.slot]


class TimerWheel:
    """Deadlines rounded up to ``resolution`` seconds, all driven by one loop timer.

    Per request the relay arms two deadlines (response headers, idle upstream) that almost never fire.
    A loop timer costs ~3.4 µs to arm and cancel on uvloop (a libuv handle each) and a few hundred
    bytes while it lives; here arming is a set insertion and cancelling a set removal. Deadlines fire
    up to ``resolution`` late, never early. The wheel ticks only while it holds deadlines.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = 0.05) -> None:
        self.loop = loop
        self.resolution = resolution
        self.buckets: dict[int, set[Deadline]] = {}
        self._done = int(loop.time() / resolution)  # every slot up to this one has fired
        self._tick: asyncio.TimerHandle | None = None

    def at(self, when: float, callback: Callable[[], object]) -> Deadline:
        """Call ``callback()`` at loop time ``when`` (rounded up to the next slot) unless cancelled."""
        res = self.resolution
        if self._tick is None:  # idle until now: nothing is pending, so no slot can be skipped
            self._done = max(self._done, int(self.loop.time() / res))
            self._tick = self.loop.call_at((self._done + 1) * res, self._run)
        slot = max(int(when / res) + 1, self._done + 1)
        d = Deadline(callback, slot, self)
        bucket = self.buckets.get(slot)
        if bucket is None:
            self.buckets[slot] = {d}
        else:
            bucket.add(d)
        return d

    def _run(self) -> None:
        self._tick = None
        now = int(self.loop.time() / self.resolution)
        buckets = self.buckets
        # Normally one slot has passed since the last tick; after a long stall, scan the keys instead.
        slots = range(self._done + 1, now + 1) if now - self._done <= len(buckets) else sorted(
            s for s in buckets if s <= now)
        self._done = max(self._done, now)
        for slot in slots:
            bucket = buckets.pop(slot, None)
            if bucket is None:
                continue
            for d in bucket:
                callback, d.wheel, d.callback = d.callback, None, None
                try:
                    if callback is not None:
                        callback()
                except Exception:
                    log.exception("deadline callback failed")
        if buckets and self._tick is None:  # (a callback may have armed the tick already)
            self._tick = self.loop.call_at((self._done + 1) * self.resolution, self._run)


_wheel: TimerWheel | None = None


def timer_wheel() -> TimerWheel:
    """The wheel of the running loop (one per process; replaced when a new loop runs, as in tests)."""
    global _wheel
    loop = asyncio.get_running_loop()
    w = _wheel
    if w is None or w.loop is not loop:
        w = _wheel = TimerWheel(loop)
    return w
