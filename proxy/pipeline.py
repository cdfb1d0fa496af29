"""The filter chain: ordered request hooks, response hooks in reverse, per-event hooks, always-run ``on_done``.

A filter is any object with some of these hooks (all optional; the chain looks them up once at start):

``async on_request(ex) -> Reply | None``
    Runs before forwarding, in chain order. May edit ``ex.json`` (then ``ex.mark_body_changed()``),
    ``ex.upstream_headers`` and ``ex.reply_headers``. Returning a ``Reply`` skips the later request hooks
    and the upstream; the reply still goes through ``on_reply`` hooks and ``on_done``.
``async on_response_headers(ex) -> Reply | None``
    Runs in reverse order once the upstream's status and headers are known (``ex.status``,
    ``ex.response_headers``, ``ex.streaming``). A ``Reply`` replaces the upstream response.
``on_event(ex, event) -> list[Event]``
    Pure, synchronous, per stream event, in reverse order. Return ``[event]`` to pass it on unchanged
    (its raw bytes are relayed), ``[]`` to drop it, or new events. Raising ends the client's stream
    with the dialect's error event (fail closed).
``on_read(ex, data, sep, framer) -> bytes | None``
    Optional companion of ``on_event`` for SSE streams. When this filter is the only one that needs a
    stream's events, the relay hands it whole reads instead: ``data`` is one or more complete events as
    the bytes that came (each ending with ``sep``, ``\\n\\n`` or ``\\r\\n\\r\\n``). Return the bytes to send
    (what ``on_event`` would have made of those events, encoded by ``framer``), or ``None`` before
    changing any state to have the read framed and passed to ``on_event`` as usual. When it returns
    bytes it also adds the events it read and the events it sends to ``ex.events_in`` and
    ``ex.events_out``, and the usage they carry to ``ex.usage`` (it walked them; the relay counts events
    and reads usage itself only in plain and framed mode).
    Raising ends the stream like ``on_event``. A filter may say per request whether it takes reads
    (``wants_reads(ex)``).
``on_end(ex) -> list[Event]``
    After the upstream stream ended cleanly, in reverse order: flush anything held back.
``on_response(ex, obj) -> obj``
    For buffered (non-streaming) JSON bodies of recognised dialects, in reverse order. Return the
    object unchanged (the same object) to relay the original bytes.
``on_reply(ex, reply) -> None``
    Runs for every local ``Reply`` (errors included) before it is sent, e.g. to add limit headers.
``async on_done(ex) -> None``
    Always runs, once, after the response ended for any reason: success, error, client gone.

Each filter class says in its docstring whether it fails open or closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from proxy.errors import Reply
from proxy.exchange import Event, Exchange

log = logging.getLogger("distillguard.pipeline")

HOOKS = ("on_request", "on_response_headers", "on_event", "on_read", "on_end", "on_response", "on_reply", "on_done")


class Filter:
    """Optional base class; subclasses define only the hooks they need. ``name`` keys ``ex.state``."""

    name = "filter"

    async def start(self) -> None:
        """Called once when the app starts (open pools, spawn background tasks)."""

    async def stop(self) -> None:
        """Called once on shutdown."""


def _own(obj: Any, hook: str) -> Callable[..., Any] | None:
    """The hook if the filter defines it itself (not the do-nothing default)."""
    fn = getattr(obj, hook, None)
    if fn is None:
        return None
    if getattr(type(obj), hook, None) is getattr(Filter, hook, None):
        return None
    return fn


class Chain:
    """Hooks of an ordered list of filters, resolved once."""

    def __init__(self, filters: Sequence[Any]) -> None:
        self.filters = list(filters)
        rev = list(reversed(self.filters))
        self.request: list[Callable[[Exchange], Awaitable[Reply | None]]] = [
            h for f in self.filters if (h := _own(f, "on_request"))
        ]
        self.response_headers: list[Callable[[Exchange], Awaitable[Reply | None]]] = [
            h for f in rev if (h := _own(f, "on_response_headers"))
        ]
        self.event: list[Callable[[Exchange, Event], list[Event]]] = [
            h for f in rev if (h := _own(f, "on_event"))
        ]
        self.end: list[Callable[[Exchange], list[Event]]] = [h for f in rev if (h := _own(f, "on_end"))]
        # (on_event, on_end) per filter that has either, in response order.
        self._stream_stages = [
            (_own(f, "on_event"), _own(f, "on_end"))
            for f in rev
            if _own(f, "on_event") or _own(f, "on_end")
        ]
        self.response: list[Callable[[Exchange, Any], Any]] = [
            h for f in rev if (h := _own(f, "on_response"))
        ]
        self.reply: list[Callable[[Exchange, Reply], None]] = [h for f in rev if (h := _own(f, "on_reply"))]
        self.done: list[Callable[[Exchange], Awaitable[None]]] = [h for f in rev if (h := _own(f, "on_done"))]

        # Filters with an on_event hook may say per request whether they need to see its events
        # (``wants_events(ex) -> bool``); one without that method always does.
        with_events = [f for f in self.filters if _own(f, "on_event")]
        self._always_events = any(not callable(getattr(f, "wants_events", None)) for f in with_events)
        self._wants_events = [f.wants_events for f in with_events if callable(getattr(f, "wants_events", None))]
        # (wants_events or None for "always", on_read or None, wants_reads or None) per filter with on_event
        self._readers = [
            (
                w if callable(w := getattr(f, "wants_events", None)) else None,
                _own(f, "on_read"),
                r if callable(r := getattr(f, "wants_reads", None)) else None,
            )
            for f in with_events
        ]

    @property
    def transforms_events(self) -> bool:
        return bool(self.event or self.end)

    def events_for(self, ex: Exchange) -> bool:
        """Whether this exchange's stream events must go through the ``on_event`` hooks. False lets the
        relay send them as the bytes that came in (its plain mode). A ``wants_events`` that raises
        counts as True: when in doubt, the events are looked at."""
        if not self.event:
            return False
        if self._always_events:
            return True
        for wants in self._wants_events:
            try:
                if wants(ex):
                    return True
            except Exception:
                return True
        return False

    def read_hook_for(self, ex: Exchange) -> Callable[[Exchange, bytes, bytes, Any], bytes | None] | None:
        """The ``on_read`` hook of the one filter that needs this exchange's events, when it has one and
        no other filter needs them (their ``on_event`` would pass every event through): the relay then
        hands that filter whole reads, unless its ``wants_reads(ex)`` says no. None otherwise (a
        ``wants_events`` that raises counts as needing the events, a ``wants_reads`` that raises as no)."""
        found = None
        reads = None
        for wants, on_read, wants_reads in self._readers:
            if wants is not None:
                try:
                    if not wants(ex):
                        continue
                except Exception:
                    return None
            if found is not None or on_read is None:
                return None
            found, reads = on_read, wants_reads
        if reads is not None:
            try:
                return found if reads(ex) else None
            except Exception:
                return None
        return found

    async def run_request(self, ex: Exchange) -> Reply | None:
        for hook in self.request:
            reply = await hook(ex)
            if reply is not None:
                return reply
        return None

    async def run_response_headers(self, ex: Exchange) -> Reply | None:
        for hook in self.response_headers:
            reply = await hook(ex)
            if reply is not None:
                return reply
        return None

    def run_events(self, ex: Exchange, events: list[Event]) -> list[Event]:
        """Pass a batch of events through every ``on_event`` hook (reverse chain order)."""
        for hook in self.event:
            if not events:
                break
            out: list[Event] = []
            for ev in events:
                out.extend(hook(ex, ev))
            events = out
        return events

    def run_end(self, ex: Exchange) -> list[Event]:
        """Flush held-back events at stream end.

        Stage by stage in response order: what earlier stages flushed first passes this stage's
        ``on_event`` (which may hold it too), then this stage's ``on_end`` flushes what it holds.
        """
        pending: list[Event] = []
        for on_event, on_end in self._stream_stages:
            if on_event is not None and pending:
                pending = [out for ev in pending for out in on_event(ex, ev)]
            if on_end is not None:
                pending.extend(on_end(ex))
        return pending

    def run_response(self, ex: Exchange, obj: Any) -> Any:
        for hook in self.response:
            obj = hook(ex, obj)
        return obj

    def run_reply(self, ex: Exchange, reply: Reply) -> None:
        for hook in self.reply:
            try:
                hook(ex, reply)
            except Exception:  # a header decoration must never turn a reply into a crash
                log.exception("on_reply hook failed", extra={"request_id": ex.request_id})

    async def run_done(self, ex: Exchange) -> None:
        for hook in self.done:
            try:
                await hook(ex)
            except Exception:
                log.exception("on_done hook failed", extra={"request_id": ex.request_id})

    async def start(self) -> None:
        for f in self.filters:
            start = getattr(f, "start", None)
            if start is not None:
                await start()

    async def stop(self) -> None:
        for f in reversed(self.filters):
            stop = getattr(f, "stop", None)
            if stop is not None:
                try:
                    await stop()
                except Exception:
                    log.exception("filter stop failed: %s", getattr(f, "name", f))
