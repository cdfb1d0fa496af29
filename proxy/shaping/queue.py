"""A fair delay queue per (limit, key): nginx ``limit_req`` delay, served round-robin across flows.

A request over its rate that may wait (``delay.max``) joins the queue of its limit key. One dispatcher
task per non-empty key admits waiters as the rate allows, taking flows (accounts, or client IPs) in
turn, so a flood from one account sharing a key (a per-model or per-route limit) cannot starve the
others. Bounds: ``queue`` waiters per key; when full, a newcomer displaces the newest waiter of the
longest flow if that flow holds more places than the newcomer's, else the newcomer is rejected.
A waiter that is not admitted by its deadline is rejected. A waiter whose task is cancelled (client
gone) leaves the queue at once and frees its place.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxy.state.base import Gcra, StateBackend

if TYPE_CHECKING:
    from proxy.clock import Clock

log = logging.getLogger("distillguard.shaping")

Sleep = Callable[[float], Awaitable[None]]
_SLACK = 1e-6


class _Waiter:
    __slots__ = ("deadline", "flow", "fut")

    def __init__(self, flow: str, deadline: float, fut: asyncio.Future[bool]) -> None:
        self.flow = flow
        self.deadline = deadline
        self.fut = fut


class _KeyQueue:
    __slots__ = ("flows", "next_at", "op", "rr", "size", "task")

    def __init__(self, op: Gcra) -> None:
        self.flows: dict[str, deque[_Waiter]] = {}
        self.rr: deque[str] = deque()  # flows with waiters, in service order
        self.size = 0
        self.next_at = 0.0  # when the dispatcher expects the next free slot
        self.task: asyncio.Task[None] | None = None
        self.op = op

    def push(self, w: _Waiter) -> None:
        q = self.flows.get(w.flow)
        if q is None:
            q = self.flows[w.flow] = deque()
            self.rr.append(w.flow)
        q.append(w)
        self.size += 1

    def remove(self, w: _Waiter) -> bool:
        q = self.flows.get(w.flow)
        if q is None:
            return False
        try:
            q.remove(w)
        except ValueError:
            return False
        self.size -= 1
        if not q:
            del self.flows[w.flow]
            self.rr.remove(w.flow)
        return True

    def pop_next(self) -> _Waiter | None:
        """The head waiter of the next flow in turn; that flow goes to the back of the line."""
        if not self.rr:
            return None
        flow = self.rr.popleft()
        q = self.flows[flow]
        w = q.popleft()
        self.size -= 1
        if q:
            self.rr.append(flow)
        else:
            del self.flows[flow]
        return w

    def longest(self) -> str | None:
        return max(self.flows, key=lambda f: len(self.flows[f]), default=None)


class DelayQueues:
    """All delay queues of one limit. ``wait`` returns True when admitted (slot taken), False if not."""

    def __init__(
        self,
        name: str,
        backend: StateBackend,
        clock: Clock,
        sleep: Sleep,
        *,
        max_delay: float,
        max_queue: int,
        on_depth: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.backend = backend
        self.clock = clock
        self.sleep = sleep
        self.max_delay = max_delay
        self.max_queue = max_queue
        self.on_depth = on_depth
        self._queues: dict[str, _KeyQueue] = {}
        self.depth = 0

    def _depth(self, d: int) -> None:
        self.depth += d
        if self.on_depth is not None:
            self.on_depth(self.depth)

    def queued(self, key: str) -> int:
        q = self._queues.get(key)
        return q.size if q is not None else 0

    def estimate(self, key: str, flow: str, first_wait: float, interval: float) -> float:
        """Expected wait for a newcomer of ``flow``: the waiters round-robin serves before it (every
        flow's next ``mine + 1``, where ``mine`` is what its own flow already has queued)."""
        q = self._queues.get(key)
        if q is None or not q.size:
            return first_wait
        mine = len(q.flows.get(flow, ()))
        ahead = mine + sum(min(len(d), mine + 1) for f, d in q.flows.items() if f != flow)
        first = max(first_wait, q.next_at - self.clock.now(), 0.0)
        return first + ahead * interval

    async def wait(self, op: Gcra, flow: str) -> bool:
        q = self._queues.get(op.key)
        if q is None:
            q = self._queues[op.key] = _KeyQueue(op)
        if q.size >= self.max_queue:
            victim = q.longest()
            if victim is None or len(q.flows[victim]) <= len(q.flows.get(flow, ())) + 1:
                return False
            w_out = q.flows[victim][-1]
            q.remove(w_out)
            self._depth(-1)
            w_out.fut.set_result(False)
        loop = asyncio.get_running_loop()
        w = _Waiter(flow, self.clock.now() + self.max_delay, loop.create_future())
        q.push(w)
        self._depth(1)
        if q.task is None or q.task.done():
            q.task = loop.create_task(self._dispatch(op.key, q), name=f"shape-queue:{self.name}")
        try:
            return await w.fut
        finally:
            if not w.fut.done() or w.fut.cancelled():
                if q.remove(w):
                    self._depth(-1)

    async def _dispatch(self, key: str, q: _KeyQueue) -> None:
        try:
            while q.size:
                now = self.clock.now()
                self._expire(q, now - _SLACK)  # a waiter due exactly at its deadline still goes
                if not q.size:
                    break
                res = (await self.backend.apply([q.op], now))[0]
                if res.ok:
                    while (w := q.pop_next()) is not None:
                        self._depth(-1)
                        if not w.fut.done():
                            w.fut.set_result(True)
                            break
                    continue
                q.next_at = now + res.wait
                first_deadline = min(w.deadline for f in q.flows.values() for w in f)
                await self.sleep(max(0.0, min(res.wait, first_deadline + 2 * _SLACK - now)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delay queue dispatcher failed; admitting waiters (fail open)")
            while (w := q.pop_next()) is not None:
                self._depth(-1)
                if not w.fut.done():
                    w.fut.set_result(True)
        finally:
            if self._queues.get(key) is q and not q.size:
                del self._queues[key]

    def _expire(self, q: _KeyQueue, now: float) -> None:
        for f in list(q.flows.values()):
            for w in [w for w in f if w.deadline < now]:
                q.remove(w)
                self._depth(-1)
                if not w.fut.done():
                    w.fut.set_result(False)

    async def close(self) -> None:
        for q in list(self._queues.values()):
            if q.task is not None:
                q.task.cancel()
            while (w := q.pop_next()) is not None:
                if not w.fut.done():
                    w.fut.set_result(False)
        self._queues.clear()
        self.depth = 0
