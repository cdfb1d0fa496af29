"""Deadlines of the relay: waiting for upstream response headers (``HeaderDeadlines``) and a response that
stops making progress in either direction (``IdleWatch``). Both avoid a timeout context per request or per
chunk: arming is a dict entry or a stored time, one loop timer or wheel entry does the rest.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from proxy import errors
from proxy.tasks import Deadline, timer_wheel

if TYPE_CHECKING:
    from proxy.exchange import Exchange

log = logging.getLogger("distillguard.forward")


class HeaderDeadlines:
    """Tasks waiting for upstream response headers, each cancelled if its deadline passes first.

    Arming is a dict insertion and disarming a removal (a ``TimerWheel`` entry costs ~10 k
    instructions to arm and cancel: an object, a set per slot, two method calls; a loop timer more).
    One loop timer is set for the earliest deadline only; when it fires, the due tasks are cancelled
    and it is set again for the earliest left (at least ``RESOLUTION`` later). Deadlines never fire
    early; the timer may fire to find that the task it was set for already finished (then it just
    moves on). With requests finishing in time that is one sweep per header timeout, not per request.
    """

    __slots__ = ("_at", "_timer", "due", "loop")

    RESOLUTION = 0.05  # seconds: deadlines fire up to this late, never early

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: dict[asyncio.Task[Any], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0  # when the timer fires (meaningful while it is set)

    def arm(self, task: asyncio.Task[Any], seconds: float) -> None:
        when = self.loop.time() + seconds
        self.due[task] = when
        if self._timer is None or when < self._at:
            self._set(when)

    def disarm(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``'s deadline; True if it was still pending (neither fired nor disarmed)."""
        return self.due.pop(task, None) is not None

    def _set(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = when
        self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self.loop.time()
        due = self.due
        late = [task for task, when in due.items() if when <= now]
        for task in late:
            del due[task]
            task.cancel()
        if due:
            # At most one sweep per RESOLUTION however the deadlines are spread (a stuck upstream with
            # thousands of requests waiting must not cost a sweep per request).
            self._set(max(min(due.values()), now + self.RESOLUTION))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.due.clear()


class IdleWatch:
    """Ends a response that has made no progress for ``idle`` seconds, in either direction.

    One wheel deadline per response instead of a timeout context per chunk: ``touch()`` only stores
    the time; the deadline re-arms itself for the last touch plus ``idle``. On expiry it closes the
    upstream response, which makes a pending read fail (``fired`` tells that failure apart from a real
    one). If the client's write buffer is still full at that point, the client has stopped reading: a
    pending write would wait forever (and hold the upstream), so the client connection is dropped too.
    """

    __slots__ = ("_deadline", "_loop", "ex", "fired", "idle", "last", "request", "resp")

    def __init__(
        self, resp: aiohttp.ClientResponse, idle: float, request: web.Request | None = None,
        ex: Exchange | None = None,
    ) -> None:
        wheel = timer_wheel()
        self._loop = wheel.loop
        self.resp = resp
        self.request = request
        self.ex = ex
        self.idle = idle
        self.fired = False
        self.last = self._loop.time()
        self._deadline: Deadline = wheel.at(self.last + idle, self._check)

    def touch(self) -> None:
        self.last = self._loop.time()

    def _check(self) -> None:
        due = self.last + self.idle
        if self._loop.time() < due:
            self._deadline = timer_wheel().at(due, self._check)
            return
        self.fired = True
        transport = self.request.transport if self.request is not None else None
        if transport is not None and transport.get_write_buffer_size() > 0:
            if self.ex is not None:
                self.ex.error_code = errors.CLIENT_TIMEOUT
                log.warning("client stopped reading for %.0fs; dropping it (%s)", self.idle, self.ex.request_id)
            transport.abort()
        self.resp.close()

    def cancel(self) -> None:
        self._deadline.cancel()
