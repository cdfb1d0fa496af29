"""Alert delivery: batched webhook posts from a background task, never on the request path.

``submit`` only appends to a bounded queue (the oldest alerts are dropped when it is full); the sender
task posts JSON batches (``{"alerts": [...]}``) every ``interval`` seconds or when a batch is full.
A failed post is logged and its batch dropped: alerts are best effort, enforcement does not depend on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from proxy.tasks import cancel_and_wait, spawn

log = logging.getLogger("distillguard.alerts")

Post = Callable[[list[dict[str, Any]]], Awaitable[None]]


class AlertSink:
    def __init__(
        self,
        url: str | None = None,
        *,
        post: Post | None = None,
        batch: int = 100,
        interval: float = 5.0,
        max_queue: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self._post = post
        self.batch = batch
        self.interval = interval
        self.timeout = timeout
        self.queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None
        self.sent = 0
        self.failed = 0

    def submit(self, alerts: list[dict[str, Any]]) -> None:
        self.queue.extend(alerts)
        if len(self.queue) >= self.batch:
            self._wake.set()

    async def _send(self, items: list[dict[str, Any]]) -> None:
        if self._post is not None:
            await self._post(items)
            return
        if not self.url:
            return
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.post(self.url, json={"alerts": items}) as resp:
            if resp.status >= 300:
                raise RuntimeError(f"webhook answered {resp.status}")

    async def flush(self) -> None:
        while self.queue:
            items = [self.queue.popleft() for _ in range(min(self.batch, len(self.queue)))]
            try:
                await self._send(items)
                self.sent += len(items)
            except Exception:
                self.failed += len(items)
                log.exception("alert webhook failed; %d alerts dropped", len(items))

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):  # woken early, or the interval passed
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            await self.flush()

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._loop(), "alert-sender")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
        if self._session is not None:
            await self._session.close()
            self._session = None


