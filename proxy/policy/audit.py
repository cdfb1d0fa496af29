"""The audit log: one JSONL record per request, the same format ``replay`` reads back.

A record holds who sent the request, its features, rule hits, scores, actions and the response outcome.
It never holds reasoning text; the prompt itself only when configured, otherwise its SHA-256.
Writes are buffered and flushed off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path
from typing import Any

import orjson

from proxy.policy.engine import Verdict
from proxy.policy.signals import SCHEMA, complete_features, features_to_json
from proxy.tasks import cancel_and_wait, spawn

log = logging.getLogger("distillguard.audit")


def audit_record(
    *,
    ts: float,
    request_id: str,
    features: dict[str, Any],
    verdict: Verdict | None,
    response_verdict: Verdict | None = None,
    prompt: str = "",
    include_prompt: bool = False,
    response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one record. ``features`` is the flat feature dict (agg.* and score.* are left out)."""
    complete_features(features)  # lazy features no condition read
    feats = {k: v for k, v in features.items() if k in SCHEMA or k.startswith("matchers.")}
    feats = {k: v for k, v in feats.items() if not k.startswith("response.")}
    rec: dict[str, Any] = {
        "ts": ts,
        "request_id": request_id,
        "account": {
            "id": feats.get("account.id", ""),
            "tier": feats.get("account.tier", ""),
            "org": feats.get("account.org", ""),
        },
        "features": features_to_json(feats),
        "prompt_sha256": hashlib.sha256(prompt.encode("utf-8", "replace")).hexdigest(),
    }
    if include_prompt:
        rec["prompt"] = prompt
    if verdict is not None:
        rec["hits"] = [
            {"rule": h.rule, "mode": h.mode, "key": h.key, "values": h.values} for h in verdict.hits
        ]
        rec["scores"] = verdict.scores
        rec["actions"] = verdict.actions
        rec["controls"] = verdict.controls
        rec["blocked"] = verdict.block.rule if verdict.block is not None else None
    if response_verdict is not None and (response_verdict.hits or response_verdict.actions):
        rec["response_hits"] = [
            {"rule": h.rule, "mode": h.mode, "key": h.key, "values": h.values} for h in response_verdict.hits
        ]
        rec["actions"] = [*rec.get("actions", []), *response_verdict.actions]
    if response is not None:
        rec["response"] = response
    return rec


class AuditLog:
    """Buffered JSONL writer. ``write`` is cheap and synchronous; ``flush`` runs the file I/O in a thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        include_prompt: bool = False,
        flush_every: float = 1.0,
        max_buffer: int = 10_000,
    ) -> None:
        self.path = Path(path)
        self.include_prompt = include_prompt
        self.flush_every = flush_every
        self.max_buffer = max_buffer
        self._buf: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def write(self, record: dict[str, Any]) -> None:
        if len(self._buf) >= self.max_buffer:
            self.dropped += 1
            return
        self._buf.append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    def _write_sync(self, lines: list[bytes]) -> None:
        with self.path.open("ab") as f:
            f.write(b"".join(lines))

    async def flush(self) -> None:
        if not self._buf:
            return
        lines, self._buf = self._buf, []
        try:
            await asyncio.to_thread(self._write_sync, lines)
        except OSError:
            log.exception("audit log write failed (%d records lost)", len(lines))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_every)
            await self.flush()

    async def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._loop(), "audit-flush")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self.flush()
