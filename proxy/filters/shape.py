"""Rate shaping in the chain: admit, delay or reject; limit headers; stream budgets and output pacing.

Fails open on state-backend errors (``fail_open=True``, the default): a broken store must not take the
API down; ``distillguard_shape_state_errors`` counts it. Pass ``fail_open=False`` to answer 503.

Wiring for the relay (``forward.py``), per streamed batch, after ``chain.run_events``:

    st = ex.state.get("shape")
    if st is not None:
        await st.pace()          # output pacing: sleeps as long as the scope's token rate requires
        ...write the batch...
        if st.cut:               # the batch ended with the dialect's error event: stop reading upstream
            break

``on_done`` must run for every request that reached ``on_request`` (also when it was cancelled while
waiting in a delay queue): it releases concurrency leases and reconciles token reservations.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.errors import RATE_LIMITED, STATE_UNAVAILABLE, Reply
from proxy.exchange import REASONING, TEXT, TOOL, Event, Exchange
from proxy.pipeline import Filter
from proxy.shaping.headers import retry_after
from proxy.shaping.limiter import Shaper, ShapeState, multiplier_key
from proxy.shaping.metrics import ShapeMetrics
from proxy.shaping.queue import Sleep
from proxy.shaping.remote import COUPLE
from proxy.shaping.spec import LimitSpec, parse_limits
from proxy.state import MemoryBackend, StateBackend

_COUNTED = (TEXT, REASONING, TOOL)


class ShapeFilter(Filter):
    """Request-rate, token and concurrency limits with delay queues, headers and stream control.

    ``on_request`` admits, waits (fair delay queue) or returns a 429 in the caller's dialect with
    ``Retry-After`` and limit headers; the limit headers of admitted requests go into
    ``ex.reply_headers`` (the response and any later local reply carry them).
    ``on_event`` counts streamed tokens (for pacing, budgets and reconciliation of cut streams) and
    ends a stream past its token budget with the dialect's error event. ``on_done`` releases and
    reconciles. Rule actions steer it through ``ex.controls`` (``throttle``, ``pace_tps``,
    ``cut_tokens``) or persistently through ``throttle()``.
    The app calls ``on_request_now``/``on_done_now`` instead of the two coroutine hooks: the same work,
    without a coroutine when nothing has to wait (``ProxyApp.handle``).
    """

    name = "shape"

    def __init__(
        self,
        limits: Sequence[LimitSpec],
        backend: StateBackend | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
        sleep: Sleep = asyncio.sleep,
        throttle_scopes: Sequence[str] = ("account", "key"),
        fail_open: bool = True,
        sweep_interval: float = 30.0,
        fast_path: bool = True,
    ) -> None:
        self.metrics = ShapeMetrics(registry)
        if backend is None:
            backend = MemoryBackend(on_evict=self.metrics.on_evict)
        elif isinstance(backend, MemoryBackend) and backend.on_evict is None:
            backend.on_evict = self.metrics.on_evict
        self.backend = backend
        self.clock = clock
        self.shaper = Shaper(limits, backend, clock=clock, metrics=self.metrics, sleep=sleep,
                             throttle_scopes=throttle_scopes, fail_open=fail_open, fast_path=fast_path)
        self.sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None
        fast = self.shaper.fast
        if fast is not None:
            # The fused fast path is this filter's synchronous steps (no frame of ours around it): it falls
            # through to the general steps below for what it does not cover.
            fast.bind(self._request_general, self._done_general)
            self.on_request_now = fast.request_now  # type: ignore[method-assign,assignment]
            self.on_done_now = fast.done_now  # type: ignore[method-assign,assignment]

    @classmethod
    def from_config(cls, limits: Any, backend: StateBackend | None = None, **kw: Any) -> ShapeFilter:
        """Build from ``config.sections["limits"]`` (already parsed ``LimitSpec``s) or a raw ``limits:``
        list (parsed here; raises ``LimitSpecError`` listing every problem)."""
        if limits and all(isinstance(x, LimitSpec) for x in limits):
            return cls(tuple(limits), backend, **kw)
        return cls(parse_limits(limits), backend, **kw)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.sweep_interval > 0 and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="shape-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        await self.shaper.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.backend.sweep(self.clock.now())
            except Exception:
                self.metrics.state_errors.inc()

    # -- hooks ----------------------------------------------------------------------------------

    async def on_request(self, ex: Exchange) -> Reply | None:
        """Admit, delay or reject. Runs after identify (it needs the account) and the rules (their
        controls). An admitted request's limit headers go into ``ex.reply_headers`` here, so they are
        on the response before its first byte, and on any later local reply too. With rule state on
        the same Redis, the judge has already sent this request's ops with its rules (one call:
        ``proxy.shaping.remote``) and left the results in ``ex.state["shape"]``."""
        pending = self.on_request_now(ex)
        return None if pending is None else await pending

    def on_request_now(self, ex: Exchange) -> Awaitable[Reply | None] | None:
        """``on_request`` without a coroutine when the request is admitted at once (the app calls this
        first): None when it was, else the awaitable that decides (waits in a queue, or rejects).
        With a fast path (``proxy.shaping.fast``) the instance's ``on_request_now`` is its compiled
        ``request_now``, which tries the common case fused and else calls ``_request_general``."""
        return self._request_general(ex)

    def _request_general(self, ex: Exchange) -> Awaitable[Reply | None] | None:
        """``on_request_now`` on the general path."""
        st = ex.state.get("shape")
        if st is None:
            shaper = self.shaper
            st = ShapeState(shaper)
            ex.state["shape"] = st
            if shaper.admit_now(ex, st):  # the common case, without a coroutine on the embedded backend
                if st.results is not None:
                    shaper.write_headers(ex, st)
                return None
            offer = ex.state.get(COUPLE)
            if offer is not None:  # the judge before us keeps its rule state on the same Redis
                offer.couple(shaper)
        # else: the judge applied this request's limits with its rules (``proxy.shaping.remote``)
        return self._decide(ex, st)

    async def _decide(self, ex: Exchange, st: ShapeState) -> Reply | None:
        """The rest of ``on_request``: a decision that awaits the backend or a delay queue."""
        shaper = self.shaper
        v = st.verdict or await shaper.admit(ex, st)  # a plain rejection is already decided
        if v.ok:
            if v.delayed > 0:
                ex.decisions.append({"filter": "shape", "delayed_s": round(v.delayed, 3)})
                ex.waited += v.delayed
            shaper.write_headers(ex, st)
            return None
        headers = v.headers or {}
        if v.limit == "state_unavailable":
            headers.update(retry_after(v.retry))
        ex.decisions.append({"filter": "shape", "rejected": v.limit, "retry_s": round(v.retry, 3)})
        if v.limit == "state_unavailable":
            return ex.error(STATE_UNAVAILABLE, "Rate limit state is unavailable; retry shortly.",
                            headers=headers)
        return ex.error(
            RATE_LIMITED,
            f"Rate limit '{v.limit}' exceeded; retry in {max(1, math.ceil(v.retry))}s.",
            headers=headers,
        )

    def wants_events(self, ex: Exchange) -> bool:
        """Streams are counted only when a token limit, pacing or a budget applies to the request."""
        st: ShapeState | None = ex.state.get("shape")
        return st is not None and bool(st.count_stream)

    def on_event(self, ex: Exchange, event: Event) -> list[Event]:
        """Count the tokens of a streamed event; end the stream once past its budget. Cheap when the
        request has no token limit, pacing or budget (one dict lookup)."""
        st: ShapeState | None = ex.state.get("shape")
        if st is None or not st.count_stream:
            return [event]
        if st.cut:
            return []
        dialect = ex.dialect
        obj = event.obj
        if dialect is None or obj is None:
            return [event]
        n = 0
        for p in dialect.parts(obj):
            if p.kind in _COUNTED and p.text:
                k = (len(p.text) + 3) // 4
                n += k
                if p.kind == REASONING:
                    st.streamed_reasoning += k
        u = dialect.usage(obj)
        if u is not None:
            st.note_usage(u)
        st.streamed += n
        if st.paced:
            st.pending += n
        if st.budget is not None:
            seen = max(st.streamed, (st.usage.output if st.usage else None) or 0)
            if seen > st.budget:
                st.cut = True
                self.metrics.cut.labels(st.budget_limit).inc()
                ex.decisions.append({"filter": "shape", "cut": st.budget_limit, "tokens": st.budget})
                return dialect.stream_error_events(
                    RATE_LIMITED, f"Token budget of '{st.budget_limit}' exhausted mid-stream.",
                    ex.request_id, ex)
        return [event]

    async def on_done(self, ex: Exchange) -> None:
        """Always: release concurrency leases, reconcile token reservations with real usage (the
        app has merged the response's usage into ``ex.usage``, streamed or buffered)."""
        pending = self.on_done_now(ex)
        if pending is not None:
            await pending

    def on_done_now(self, ex: Exchange) -> Awaitable[None] | None:
        """``on_done`` without a coroutine on the embedded backend (the app calls this first): None
        when settled, else the awaitable that settles (a remote backend). With a fast path the
        instance's ``on_done_now`` is its compiled ``done_now``, which settles the states it admitted
        and passes the others to ``_done_general``."""
        st: ShapeState | None = ex.state.get("shape")
        if st is None:
            return None
        return self._done_general(ex, st)

    def _done_general(self, ex: Exchange, st: ShapeState) -> Awaitable[None] | None:
        """``on_done_now`` for a state the fast path did not admit."""
        if self.shaper.finish_now(st, ex):  # (settles a fast path's state too)
            return None
        return self.shaper.finish(st, ex)

    # -- for the relay and for rule actions ------------------------------------------------------

    async def pace(self, ex: Exchange) -> float:
        """Await before writing a batch of streamed events; returns the seconds waited."""
        st: ShapeState | None = ex.state.get("shape")
        return await st.pace() if st is not None else 0.0

    async def throttle(
        self, scope: str, value: str, factor: float, duration: float, recover: float = 0.0
    ) -> None:
        """Persistently scale the request and token limits of one account/key (see
        ``Shaper.set_multiplier``); ``ex.controls["throttle"]`` does the same for one request."""
        await self.shaper.set_multiplier(scope, value, factor, duration, recover)

    async def throttle_for(
        self, ex: Exchange, factor: float, duration: float, recover: float = 0.0, scope: str = "account"
    ) -> bool:
        """``throttle`` for the account (or ``scope``) of this request; False if it has none. Applies
        from the next request on (this one was already admitted: use ``ex.controls`` for it)."""
        value = dict(self.shaper.throttle_scopes)[scope](ex)
        if value is None:
            return False
        await self.shaper.set_multiplier(scope, value, factor, duration, recover)
        return True


__all__ = ["ShapeFilter", "multiplier_key"]
