"""Limits planned before the rules decide, sent with the rules' state call (one Redis round trip).

With rule state and limits both in Redis (``proxy.state.joint``), the judge filter calls ``prepare``
before it evaluates the rules: the request's limiter ops are planned at throttle 1 and handed to the
rule store, whose one script call applies them after the rules part, with the throttle factor and the
block found in force on the request's action targets. Once the rules have decided, the judge calls
``settle``, which leaves ``ex.state["shape"]`` as the shape filter expects it and makes up for what
the script could not know:

- the call failed (or the breaker is open): nothing reached Redis; the shape filter plans again with
  the rules' controls and applies on the local fallback (fail-open) without trying Redis again;
- a block was in force: the script took nothing; the request is refused by the judge;
- the rules blocked the request themselves (a new block): every admission is refunded and every
  lease released (queued, sent with the next call);
- the throttle the rules decided differs from the one in force (a new throttle, or one without
  duration): each GCRA charge is corrected by the difference, and the plan's costs are rewritten so
  queues, reconciliation and budgets go on with the decided throttle. The admission itself was
  decided with the throttle in force (documented in docs/redis.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proxy.shaping.request import ShapeState, apply_controls
from proxy.state.base import ACQUIRE, COST, GCRA, Op, Result, adjust, release

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper
    from proxy.state.joint import Joint

COUPLE = "couple"  # ex.state key: a judge filter whose remote rule state could carry our ops (see judge)


def prepare(shaper: Shaper, joint: Joint, ex: Exchange) -> ShapeState | None:
    """Plan this request's limiter ops for the combined call (``st.part``); ``ex.state["shape"]`` is
    set. None when the shape filter must do it itself afterwards (a key already has waiters)."""
    st = ShapeState(shaper)
    ops = shaper._plan(ex, st, rules_pending=True)
    if ops and shaper.has_queues and shaper._queued(st):
        return None  # newcomers queue behind waiters (round-robin): the shape filter's own path
    ex.state["shape"] = st
    if ops:
        st.now = shaper.clock.now()
        st.part = joint.part(ops, st.now)
    return st


def _committed(ops: list[Op], results: list[Result]) -> list[int]:
    """Ops whose writes stayed (all or nothing over the required ones; shadow ones on their own)."""
    all_ok = True
    for op, r in zip(ops, results, strict=True):
        if not r[0] and (op[8] if op[0] == GCRA else op[5]):
            all_ok = False
            break
    out = []
    for i, (op, r) in enumerate(zip(ops, results, strict=True)):
        if not r[0]:
            continue
        if op[0] == GCRA:
            if op[7] and (all_ok or not op[8]):
                out.append(i)
        elif op[0] == ACQUIRE and (all_ok or not op[5]):
            out.append(i)
    return out


def _units(op: Op, factor: float, r: Result) -> float:
    """The units a GCRA op of the plan (cost at throttle 1) took at throttle ``factor`` (as the script
    computes them: cost x 1/factor, then / the multiplier it found)."""
    return op[COST] * (1.0 / factor) / r[4]


def settle(ex: Exchange, st: ShapeState, blocked: bool) -> None:
    """After the rules decided (``blocked``: the judge refuses the request); see the module docstring."""
    shaper = st.shaper
    part = st.part
    st.part = None
    if part is None:  # no limiter op applies
        if blocked:
            st.done = True
        elif ex.controls:
            st.throttle = apply_controls(ex.controls, st)
        return
    results = part.results
    if results is None or (part.skipped and not blocked):
        # Nothing was taken: the call failed (plan again locally), or it found a block the rules did
        # not (not expected: both read the same state): plan again on the store.
        if blocked:
            st.done = True
            return
        fresh = ShapeState(shaper)
        fresh.local = part.failed
        ex.state["shape"] = fresh
        return
    if part.skipped:  # a block in force: the script took nothing
        st.done = True
        return
    ops = st.ops
    assert ops is not None
    joint = part.joint
    factor = part.factor
    committed = _committed(ops, results)
    if blocked:  # a block the request itself decided: give back everything it took
        undo = []
        for i in committed:
            op = ops[i]
            if op[0] == GCRA:
                undo.append(adjust(op[1], op[2], op[3], -_units(op, factor, results[i])))
            else:
                undo.append(release(op[1], op[2]))
        joint.defer(undo)
        st.done = True
        return
    throttle = apply_controls(ex.controls, st) if ex.controls else 1.0
    if throttle != 1.0 or factor != 1.0:
        fix = []
        done = set(committed)
        cost = 1.0 / throttle
        for i, op in enumerate(ops):
            if op[0] != GCRA:
                continue
            if throttle != factor and i in done:
                r = results[i]
                delta = op[COST] * cost / r[4] - _units(op, factor, r)
                if delta > 1e-12 or delta < -1e-12:
                    fix.append(adjust(op[1], op[2], op[3], delta))
            ops[i] = (*op[:COST], op[COST] * cost, *op[COST + 1:])
        joint.defer(fix)
    st.throttle = throttle
    st.now = part.now
    st.results = results
    if shaper.has_shadow:
        shaper.count_shadow(st.plan, results)
