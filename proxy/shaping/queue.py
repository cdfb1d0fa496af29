"""A fair delay queue per (limit, key): nginx ``limit_req`` delay, served round-robin across flows.

A request over a limit that may wait (``delay.max``) joins the queue of its limit key. One dispatcher
task per non-empty key admits waiters as the limit allows, taking flows (accounts, or client IPs) in
turn, so a flood from one account sharing a key (a per-model or per-route limit) cannot starve the
others. Each waiter carries its own state op, tried when its turn comes:

- a GCRA op (request rate, or a token reservation): when it does not conform, the dispatcher sleeps
  exactly the wait the backend computed;
- a lease (concurrency): the dispatcher sleeps until a slot is released in this process (``notify``)
  or, at the latest, ``poll`` seconds (leases freed by another replica or by their TTL).

Bounds: ``queue`` waiters per key; when full, a newcomer displaces the newest waiter of the longest
flow if that flow holds more places than the newcomer's, else the newcomer is rejected. A waiter that
is not admitted by its deadline is rejected. A waiter whose task is cancelled (client gone) leaves the
queue at once and frees its place; an op taken for a waiter that left meanwhile is given back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from proxy.state.base import ACQUIRE, COST, GCRA, INTERVAL, OK, WAIT, Op, Result, StateBackend, adjust, release

if TYPE_CHECKING:
    from proxy.clock import Clock

log = logging.getLogger("distillguard.shaping")

Sleep = Callable[[float], Awaitable[None]]
_SLACK = 1e-6
FAILED_OPEN: Result = (True, 0.0, 0.0, 0.0, 1.0)  # admitted without the op: the store failed


def undo_op(op: Op) -> Op:
    """The op giving back what ``op`` (a GCRA admission or a lease) took."""
    if op[0] == GCRA:
        return adjust(op[1], op[2], op[3], -op[4])
    if op[0] == ACQUIRE:
        return release(op[1], op[2])
    raise TypeError(f"cannot undo state op {op!r}")


class _Waiter:
    __slots__ = ("deadline", "flow", "fut", "op")

    def __init__(self, flow: str, op: Op, deadline: float, fut: asyncio.Future[Result | None]) -> None:
        self.flow = flow
        self.op = op
        self.deadline = deadline
        self.fut = fut


class _KeyQueue:
    __slots__ = ("flows", "next_at", "rr", "size", "sleeper", "task")

    def __init__(self) -> None:
        self.flows: dict[str, deque[_Waiter]] = {}
        self.rr: deque[str] = deque()  # flows with waiters, in service order
        self.size = 0
        self.next_at = 0.0  # when the dispatcher expects the next free slot
        self.task: asyncio.Task[None] | None = None
        self.sleeper: asyncio.Future[None] | None = None  # the dispatcher's current sleep (notify wakes it)

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

    def head(self) -> _Waiter | None:
        """The waiter whose turn it is: the head of the first flow in line."""
        return self.flows[self.rr[0]][0] if self.rr else None

    def served(self, w: _Waiter) -> None:
        """``w`` (the head) was admitted: it leaves, its flow goes to the back of the line."""
        flow = self.rr.popleft()
        q = self.flows[flow]
        q.popleft()
        self.size -= 1
        if q:
            self.rr.append(flow)
        else:
            del self.flows[flow]

    def pop_next(self) -> _Waiter | None:
        w = self.head()
        if w is not None:
            self.served(w)
        return w

    def longest(self) -> str | None:
        return max(self.flows, key=lambda f: len(self.flows[f]), default=None)


class DelayQueues:
    """All delay queues of one limit. ``wait`` returns the op's result when admitted (op taken),
    None if not (queue full, deadline passed, displaced)."""

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
        poll: float = 0.1,
    ) -> None:
        self.name = name
        self.backend = backend
        self.clock = clock
        self.sleep = sleep
        self.max_delay = max_delay
        self.max_queue = max_queue
        self.on_depth = on_depth
        self.poll = poll
        self._queues: dict[str, _KeyQueue] = {}
        self.depth = 0

    def _depth(self, d: int) -> None:
        self.depth += d
        if self.on_depth is not None:
            self.on_depth(self.depth)

    def queued(self, key: str) -> int:
        q = self._queues.get(key)
        return q.size if q is not None else 0

    def estimate(self, op: Op, flow: str, first_wait: float) -> float:
        """Expected wait of a newcomer of ``flow`` with GCRA ``op`` (``first_wait``: its own wait on an
        empty queue). With waiters: when the head is expected to fit, plus one interval per unit of
        the waiters round-robin serves after the head and before the newcomer (every flow's next
        ``mine + 1``, where ``mine`` is what the newcomer's flow already has queued), plus its own."""
        q = self._queues.get(op[1])
        if q is None or not q.size:
            return first_wait
        head = q.head()
        mine = len(q.flows.get(flow, ()))
        units = sum(w.op[COST] for w in q.flows.get(flow, ()))
        for f, d in q.flows.items():
            if f != flow:
                for i, w in enumerate(d):
                    if i > mine:
                        break
                    units += w.op[COST]
        if head is not None:
            units -= head.op[COST]
        after_head = max(q.next_at - self.clock.now(), 0.0) + (units + op[COST]) * op[INTERVAL]
        return max(first_wait, after_head)

    def has_room(self, key: str, flow: str) -> bool:
        """Whether a newcomer of ``flow`` would get a place (see the displacement rule above)."""
        q = self._queues.get(key)
        if q is None or q.size < self.max_queue:
            return True
        victim = q.longest()
        return victim is not None and len(q.flows[victim]) > len(q.flows.get(flow, ())) + 1

    async def wait(self, op: Op, flow: str, first_wait: float = 0.0) -> Result | None:
        """Queue ``op`` for ``flow``; ``first_wait``: the backend's wait for it (GCRA), the time the
        first waiter of an empty queue is expected to fit (estimates of newcomers build on it)."""
        key = op[1]
        q = self._queues.get(key)
        if q is None:
            q = self._queues[key] = _KeyQueue()
        if not q.size:
            q.next_at = self.clock.now() + first_wait
        if q.size >= self.max_queue:
            victim = q.longest()
            if victim is None or len(q.flows[victim]) <= len(q.flows.get(flow, ())) + 1:
                return None
            w_out = q.flows[victim][-1]
            q.remove(w_out)
            self._depth(-1)
            w_out.fut.set_result(None)
        loop = asyncio.get_running_loop()
        w = _Waiter(flow, op, self.clock.now() + self.max_delay, loop.create_future())
        q.push(w)
        self._depth(1)
        if q.task is None or q.task.done():
            q.task = loop.create_task(self._dispatch(key, q), name=f"shape-queue:{self.name}")
        try:
            return await w.fut
        except asyncio.CancelledError:
            if w.fut.done() and not w.fut.cancelled() and w.fut.result() is not None:
                # admitted just as the waiter was cancelled (client gone): give the op back
                try:
                    await self.backend.apply([undo_op(op)], self.clock.now())
                except Exception:
                    log.exception("state backend failed while giving back a queue slot")
            raise
        finally:
            if not w.fut.done() or w.fut.cancelled():
                if q.remove(w):
                    self._depth(-1)

    def notify(self, key: str) -> None:
        """A lease on ``key`` was released in this process: let its dispatcher try again now."""
        q = self._queues.get(key)
        if q is not None:
            self._wake(q)

    @staticmethod
    def _wake(q: _KeyQueue) -> None:
        if q.sleeper is not None and not q.sleeper.done():
            q.sleeper.cancel()

    async def _dispatch(self, key: str, q: _KeyQueue) -> None:
        try:
            while q.size:
                now = self.clock.now()
                self._expire(q, now - _SLACK)  # a waiter due exactly at its deadline still goes
                w = q.head()
                if w is None:
                    break
                res = (await self.backend.apply([w.op], now))[0]
                if res[OK]:
                    if q.head() is w and not w.fut.done():
                        q.served(w)
                        self._depth(-1)
                        w.fut.set_result(res)
                    else:  # it left while the backend answered: give back what it was given
                        await self.backend.apply([undo_op(w.op)], self.clock.now())
                    continue
                if w.op[0] == GCRA:
                    pause = res[WAIT]
                    q.next_at = now + pause
                else:
                    pause = self.poll
                first_deadline = min(x.deadline for f in q.flows.values() for x in f)
                await self._sleep(q, max(0.0, min(pause, first_deadline + 2 * _SLACK - now)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delay queue dispatcher failed; admitting waiters (fail open)")
            while (x := q.pop_next()) is not None:
                self._depth(-1)
                if not x.fut.done():
                    x.fut.set_result(FAILED_OPEN)
        finally:
            if self._queues.get(key) is q and not q.size:
                del self._queues[key]

    async def _sleep(self, q: _KeyQueue, seconds: float) -> None:
        """Sleep ``seconds`` on the injected sleep, or less if ``notify``/a newcomer wakes us."""
        sleeper = asyncio.ensure_future(self.sleep(seconds))
        q.sleeper = sleeper
        try:
            await asyncio.wait((sleeper,))
        finally:
            q.sleeper = None
            if not sleeper.done():
                sleeper.cancel()

    def _expire(self, q: _KeyQueue, now: float) -> None:
        for f in list(q.flows.values()):
            for w in [w for w in f if w.deadline < now]:
                q.remove(w)
                self._depth(-1)
                if not w.fut.done():
                    w.fut.set_result(None)

    async def close(self) -> None:
        for q in list(self._queues.values()):
            if q.task is not None:
                q.task.cancel()
            while (w := q.pop_next()) is not None:
                if not w.fut.done():
                    w.fut.set_result(None)
        self._queues.clear()
        self.depth = 0
