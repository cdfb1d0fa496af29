"""The narrow async state protocol behind rate shaping.

Every read-modify-write the limiter needs is an *op* (a small slotted record). A request's ops go to
the backend in **one** ``apply`` call, so a Redis backend can run them as one Lua script (one EVALSHA in
one pipelined round trip) and the memory backend as one synchronous function. Kinds:

``Gcra``        check-and-update of a generic cell rate (one float, the theoretical arrival time, TAT).
                Serves request rates (cost 1) and token windows (cost = reserved tokens).
``Adjust``      add or refund units on a GCRA cell (token reconciliation after the response).
``Acquire``     take a concurrency lease (an id with a TTL, so a crashed replica's leases expire).
``Release``     give a lease back.
``SetMultiplier`` / ``GetMultiplier``  a per-scope throttle factor with an expiry and a linear recovery.

Time is passed in (``now``, seconds): the caller owns the clock. A Redis backend may substitute the
server's ``TIME`` to stay consistent across replicas.

Redis mapping (for the ``redis://`` backend): one EVALSHA per ``apply`` with the ops packed into
KEYS/ARGV and dispatched by kind inside the script; time from ``redis.call('TIME')``. A GCRA cell is
a string TAT with ``PEXPIREAT`` at the TAT (idle keys vanish by themselves); leases are a ZSET
lease -> expiry trimmed with ``ZREMRANGEBYSCORE`` before ``ZCARD``; a multiplier is a small hash
with ``PEXPIREAT`` at ``until + recover``. ``all_or_nothing``: compute every required op, then write.

Batch semantics: ops run in order. With ``all_or_nothing=True`` the *required* ops are written only if
every required ``Gcra``/``Acquire`` in the batch succeeds (Lua: compute first, then write); ops with
``required=False`` (shadow limits) always run and commit on their own outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

SEP = "\x1f"  # cannot occur inside a key part (removed if present)


def state_key(*parts: str) -> str:
    """The one function that builds state keys: parts joined by a separator no part may contain."""
    return SEP.join(p.replace(SEP, "") if SEP in p else p for p in parts)


@dataclass(slots=True)
class Gcra:
    """Admit ``cost`` units on ``key`` at one unit per ``interval`` seconds with a bucket of ``capacity``.

    Conforms now if the bucket has room; otherwise, if the wait until it has room is at most
    ``max_wait``, the slot is reserved and the result carries that ``wait`` (nginx ``limit_req`` delay);
    otherwise rejected with ``wait`` = seconds until it would conform. ``mult_keys`` name throttle
    multipliers read atomically with the check: the cost is divided by the smallest active factor.
    ``commit=False`` only peeks. ``Result.value`` is the multiplier factor applied.
    """

    key: str
    interval: float
    capacity: float
    cost: float = 1.0
    max_wait: float = 0.0
    mult_keys: tuple[str, ...] = ()
    commit: bool = True
    required: bool = True


@dataclass(slots=True)
class Adjust:
    """Add (``units`` > 0) or refund (``units`` < 0) units on a GCRA cell without a check."""

    key: str
    interval: float
    capacity: float
    units: float


@dataclass(slots=True)
class Acquire:
    """Take lease ``lease`` on ``key`` if fewer than ``limit`` unexpired leases are held."""

    key: str
    lease: str
    limit: int
    ttl: float
    required: bool = True


@dataclass(slots=True)
class Release:
    key: str
    lease: str


@dataclass(slots=True)
class SetMultiplier:
    """Set a throttle factor (0 < factor) on ``key`` until ``until``, then recover linearly to 1.0
    by ``until + recover`` (``recover`` = 0: back to 1.0 at once)."""

    key: str
    factor: float
    until: float
    recover: float = 0.0


@dataclass(slots=True)
class GetMultiplier:
    key: str


@dataclass(slots=True)
class Result:
    """Outcome of one op. ``ok``: admitted / acquired. ``wait``: delay to honour (admitted) or seconds
    until it would conform (rejected). ``remaining``: units left in the bucket after this op (GCRA) or
    free leases. ``reset``: seconds until the bucket is full again. ``value``: multiplier factor."""

    ok: bool = True
    wait: float = 0.0
    remaining: float = 0.0
    reset: float = 0.0
    value: float = 1.0


Op = Gcra | Adjust | Acquire | Release | SetMultiplier | GetMultiplier


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
