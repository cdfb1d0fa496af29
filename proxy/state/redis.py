"""The ``redis://`` / ``rediss://`` state backend: every ``apply`` is one EVALSHA of ``lua/apply.lua``.

One request's ops are packed into one script call (KEYS and ARGV, see the script's header), so the hot
path costs exactly one round trip and the read-modify-write is atomic on the server. The script is
loaded lazily: the first EVALSHA that meets ``NOSCRIPT`` (a fresh server, a restart, ``SCRIPT FLUSH``)
is retried once as ``EVAL`` with the body, which also puts it back in the server's script cache.

Keys. The limiter builds state keys with ``state_key``; here each gets the prefix ``{<namespace>}`` +
SEP. The braces make the namespace the Redis Cluster hash tag: one request's batch touches keys of
several scopes (account, key, ip, org...), and a script may only touch keys of one slot, so every key
of a namespace shares one slot. Hash-tagging by a request's primary scope cannot work (an ip or org
key is shared by many accounts). Cluster URLs are refused for now (see ``proxy.state``); the key
layout is ready for it, at the cost of one slot per namespace.

Time. By default (``clock="caller"``) the script uses the ``now`` the caller passes, from the injected
clock, like the memory backend: the contract suite, fake clocks and replays behave the same on both,
and the fail-open fallback shares the time base. Replicas' clocks must then agree (NTP keeps them
within milliseconds, far below any configured interval). ``clock="server"`` makes the script use the
server's ``TIME`` instead (immune to replica clock skew; absolute times such as a multiplier's
``until`` are shifted by the caller-server offset). Times are sent relative to ``TIME_BASE`` so a
double keeps sub-microsecond resolution; cells and lease sets carry a PX expiry so idle keys vanish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from proxy.state.base import (
    ACQUIRE,
    ADJUST,
    DONE,
    GCRA,
    GET_MULT,
    RELEASE,
    SEP,
    SET_MULT,
    Op,
    Result,
)
from proxy.state.resp import RespClient, RespError

TIME_BASE = 1_600_000_000  # epoch seconds; every replica must use the same base
_INF = 1e300  # the script's numbers are doubles; "inf" is not portable through tonumber


def load_script(name: str = "apply.lua") -> str:
    """A Lua script shipped as package data (``proxy/state/lua/*.lua``)."""
    return resources.files("proxy.state").joinpath("lua", name).read_text(encoding="utf-8")


async def eval_script(client: RespClient, sha: str, script: str, keys: Sequence[str], args: Sequence[Any]
                      ) -> tuple[Any, bool]:
    """EVALSHA of ``script`` (its SHA1 ``sha``); on ``NOSCRIPT`` once more as EVAL with the body, which
    also puts it back in the server's script cache. Returns (the reply, whether it had to reload)."""
    try:
        return await client.call("EVALSHA", sha, len(keys), *keys, *args), False
    except RespError as e:
        if not str(e).startswith("NOSCRIPT"):
            raise
    return await client.call("EVAL", script, len(keys), *keys, *args), True


def key_prefix(namespace: str) -> str:
    """The prefix of every Redis key of ``namespace``: ``{namespace}`` (the Cluster hash tag) + SEP."""
    if not namespace or any(c in namespace for c in "{}" + SEP):
        raise ValueError(f"state: namespace must be non-empty without '{{', '}}' or \\x1f, got {namespace!r}")
    return "{" + namespace + "}" + SEP


class RedisBackend:
    """State in Redis, shared by every process and replica using the same URL and namespace.

    ``client`` is a ``RespClient`` (built from the URL by the factory in ``proxy.state``).
    ``round_trips`` counts script calls (one per ``apply``, two when a ``NOSCRIPT`` forced a reload);
    ``reloads`` counts those reloads.
    """

    may_have_multipliers = True  # another replica may have set one: always read them

    def __init__(self, client: RespClient, *, namespace: str = "distillguard", clock: str = "caller") -> None:
        if clock not in ("caller", "server"):
            raise ValueError(f"state: clock must be 'caller' or 'server', got {clock!r}")
        self.client = client
        self.namespace = namespace
        self.prefix = key_prefix(namespace)
        self.server_time = clock == "server"
        self.script = load_script()
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()
        self.round_trips = 0
        self.reloads = 0

    def redis_key(self, key: str) -> str:
        return self.prefix + key

    # -- protocol ---------------------------------------------------------------------------------

    async def apply(self, ops: Sequence[Op], now: float, *, all_or_nothing: bool = False) -> list[Result]:
        if not ops:
            return []
        keys, args = self._pack(ops, now, all_or_nothing)
        self.round_trips += 1
        out, reloaded = await eval_script(self.client, self.sha, self.script, keys, args)
        if reloaded:
            self.reloads += 1
            self.round_trips += 1
        return [_parse(x) for x in out]

    async def sweep(self, now: float) -> int:
        """Nothing to do: every key carries its own expiry (PX at the TAT / the last lease)."""
        return 0

    async def close(self) -> None:
        await self.client.aclose()

    async def ping(self) -> bool:
        return await self.client.call("PING") == b"PONG"

    # -- packing ----------------------------------------------------------------------------------

    def _pack(self, ops: Sequence[Op], now: float, aon: bool) -> tuple[list[str], list[Any]]:
        p = self.prefix
        keys: list[str] = []
        args: list[Any] = [repr(now - TIME_BASE), "1" if self.server_time else "0", "1" if aon else "0",
                           TIME_BASE, "1", "0"]  # no rules' throttle, no block (see lua/apply.lua)
        for op in ops:
            kind = op[0]
            keys.append(p + op[1])
            if kind == GCRA:
                _, _, interval, capacity, cost, max_wait, mk, commit, required = op
                if mk:
                    keys.extend(p + k for k in mk)
                args += ("G", repr(interval), repr(capacity), repr(cost), repr(min(max_wait, _INF)),
                         "1" if commit else "0", "1" if required else "0", len(mk))
            elif kind == ACQUIRE:
                _, _, lease, limit, ttl, required = op
                args += ("L", lease, limit, repr(ttl), "1" if required else "0")
            elif kind == RELEASE:
                args += ("R", op[2])
            elif kind == ADJUST:
                _, _, interval, capacity, units = op
                args += ("A", repr(interval), repr(capacity), repr(units))
            elif kind == SET_MULT:
                _, _, factor, until, recover = op
                args += ("S", repr(factor), repr(until - TIME_BASE), repr(recover))
            elif kind == GET_MULT:
                args.append("M")
            else:
                raise TypeError(f"unknown state op {op!r}")
        return keys, args


def _parse(raw: bytes | str) -> Result:
    if not raw:
        return DONE
    ok, wait, remaining, reset, value = raw.split()
    return (ok == b"1" or ok == "1", float(wait), float(remaining), float(reset), float(value))


def redis_client(url: str, *, timeout: float = 0.25, connections: int = 1) -> RespClient:
    """The pipelining client for ``url`` (see ``proxy.state.resp``). It never retries: the fault
    layer decides what a failure means."""
    return RespClient(url, connect_timeout=timeout, stall=max(timeout, 0.5), connections=connections)
