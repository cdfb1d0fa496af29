"""The embedded backend's fused fast path: plan, decide, charge and write the limit headers of a request
in one call, and settle it after the response in one more, working on ``MemoryBackend``'s dict directly.

It covers the common case only: every limit applies to the request (no ``match`` that fails, every scope
value present), every limit admits at once, no key has waiters, no new key makes the backend evict, no
rule control (throttle, pacing, a token cut), no multiplier set for the request's account or key. Limits
in shadow mode, pacing limits and token limits that cut streams keep the whole shaper on the general
path. Whenever a condition fails the fast path returns False before writing anything: the general path
(``Shaper.admit_now``/``admit``) then decides the request from the same state, so it takes the same
decision, writes the same state and the same headers as if the fast path did not exist
(``tests/shaping/test_fast.py`` checks both over random sequences).

Each step mirrors the backend's own code (``MemoryBackend.apply_now``): the GCRA arithmetic and the
order of dict writes (the LRU order) are the same, operation by operation. ``admit`` and ``finish`` are
compiled for the shaper's limits (``proxy.shaping.fastcode``).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from proxy.shaping.fastcode import compile_fast
from proxy.shaping.headers import HeaderPlan
from proxy.shaping.request import ShapeState
from proxy.shaping.scopes import CONCURRENCY, scope_getter
from proxy.state.base import SEP
from proxy.state.memory import MemoryBackend

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper

_UNBUILT = "\x00unbuilt"
_CACHE_MAX = 1024  # as in ``HeaderPlan``
_KEYS_MAX = 8192  # scope values whose state keys are kept (~0.2 kB each with three limits)


class FastPath:
    """The fused admission and settlement of one shaper on a ``MemoryBackend`` (see the module
    docstring). Holds compiled config only; per-request state goes into the request's ``ShapeState``."""

    __slots__ = ("_by_account", "_dialects", "_entries", "_fields", "_keys", "_mask", "_n_scopes", "_now", "_ns",
                 "admit", "admits", "backend", "done_now", "finish", "hp", "request_now", "shaper", "source")

    admit: Callable[[Exchange], bool]
    finish: Callable[[ShapeState, Exchange], None]
    request_now: Callable[[Exchange], Awaitable[Any] | None]
    done_now: Callable[[Exchange], Awaitable[None] | None]

    def __init__(self, shaper: Shaper, backend: MemoryBackend) -> None:
        self.shaper = shaper
        self.backend = backend
        self._now = shaper._now
        limits = shaper.limits
        # per limit, what ``_headers`` reads
        self._entries = tuple((cl.kind, cl.interval, cl.capacity * cl.interval) for cl in limits)
        # The state keys of a request are a function of the values of the scope fields the limits use:
        # cached by those values (the key strings are then reused, their hashes computed once).
        fields: list[str] = []
        for cl in limits:
            fields.extend(f for f in cl.scope if f not in fields)
        self._fields = tuple(scope_getter(f) for f in fields)
        self._by_account = {("account",): 1, ("account", "model"): 2}.get(tuple(fields), 0)
        # only tuples of strings: untracked by the garbage collector (a cache of containers would make
        # its collections scan them all, costly with many active keys)
        self._keys: dict[Any, tuple[str, ...] | None] = {}
        self._n_scopes = 1 + max(cl.sid for cl in limits) if limits else 0
        shown = [(cl.spec, i) for i, cl in enumerate(limits) if cl.shows]
        self.hp = HeaderPlan(shown) if shown else None
        shaper._header_plans[shaper._all_mask] = self.hp  # one plan (and cache) for both paths
        self._mask = shaper._all_mask & shaper._enforced
        # admissions by this fast path (all with ``_mask``), one int cell: cheaper than a dict by mask
        self.admits = shaper.metrics.hot.mask_cell(self._mask, [(cl.spec.name, cl.spec.mode) for cl in limits])
        self._dialects: dict[Any, Any] = {}  # ``proxy.shaping.reads.DialectInfo`` by dialect object
        self.source, ns = compile_fast(self)
        exec(compile(self.source, f"<shaping fast path {sorted(cl.spec.name for cl in limits)}>", "exec"), ns)
        self._ns = ns
        self.admit = ns["admit"]
        self.finish = ns["finish"]
        self.request_now = ns["request_now"]
        self.done_now = ns["done_now"]

    def bind(self, slow: Callable[[Exchange], Awaitable[Any] | None],
             slow_done: Callable[[Exchange, ShapeState], Awaitable[None] | None]) -> None:
        """Give ``request_now`` and ``done_now`` the general steps they fall through to: ``slow(ex)`` for a
        request the fast path does not admit, ``slow_done(ex, st)`` for a state it did not admit."""
        self._ns["slow"] = slow
        self._ns["slow_done"] = slow_done

    @classmethod
    def build(cls, shaper: Shaper) -> FastPath | None:
        """The fast path of ``shaper``, or None when its backend or limits always need the general path."""
        backend = shaper.backend
        if (
            type(backend) is not MemoryBackend  # exactly: a subclass may change what ``apply`` does
            or not shaper.limits
            or shaper.has_shadow
            or shaper.pace_limits
            or any(cl.cuts for cl in shaper.limits)
        ):
            return None
        return cls(shaper, backend)

    # ``admit(ex) -> bool`` (before the request): admit ``ex`` at once, store its state (a ``FastShapeState``)
    # in ``ex.state["shape"]`` and write its limit headers into ``ex.reply_headers``; False (nothing changed)
    # when the general path must decide. ``request_now(ex)``: the same, returning None when admitted, else
    # what ``slow(ex)`` returns.
    # ``finish(st, ex)`` (after the response): ``Shaper.finish_now`` for a request the fast path admitted:
    # release its leases, reconcile its token reservations with the real usage (the backend's RELEASE and
    # ADJUST, in that order). ``done_now(ex)``: the same for ``ex.state["shape"]``, or ``slow_done(ex, st)``
    # for a state the general path admitted. All are compiled for the limits (``proxy.shaping.fastcode``).

    def _build_keys(self, ex: Exchange, values: Any) -> tuple[str, ...] | None:
        """The state keys of every limit for these scope values (None: a limit does not apply), kept
        for the next request with the same values (all dropped once there are ``_KEYS_MAX``)."""
        keys = []
        out: tuple[str, ...] | None = None
        suffixes: list[str | None] = [_UNBUILT] * self._n_scopes  # limits sharing a scope build it once
        for cl in self.shaper.limits:
            suffix = suffixes[cl.sid]
            if suffix is _UNBUILT:
                suffix = suffixes[cl.sid] = cl.build(ex)
            if suffix is None:
                break
            keys.append(cl.prefix + suffix)
        else:
            out = tuple(keys)
        cache = self._keys
        if len(cache) >= _KEYS_MAX:
            cache.clear()
        cache[values] = out
        return out

    def _headers(self, key: tuple[Any, ...] | None, tats: tuple[float, ...], now: float, now_abs: float,
                 anthropic: bool) -> dict[str, str]:
        """``HeaderPlan.write`` (the same cache, the same key) when the figures are not cached yet (``key``
        None: the plan cannot cache); ``tats`` holds the new TAT of each shown limit, in order."""
        hp = self.hp
        assert hp is not None
        results: list[Any] = [None] * len(self._entries)
        j = 0
        for i, (kind, interval, span) in enumerate(self._entries):
            if kind is not CONCURRENCY:
                new_tat = tats[j]
                j += 1
                results[i] = (True, 0.0, (now + span - new_tat) / interval, new_tat - now, 1.0)
        out: dict[str, str] = {}
        hp.format(out, results, now_abs, anthropic)
        if key is not None:
            if len(hp._cache) >= _CACHE_MAX:
                hp._cache.clear()
            hp._cache[key] = out
        return out

    def _has_multiplier(self, ex: Exchange, d: dict[str, Any]) -> bool:
        """Whether a multiplier was set for this request's account or key (then the general path
        computes its factor)."""
        for prefix, get in self.shaper._mult_prefixes:
            v = get(ex)
            if v is not None and prefix + (v if SEP not in v else v.replace(SEP, "")) in d:
                return True
        return False
