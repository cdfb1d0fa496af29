"""One JSON line per request, written off the request path in small batches.

Never contains keys, prompt text or reasoning text: filters that want something logged put it in
``ex.decisions`` (already free of secrets).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import IO, TYPE_CHECKING, Any

import orjson

from proxy.tasks import cancel_and_wait, spawn

if TYPE_CHECKING:
    from proxy.exchange import Exchange

log = logging.getLogger("distillguard.accesslog")


def access_record(ex: Exchange) -> dict[str, Any]:
    route = ex.route
    dialect = ex.dialect
    account = ex.account
    t0 = ex.t0
    t_end = ex.t_end
    t_first = ex.t_first_byte
    # Milliseconds to the microsecond, written out (``round()`` costs ~3 µs on floats: it goes through
    # strings; a helper call per field is a measurable share of the line's cost).
    rec: dict[str, Any] = {
        "ts": int(ex.started * 1_000_000 + 0.5) / 1_000_000,
        "request_id": ex.request_id,
        "method": ex.method,
        "path": ex.path,
        "route": route.name if route is not None else None,
        "dialect": dialect.name if dialect is not None else None,
        "account": account.id if account is not None else None,
        "tier": account.tier if account is not None else None,
        "key_id": ex.key_id,
        "client_ip": ex.client_ip,
        "status": ex.status,
        "stream": ex.streaming,
        "duration_ms": int((t_end - t0) * 1_000_000 + 0.5) / 1000 if t_end else None,
        "ttfb_ms": int((t_first - t0) * 1_000_000 + 0.5) / 1000 if t_first else None,
        "bytes_in": ex.bytes_in,
        "bytes_out": ex.bytes_out,
    }
    if dialect is not None:
        u = ex.usage
        rec["model"] = ex.model
        rec["usage"] = {"input": u.input, "output": u.output, "reasoning": u.reasoning}
    if ex.upstream_request_id:
        rec["upstream_request_id"] = ex.upstream_request_id
    if ex.error_code:
        rec["error"] = ex.error_code
    if ex.client_gone:
        rec["client_gone"] = True
    if ex.decisions:
        rec["decisions"] = ex.decisions
    if ex._tags:
        rec["tags"] = sorted(ex._tags)
    return rec


class AccessLog:
    """Buffered JSONL writer; ``write`` is cheap (append), a background task flushes every ``interval``."""

    def __init__(self, target: str = "-", interval: float = 0.2) -> None:
        self.target = target
        self.interval = interval
        self._buf: list[bytes] = []
        self._fh: IO[bytes] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.target != "off"

    async def start(self) -> None:
        if not self.enabled:
            return
        self._fh = sys.stdout.buffer if self.target == "-" else open(self.target, "ab")
        self._task = spawn(self._run(), "accesslog-flush")

    def write(self, ex: Exchange) -> None:
        if self._fh is None:
            return
        buf = self._buf
        try:
            buf.append(orjson.dumps(access_record(ex), option=orjson.OPT_APPEND_NEWLINE))
        except Exception:  # a log line must never fail a request
            log.exception("access record failed for %s", ex.request_id)
        if len(buf) >= 512:
            self.flush()

    def flush(self) -> None:
        if not self._buf or self._fh is None:
            return
        data, self._buf = b"".join(self._buf), []
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError:
            log.exception("access log write failed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.flush()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        self.flush()
        if self._fh is not None and self.target != "-":
            self._fh.close()
        self._fh = None
