"""The narrow async state protocol behind rate shaping.

Every read-modify-write the limiter needs is an *op* (a small tuple). A request's ops go to the
backend in **one** ``apply`` call, so a Redis backend can run them as one Lua script (one EVALSHA in
one pipelined round trip) and the memory backend as one synchronous function. Kinds:

``gcra``        check-and-update of a generic cell rate (one float, the theoretical arrival time, TAT).
                Serves request rates (cost 1) and token windows (cost = reserved tokens).
``adjust``      add or refund units on a GCRA cell (token reconciliation after the response).
``acquire``     take a concurrency lease (an id with a TTL, so a crashed replica's leases expire).
``release``     give a lease back.
``set_multiplier`` / ``get_multiplier``  a per-scope throttle factor with an expiry and a linear recovery.

A backend whose ``apply`` never awaits (the embedded one) also offers it synchronously as
``apply_now(ops, now, all_or_nothing=...)``: the limiter then decides without a coroutine.

Time is passed in (``now``, seconds): the caller owns the clock. A Redis backend may substitute the
server's ``TIME`` to stay consistent across replicas.

Redis mapping (for the ``redis://`` backend): one EVALSHA per ``apply`` with the ops packed into
KEYS/ARGV and dispatched by kind inside the script; time from ``redis.call('TIME')``. A GCRA cell is
a string TAT with ``PEXPIREAT`` at the TAT (idle keys vanish by themselves); leases are a ZSET
lease -> expiry trimmed with ``ZREMRANGEBYSCORE`` before ``ZCARD``; a multiplier is a small hash
with ``PEXPIREAT`` at ``until + recover``. ``all_or_nothing``: compute every required op, then write.

Batch semantics: ops run in order. With ``all_or_nothing=True`` the *required* ops are written only if
every required ``gcra``/``acquire`` in the batch succeeds (Lua: compute first, then write); ops with
``required=False`` (shadow limits) always run and commit on their own outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

SEP = "\x1f"  # cannot occur inside a key part (removed if present)


def state_key(*parts: str) -> str:
    """The one function that builds state keys: parts joined by a separator no part may contain."""
    return SEP.join(p.replace(SEP, "") if SEP in p else p for p in parts)


# Ops and results are plain tuples: a request builds a few of them on the hot path, and a tuple costs a
# fifth of a slotted object. The first item of an op is its kind letter (the same letters as in
# ``lua/apply.lua``); build ops with the functions below, read results with the index constants.
GCRA, ADJUST, ACQUIRE, RELEASE, SET_MULT, GET_MULT = "G", "A", "L", "R", "S", "M"

Op = tuple[Any, ...]
"""One state op: ``(kind, key, *fields)``; see the constructor functions for each kind's fields."""

Result = tuple[bool, float, float, float, float]
"""``(ok, wait, remaining, reset, value)``. ``ok``: admitted / acquired. ``wait``: delay to honour
(admitted) or seconds until it would conform (rejected). ``remaining``: units left in the bucket after
this op (GCRA) or free leases. ``reset``: seconds until the bucket is full again. ``value``: the
multiplier factor applied (GCRA) or read (``get_multiplier``)."""

OK, WAIT, REMAINING, RESET, VALUE = range(5)
KEY, INTERVAL, CAPACITY, COST = 1, 2, 3, 4  # fields of a gcra op (the key is item 1 of every op)
DONE: Result = (True, 0.0, 0.0, 0.0, 1.0)  # the result of ops that report nothing


def gcra(
    key: str, interval: float, capacity: float, cost: float = 1.0, max_wait: float = 0.0,
    mult_keys: tuple[str, ...] = (), commit: bool = True, required: bool = True,
) -> Op:
    """Admit ``cost`` units on ``key`` at one unit per ``interval`` seconds with a bucket of ``capacity``.

    Conforms now if the bucket has room; otherwise, if the wait until it has room is at most
    ``max_wait``, the slot is reserved and the result carries that ``wait`` (nginx ``limit_req`` delay);
    otherwise rejected with ``wait`` = seconds until it would conform. ``mult_keys`` name throttle
    multipliers read atomically with the check: the cost is divided by the smallest active factor.
    ``commit=False`` only peeks. The result's ``value`` is the multiplier factor applied.
    """
    return (GCRA, key, interval, capacity, cost, max_wait, mult_keys, commit, required)


def adjust(key: str, interval: float, capacity: float, units: float) -> Op:
    """Add (``units`` > 0) or refund (``units`` < 0) units on a GCRA cell without a check."""
    return (ADJUST, key, interval, capacity, units)


def acquire(key: str, lease: str, limit: int, ttl: float, required: bool = True) -> Op:
    """Take lease ``lease`` on ``key`` if fewer than ``limit`` unexpired leases are held (holding it
    already counts as success and renews it)."""
    return (ACQUIRE, key, lease, limit, ttl, required)


def release(key: str, lease: str) -> Op:
    """Give lease ``lease`` on ``key`` back (a lease not held is ignored)."""
    return (RELEASE, key, lease)


def set_multiplier(key: str, factor: float, until: float, recover: float = 0.0) -> Op:
    """Set a throttle factor (0 < factor) on ``key`` until ``until``, then recover linearly to 1.0
    by ``until + recover`` (``recover`` = 0: back to 1.0 at once)."""
    return (SET_MULT, key, factor, until, recover)


def get_multiplier(key: str) -> Op:
    """Read the factor in force on ``key`` (1.0 when none) into the result's ``value``."""
    return (GET_MULT, key)


class StateBackend(Protocol):
    """What the limiter needs from a store. Implementations: ``memory://`` (embedded), later ``redis://``."""

    async def apply(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        """Run ``ops`` atomically, in order, in one round trip; one ``Result`` per op."""
        ...

    async def sweep(self, now: float) -> int:
        """Drop idle state (expired cells, leases, multipliers); returns how many keys were dropped."""
        ...

    async def close(self) -> None: ...


def multiplier_at(factor: float, until: float, recover: float, now: float) -> float:
    """The factor in force at ``now``: ``factor`` until ``until``, then a linear ramp back to 1.0."""
    if now < until:
        return factor
    if recover <= 0.0 or now >= until + recover:
        return 1.0
    return factor + (1.0 - factor) * ((now - until) / recover)
