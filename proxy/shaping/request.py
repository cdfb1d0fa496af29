"""What shaping keeps about one request (``ex.state["shape"]``): its plan and the backend's results
(for the limit headers), reservations to reconcile, leases to release, stream counters for budgets
and pacing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.exchange import Usage
from proxy.shaping.scopes import CompiledLimit
from proxy.state.base import Op, Result

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper
    from proxy.state.joint import LimitsPart


_NONE: list[Any] = []  # a shared empty default: never appended to (code assigns a new list)


class ShapeState:
    """What shaping knows about one request (``ex.state["shape"]``).

    The relay reads ``cut`` (stop reading the upstream: the stream was ended for its token budget)
    and ``paced``, and then awaits ``pace()`` before writing each batch of events (see ``ShapeFilter``).
    ``plan`` holds (limit, key, raw cost) per applied limit and ``results`` the backend's answer for
    each (``proxy.state.base.Result``); ``charges`` (limit, key, units recorded, tokens per unit) are
    reconciled and ``leases`` (limit, key) released by ``Shaper.finish``.

    No ``__slots__``: the class attributes are the defaults (all immutable, or never mutated in
    place), so a request sets only the few fields it uses.
    """

    ops: list[Op] | None = None  # None until planned
    results: list[Result] | None = None
    verdict: Verdict | None = None  # a rejection ``admit_now`` already decided
    now = 0.0
    mask = -1  # the set (bit mask) of limits an admitted request applied
    throttle = 1.0
    tokens: list[int] = _NONE  # positions of token limits in the plan
    charges: list[tuple[CompiledLimit, str, float, float]] = _NONE
    leases: list[tuple[CompiledLimit, str]] = _NONE
    count_stream = False
    streamed = 0
    streamed_reasoning = 0
    usage: Usage | None = None  # usage seen in the response (created on first report)
    budget: int | None = None
    budget_limit = ""
    cut = False
    paced = False
    pace_interval = 0.0
    pace_due = 0.0
    pace_keys: list[tuple[CompiledLimit, str]] = _NONE
    pending = 0
    done = False
    input_estimate = 0
    part: LimitsPart | None = None  # the ops sent with the rules in one call (``proxy.shaping.remote``)
    local = False  # that call failed: plan again and apply on the local fallback, not the store
    fast = False  # admitted by ``proxy.shaping.fast`` (settled there too)

    plan: list[tuple[CompiledLimit, str, float]] = _NONE  # set by ``Shaper._plan``

    def __init__(self, shaper: Shaper) -> None:
        self.shaper = shaper

    def note_usage(self, u: Usage) -> None:
        if self.usage is None:
            self.usage = Usage()
        self.usage.merge(u)

    async def pace(self) -> float:
        """Wait as long as output pacing requires for the tokens counted since the last call."""
        return await self.shaper.pace(self)


class FastShapeState(ShapeState):
    """The state of a request the fast path admitted (``proxy.shaping.fast``), which also settles it.
    Created without an ``__init__`` frame (a request pays for every Python call): the fast path sets
    ``shaper`` and what it took."""

    __init__ = object.__init__
    fast = True


@dataclass(slots=True)
class Verdict:
    """The outcome of ``admit``: admitted, or rejected by ``limit`` with ``retry`` seconds to wait."""

    ok: bool
    state: ShapeState
    limit: str = ""
    retry: float = 0.0
    headers: dict[str, str] | None = None
    delayed: float = 0.0


def apply_controls(controls: dict[str, Any], st: ShapeState) -> float:
    """Take the rules' controls for this request (pace, token cut) into ``st``; returns the throttle
    factor (1.0: none), by which the plan divides every request and token cost."""
    throttle = 1.0
    t = controls.get("throttle")
    if t:
        throttle = max(float(t), 1e-6)
    tps = controls.get("pace_tps")
    if tps:
        st.pace_interval = 1.0 / float(tps)
        st.paced = st.count_stream = True
    cut = controls.get("cut_tokens")
    if cut is not None:
        st.budget, st.budget_limit = int(cut), "cut_tokens"
        st.count_stream = True
    return throttle


def is_anthropic(ex: Exchange) -> bool:
    d = ex.dialect
    return d is not None and d.name.startswith("anthropic")


def actual_usage(ex: Exchange, st: ShapeState, count: str) -> int:
    """Tokens of kind ``count`` this request really used: the upstream's figures where it gave them
    (the app merges them into ``ex.usage``; ``st.usage`` is what the stream showed), otherwise what
    was streamed (a stream cut short) and the input estimate."""
    u = ex.usage
    su = st.usage
    if count == "reasoning":
        v = u.reasoning
        if v is None and su is not None:
            v = su.reasoning
        return st.streamed_reasoning if v is None else v
    inp = 0
    if count != "output":
        i = u.input
        if i is None and su is not None:
            i = su.input
        # The upstream read the prompt if it answered at all.
        inp = (st.input_estimate if (st.streamed or 200 <= ex.status < 400) else 0) if i is None else i
        if count == "input":
            return inp
    out = u.output
    if out is None and su is not None:
        out = su.output
    return inp + (st.streamed if out is None else out)
