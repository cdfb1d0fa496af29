"""One Redis round trip for a request's rules *and* limits: the combined script and the corrections.

When the rule state and the limits both live in Redis, the judge filter sends them in one script call
(``RedisRuleStore.fetch(req, now, limits=part)``): the script runs ``lua/rules.lua`` (window updates,
score and action reads, the writes earlier decisions queued), then ``lua/apply.lua`` on the request's
limiter ops. Between the two it derives from the entity hashes it has just read what the engine's
``collect`` would find in force on the request's action targets: the smallest throttle factor (every
GCRA cost is multiplied by 1/factor, as ``ex.controls["throttle"]`` does in memory) and whether a block
is in force (then the limiter ops are skipped: nothing is taken).

What the request *itself* decides (a throttle or block set by a rule that fires on it, or a
throttle without duration) cannot be known to the script. The shaper corrects afterwards
(``proxy.shaping.remote.settle``): an extra GCRA charge or a refund for a changed throttle; a refund
of every admission and the release of every lease for a new block. Those corrections are queued here
and ride along with the next combined call (before its limiter ops), or go in a background batch after
``flush_delay`` if no request comes: never another round trip on a request's path.

``couple`` checks that a rule store and a limits backend talk to the same Redis namespace and returns
the ``Joint`` that the judge filter uses from then on. Both sides then share one circuit breaker, so
the two never disagree about whether Redis is up (a lease taken in Redis is released in Redis).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from proxy.state.base import Op, Result
from proxy.state.redis import RedisBackend, _parse, load_script
from proxy.tasks import spawn

if TYPE_CHECKING:
    from proxy.shaping.limiter import Shaper

log = logging.getLogger("distillguard.state")

# KEYS: the rules part's keys, then the limits part's. ARGV[1] how many keys are the rules part's,
# ARGV[2] how many arguments; then the rules part's arguments and the limits part's.
_MAIN = """
local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local function slice(t, i, j)
  local s, n = {}, 0
  for x = i, j do n = n + 1; s[n] = t[x] end
  return s
