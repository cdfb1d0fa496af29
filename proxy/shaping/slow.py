"""The slow path of admission: some limit said no (or its key already has waiters).

Each blocking limit that may delay puts the request in its key's fair queue (``queue.DelayQueues``),
which takes the limit's op for it when its turn comes: a request-rate slot, a token reservation (only
when the wait for it is computable and within ``delay.max``) or a concurrency lease (when a slot is
freed, within ``delay.max``). Once every queue admitted the request, the other limits are taken all
or nothing; if one of them says no, or the request is cancelled (client gone), what the queues took
is given back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from proxy.shaping.queue import FAILED_OPEN, undo_op
from proxy.shaping.request import ShapeState, Verdict
from proxy.state.base import COST, GCRA, INTERVAL, WAIT, Result

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper

log = logging.getLogger("distillguard.shaping")


async def over_limit(
    shaper: Shaper, ex: Exchange, st: ShapeState, results: list[Result], blocking: list[int],
    *, fresh: bool = False,
) -> Verdict:
    """Queue where the limits allow, then take the others; ``results`` holds the answer of every op
    (``fresh``: nothing was applied yet, shadow limits included, so they are applied with the rest)."""
    plan = st.plan
    ops = st.ops
    assert ops is not None
    flow = ex.account_id or ex.key_id or ex.client_ip or "-"
    waits: list[int] = []
    for i in blocking:
        cl, key, _ = plan[i]
        q = cl.queues
        op = ops[i]
        if q is None:
            return shaper.reject(ex, st, results, i)
        if op[0] == GCRA:
            if q.estimate(op, flow, results[i][WAIT]) > cl.spec.delay_max:
                return shaper.reject(ex, st, results, i)
        elif not q.has_room(key, flow):
            return shaper.reject(ex, st, results, i)
        waits.append(i)
    clock = shaper.clock
    t0 = now = clock.now()
    taken = []
    try:
        for i in waits:
            q = plan[i][0].queues
            assert q is not None
            got = await q.wait(ops[i], flow, results[i][WAIT] if ops[i][0] == GCRA else 0.0)
            if got is None:
                op = ops[i]
                retry = op[INTERVAL] * op[COST] if op[0] == GCRA else 1.0
                results[i] = (False, retry, 0.0, retry, 1.0)
                return shaper.reject(ex, st, results, i)
            if got is not FAILED_OPEN:
                taken.append(ops[i])
            results[i] = got
        # Every queue admitted us (each took its op); now take the others, all or nothing.
        rest = [j for j, (cl, _, _) in enumerate(plan) if j not in waits and (fresh or not cl.shadow)]
        now = clock.now()
        if rest:
            try:
                again = await shaper.backend.apply([ops[j] for j in rest], now, all_or_nothing=True)
            except Exception:
                return shaper.state_failed(st)
            for j, r in zip(rest, again, strict=True):
                results[j] = r
            if fresh and shaper.has_shadow:
                shaper.count_shadow(plan, results)
            bad = [j for j in rest if not results[j][0] and not plan[j][0].shadow]
            if bad:
                return shaper.reject(ex, st, results, bad[0])
        taken.clear()
    finally:
        if taken:  # rejected or cancelled after some queue gave us its op: give it back
            try:
                await shaper.backend.apply([undo_op(o) for o in taken], clock.now())
            except Exception:
                log.exception("state backend failed while giving back a queue slot")
    waited = now - t0
    for i in waits:
        cl = plan[i][0]
        cl.m_delayed.inc()
        cl.m_delay.observe(waited)
    st.results = results
    st.now = now
    shaper.admitted(st, results)
    return Verdict(True, st, delayed=waited)
