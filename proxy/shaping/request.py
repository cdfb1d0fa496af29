"""What shaping keeps about one request (``ex.state["shape"]``): reservations to reconcile, leases
to release, limit readings for headers, stream counters for budgets and pacing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from proxy.exchange import Usage
from proxy.shaping.headers import Reading, limit_headers
from proxy.shaping.scopes import CompiledLimit

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper


@dataclass(slots=True)
class Charge:
    limit: CompiledLimit
    key: str
    charged: float  # units the backend recorded
    divisor: float  # tokens per recorded unit (throttle x multiplier)


class ShapeState:
    """What shaping knows about one request (``ex.state["shape"]``).

    The relay reads ``cut`` (stop reading the upstream: the stream was ended for its token budget)
    and awaits ``pace()`` before writing each batch of events (see ``ShapeFilter``).
    """

    __slots__ = (
        "_headers",
        "anthropic",
        "budget",
        "budget_limit",
        "charges",
        "count_stream",
        "cut",
        "done",
        "hdr_now",
        "input_estimate",
        "leases",
        "pace_due",
        "pace_interval",
        "pace_keys",
        "pending",
        "readings",
        "shaper",
        "streamed",
        "streamed_reasoning",
        "usage",
    )

    def __init__(self, shaper: Shaper) -> None:
        self.shaper = shaper
        self.charges: list[Charge] = []
        self.leases: list[str] = []
        self.readings: list[Reading] = []
        self.count_stream = False
        self.streamed = 0
        self.streamed_reasoning = 0
        self.usage: Usage | None = None  # usage seen in the response (created on first report)
        self.budget: int | None = None
        self.budget_limit = ""
        self.cut = False
        self.pace_interval = 0.0
        self.pace_due = 0.0
        self.pace_keys: list[tuple[CompiledLimit, str]] = []
        self.pending = 0
        self.done = False
        self.input_estimate = 0
        self._headers: dict[str, str] | None = None
        self.anthropic = False
        self.hdr_now = 0.0

    @property
    def headers(self) -> dict[str, str]:
        """Limit headers for this request's response, built on first use (off the decision path)."""
        if self._headers is None:
            self._headers = (
                limit_headers(self.readings, self.hdr_now, anthropic=self.anthropic) if self.readings else {}
            )
        return self._headers

    def note_usage(self, u: Usage) -> None:
        if self.usage is None:
            self.usage = Usage()
        self.usage.merge(u)

    @property
    def paced(self) -> bool:
        return self.pace_interval > 0.0 or bool(self.pace_keys)

    async def pace(self) -> float:
        """Wait as long as output pacing requires for the tokens counted since the last call."""
        return await self.shaper.pace(self)


@dataclass(slots=True)
class Verdict:
    """The outcome of ``admit``: admitted, or rejected by ``limit`` with ``retry`` seconds to wait."""

    ok: bool
    state: ShapeState
    limit: str = ""
    retry: float = 0.0
    headers: dict[str, str] | None = None
    delayed: float = 0.0


_NO_USAGE = Usage()


def is_anthropic(ex: Exchange) -> bool:
    d = ex.dialect
    return d is not None and d.name.startswith("anthropic")


def actual_usage(ex: Exchange, st: ShapeState) -> dict[str, int]:
    """Tokens this request really used, by count kind: the upstream's figures where it gave them,
    otherwise what was streamed (a stream cut short) and the input estimate."""
    u = ex.usage
    su = st.usage or _NO_USAGE
    out = _first(u.output, su.output)
    if out is None:
        out = st.streamed
    reasoning = _first(u.reasoning, su.reasoning)
    if reasoning is None:
        reasoning = st.streamed_reasoning
    inp = _first(u.input, su.input)
    if inp is None:
        # The upstream read the prompt if it answered at all.
        inp = st.input_estimate if (st.streamed or 200 <= ex.status < 400) else 0
    return {"input": inp, "output": out, "reasoning": reasoning, "total": inp + out}


def _first(*xs: int | None) -> int | None:
    for x in xs:
        if x is not None:
            return x
    return None