end
local rout, factor, blocked = rules_part(slice(KEYS, 1, nk), slice(ARGV, 3, na + 2))
if rout.err then return rout end
local la = slice(ARGV, na + 3, #ARGV)
local rf = 1.0
if factor ~= nil and factor ~= 0 then rf = math.max(factor, 1e-6) end
la[5] = string.format('%.17g', rf)
if blocked then la[6] = '1' else la[6] = '0' end
local lout = limits_part(slice(KEYS, nk + 1, #KEYS), la)
if lout.err then return lout end
return {rout, lout, la[5], la[6]}
"""


def joint_script() -> str:
    """``rules.lua`` and ``apply.lua`` as two functions of one script, then the glue above."""
    return ("-- distillguard: one request's rules (lua/rules.lua) and limits (lua/apply.lua) in one call\n"
            "local function rules_part(KEYS, ARGV)\n" + load_script("rules.lua") + "\nend\n"
            "local function limits_part(KEYS, ARGV)\n" + load_script("apply.lua") + "\nend\n" + _MAIN)


class LimitsPart:
    """The limits half of one combined call: the ops (throttle left to the script) and, after the
    call, their results, the throttle factor the script applied and whether it found a block."""

    __slots__ = ("factor", "failed", "joint", "now", "ops", "pending", "results", "skipped")

    def __init__(self, joint: Joint, ops: list[Op], now: float) -> None:
        self.joint = joint
        self.ops = ops
        self.now = now
        self.pending: list[Op] = []  # earlier requests' corrections riding along
        self.results: list[Result] | None = None
        self.factor = 1.0
        self.skipped = False  # a block was in force: no limiter op ran
        self.failed = False  # the call failed (or the breaker is open): nothing reached Redis


class Joint:
    """A rule store and a limits backend on one Redis, coupled (see the module docstring)."""

    def __init__(self, rules: Any, limits: Any, redis: RedisBackend, shaper: Shaper, *,
                 flush_delay: float = 0.002, max_pending: int = 10_000) -> None:
        self.rules = rules
        self.limits = limits
        self.redis = redis
        self.shaper = shaper
        self.script = joint_script()
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()
        self.flush_delay = flush_delay
        self.max_pending = max_pending
        self.calls = 0  # combined calls (one per request with limits, on its path)
        self.flushes = 0  # background batches of corrections
        self.corrections = {"sent": 0, "failed": 0, "dropped": 0}
        self._pending: list[Op] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def part(self, ops: list[Op], now: float) -> LimitsPart:
        return LimitsPart(self, ops, now)

    # -- the call (made by the rule store, see ``RedisRuleStore.fetch``) -------------------------

    def pack(self, part: LimitsPart, rkeys: list[str], rargs: list[Any]) -> tuple[list[str], list[Any]]:
        """The combined call's KEYS and ARGV; the queued corrections ride along (taken here, when the
        call is really made: with the breaker open they wait for the background flush)."""
        ops = part.ops
        if self._pending:
            part.pending, self._pending = self._pending, []
            ops = part.pending + ops
        lkeys, largs = self.redis._pack(ops, part.now, True)
        self.calls += 1
        return rkeys + lkeys, [len(rkeys), len(rargs), *rargs, *largs]

    def unpack(self, part: LimitsPart, out: list[Any]) -> Any:
        """Fill ``part`` from the combined reply; returns the rules part's reply."""
        rout, lout, factor, blocked = out
        part.factor = float(factor)
        part.skipped = blocked == b"1"
        n = len(part.pending)
        part.results = [_parse(x) for x in (lout[n:] if n else lout)]
        if n:
            self.corrections["sent"] += n
            part.pending = []
        note = getattr(self.limits, "note_up", None)
        if note is not None:
            note()
        return rout

    def failed(self, part: LimitsPart) -> None:
        part.failed = True
        if part.pending:
            self.corrections["failed"] += len(part.pending)
            log.warning("state: %d limit correction(s) lost with a failed call (leases expire by TTL)",
                        len(part.pending))
            part.pending = []

    # -- corrections -----------------------------------------------------------------------------

    def defer(self, ops: Sequence[Op]) -> None:
        """Queue corrections (``adjust`` / ``release`` ops): sent with the next combined call, or
        in the background after ``flush_delay``."""
        if not ops:
            return
        if len(self._pending) + len(ops) > self.max_pending:
            self.corrections["dropped"] += len(ops)
            return
        self._pending.extend(ops)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_delay, self._kick)

    def _kick(self) -> None:
        self._timer = None
        if self._pending and self._flushing is None:
            self._flushing = spawn(self._flush_task(), "limit-corrections-flush")

    async def _flush_task(self) -> None:
        try:
            await self.flush()
        finally:
            self._flushing = None
            if self._pending and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.flush_delay, self._kick)

    async def flush(self, now: float | None = None) -> None:
        """Send the queued corrections now (on the limits backend, with its fault handling)."""
        ops, self._pending = self._pending, []
        if not ops:
            return
        self.flushes += 1
        metrics = getattr(self.rules, "metrics", None)
        if metrics is not None:
            metrics.calls.labels("corrections").inc()
        if now is None:
            now = self.shaper.clock.now()
        try:
            await self.limits.apply(ops, now)
        except Exception as e:
            self.corrections["failed"] += len(ops)
            log.warning("state: %d limit correction(s) lost: %s: %s", len(ops), type(e).__name__, e)
        else:
            self.corrections["sent"] += len(ops)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.flush()


def _redis_of(obj: Any) -> Any:
    return getattr(obj, "primary", obj)


def couple(rules: Any, shaper: Shaper) -> Joint | None:
    """The ``Joint`` of a rule store and a shaper's backend if both are Redis on the same server and
    namespace (``FaultTolerant*`` wrappers or bare); None otherwise (each keeps its own calls)."""
    from proxy.policy.store_redis import RedisRuleStore

    limits = shaper.backend
    rp, lp = _redis_of(rules), _redis_of(limits)
    if not isinstance(rp, RedisRuleStore) or not isinstance(lp, RedisBackend):
        return None
    a, b = rp.client, lp.client
    if (a.path, a.host, a.port, a.db, rp.prefix) != (b.path, b.host, b.port, b.db, lp.prefix):
        log.warning("state: rule state and limits use different Redis servers or namespaces: "
                    "two round trips per request")
        return None
    breaker = getattr(limits, "breaker", None)
    if breaker is not None and hasattr(rules, "breaker"):
        rules.breaker = breaker
    return Joint(rules, limits, lp, shaper)
