"""The embedded backend's fused fast path: plan, decide, charge and write the limit headers of a request
in one call, and settle it after the response in one more, working on ``MemoryBackend``'s dict directly.

It covers the common case only: every limit applies to the request (no ``match`` that fails, every scope
value present), every limit admits at once, no key has waiters, no rule control (throttle, pacing, a
token cut), no multiplier set for the request's account or key. Limits in shadow mode, pacing limits and
token limits that cut streams keep the whole shaper on the general path. Whenever a condition fails the
fast path undoes what it wrote and returns False: the general path (``Shaper.admit_now``/``admit``)
then decides the request from the same state, so it takes the same decision, writes the same state and
the same headers as if the fast path did not exist (``tests/shaping/test_fast.py`` checks both over
random sequences).

Each step mirrors the backend's own code (``MemoryBackend.apply_now``): the GCRA arithmetic and the
order of dict writes (the LRU order) are the same, operation by operation.
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING, Any

from proxy.shaping.headers import HeaderPlan
from proxy.shaping.request import ShapeState, actual_usage
from proxy.shaping.scopes import CONCURRENCY, REQUESTS, TOKENS, CompiledLimit, scope_getter
from proxy.state.base import SEP
from proxy.state.memory import MISSING, Leases, MemoryBackend

if TYPE_CHECKING:
    from proxy.exchange import Exchange
    from proxy.shaping.limiter import Shaper

_UNBUILT = "\x00unbuilt"
_EPS = 1e-6  # as in the memory backend: conforming a microsecond early absorbs float rounding
_ALMOST_ONE = 1.0 - 1e-9  # as in ``HeaderPlan``: the figures its cache key holds
_CACHE_MAX = 1024  # as in ``HeaderPlan``
_KEYS_MAX = 8192  # scope values whose state keys are kept (~0.2 kB each with three limits)


class FastPath:
    """The fused admission and settlement of one shaper on a ``MemoryBackend`` (see the module
    docstring). Holds compiled config only; per-request state goes into the request's ``ShapeState``."""

    __slots__ = ("_anthropic", "_by_account", "_entries", "_fields", "_keys", "_mask", "_matching",
                 "_n_scopes", "_now", "_queues", "backend", "hp", "shaper")

    def __init__(self, shaper: Shaper, backend: MemoryBackend) -> None:
        self.shaper = shaper
        self.backend = backend
        self._now = shaper._now
        limits = shaper.limits
        # per limit, what the loop reads (a tuple unpacks cheaper than attribute loads)
        self._entries = tuple(
            (cl, cl.kind, cl.interval, cl.capacity * cl.interval, cl.capacity, cl.queues, i)
            for i, cl in enumerate(limits)
        )
        self._matching = any(cl.match for cl in limits)
        self._queues = shaper.has_queues
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
        self._anthropic: dict[Any, bool] = {}

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

    # -- before the request ---------------------------------------------------------------------------

    def admit(self, ex: Exchange, st: ShapeState) -> bool:
        """Admit ``ex`` at once and write its limit headers into ``ex.reply_headers``; False (nothing
        changed, ``st`` untouched) when the general path must decide."""
        backend = self.backend
        base = backend._base
        if ex.controls or base is None:  # rule controls; or the backend's first request sets its base
            return False
        d = backend._d
        if backend.may_have_multipliers and self._has_multiplier(ex, d):
            return False
        if self._matching:
            for cl in self.shaper.limits:
                if cl.match and not cl.matches(ex):
                    return False
        fields = self._fields
        by_account = self._by_account
        if by_account:  # the usual scopes, their getters inlined
            a = ex.account
            values: Any = a.id if a is not None else None
            if by_account == 2:
                values = (values, ex.model)
        elif len(fields) == 1:
            values = fields[0](ex)
        elif len(fields) == 2:
            values = (fields[0](ex), fields[1](ex))
        else:
            values = tuple([get(ex) for get in fields])
        keys = self._keys.get(values, MISSING)
        if keys is MISSING:
            keys = self._build_keys(ex, values)
        if keys is None:  # a limit without its scope value: skipped (a different set of limits)
            return False
        now_abs = self._now()
        now = now_abs - base
        dialect = ex.dialect
        anthropic = self._anthropic.get(dialect)
        if anthropic is None:
            anthropic = self._anthropic[dialect] = dialect is not None and dialect.name.startswith("anthropic")
        max_keys = backend.max_keys
        rid = ex.request_id
        undo: list[tuple[Any, ...]] = []
        plan: list[tuple[CompiledLimit, str, float]] = []
        leases: list[tuple[CompiledLimit, str]] | None = None
        figures: list[Any] = [anthropic]  # the header cache key (``HeaderPlan.write``'s)
        tats: list[float] = []  # the new TAT of each shown limit (headers not cached yet are formatted from them)
        charges: list[tuple[CompiledLimit, str, float, float]] | None = None
        est = 0
        max_tokens: Any = _UNBUILT
        for (cl, kind, interval, span, capacity, queues, _), key in zip(self._entries, keys, strict=True):
            if queues is not None and queues.queued(key):
                return self._undo(undo)
            if kind is CONCURRENCY:
                limit = cl.max_inflight
                held = d.get(key)
                exp = now + cl.lease_ttl
                if held is None:
                    if limit < 1:
                        return self._undo(undo)
                    d[key] = held = Leases()
                    held.first_exp = exp
                    held[rid] = exp
                    undo.append((key, rid, None))
                    if len(d) > max_keys:
                        backend._evict(key)
                elif held.first_exp > now and rid not in held:
                    if len(held) >= limit:
                        return self._undo(undo)
                    del d[key]  # re-inserted at the end: the LRU order
                    d[key] = held
                    undo.append((key, rid, None))
                    if exp < held.first_exp:
                        held.first_exp = exp
                    held[rid] = exp
                else:  # an expired lease to purge, or this lease held again: the backend's own code
                    return self._undo(undo)
                plan.append((cl, key, 1.0))
                if leases is None:
                    leases = [(cl, key)]
                else:
                    leases.append((cl, key))
                continue
            if kind is REQUESTS:
                cost = raw = 1.0
            else:
                if not est:
                    est = max(1, len(ex.body) // 4)
                count = cl.count
                if count == "input":
                    raw = float(est)
                else:
                    if max_tokens is _UNBUILT:
                        max_tokens = ex.max_tokens
                    out = max_tokens or cl.reserve
                    if count == "total":
                        raw = float(est + out)
                    elif count == "output":
                        raw = float(out)
                    else:
                        raw = float(ex.view.reasoning_budget or out)
                cost = raw if raw < capacity else capacity
            old = d.pop(key, MISSING)
            tat = now if old is MISSING or old < now else old
            new_tat = tat + cost * interval
            if new_tat - span - now > _EPS:  # over the limit (an enforced limit waits for nothing)
                if tat > now:
                    d[key] = tat
                return self._undo(undo)
            undo.append((key, None, old))
            d[key] = new_tat
            if len(d) > max_keys:
                backend._evict(key)
            plan.append((cl, key, raw))
            if kind is TOKENS:
                if charges is None:
                    charges = [(cl, key, cost, 1.0)]
                else:
                    charges.append((cl, key, cost, 1.0))
            # requests and tokens limits are all shown (none is in shadow mode)
            remaining = (now + span - new_tat) / interval
            reset = new_tat - now
            tats.append(new_tat)
            if remaining >= _ALMOST_ONE:
                figures += (int(remaining + 1e-9), ceil(reset - 1e-9),
                            ceil(now_abs + reset) if anthropic else ceil(reset * 1000))
            else:  # the wait of an admitted request is 0
                figures += (0, 0, ceil(now_abs + reset) if anthropic else ceil(reset * 1000))
        # admitted by every limit (``st.now`` and ``st.mask`` serve the general path's headers only)
        st.plan = plan
        if leases is not None:
            st.leases = leases
        if charges is not None:
            st.charges = charges
            st.count_stream = True
        if est:
            st.input_estimate = est
        st.fast = True
        mask = self._mask
        if mask:
            admits = self.shaper._admits
            admits[mask] = admits.get(mask, 0) + 1
        hp = self.hp
        if hp is not None:
            if hp.cacheable:
                cached = hp._cache.get(tuple(figures))
                if cached is not None:
                    ex.reply_headers.update(cached)
                    return True
            self._headers(hp, ex.reply_headers, figures, tats, now, now_abs, anthropic)
        return True

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

    def _headers(self, hp: HeaderPlan, h: dict[str, str], figures: list[Any], tats: list[float], now: float,
                 now_abs: float, anthropic: bool) -> None:
        """``HeaderPlan.write`` (the same cache, the same key) when the figures are not cached yet."""
        results: list[Any] = [None] * len(self._entries)
        j = 0
        for _, kind, interval, span, _, _, i in self._entries:
            if kind is not CONCURRENCY:
                new_tat = tats[j]
                j += 1
                results[i] = (True, 0.0, (now + span - new_tat) / interval, new_tat - now, 1.0)
        if not hp.cacheable:
            hp.format(h, results, now_abs, anthropic)
            return
        cached: dict[str, str] = {}
        hp.format(cached, results, now_abs, anthropic)
        if len(hp._cache) >= _CACHE_MAX:
            hp._cache.clear()
        hp._cache[tuple(figures)] = cached
        h.update(cached)

    def _undo(self, undo: list[tuple[Any, ...]]) -> bool:
        if undo:
            self.backend._rollback(undo)
        return False

    def _has_multiplier(self, ex: Exchange, d: dict[str, Any]) -> bool:
        """Whether a multiplier was set for this request's account or key (then the general path
        computes its factor)."""
        for prefix, get in self.shaper._mult_prefixes:
            v = get(ex)
            if v is not None and prefix + (v if SEP not in v else v.replace(SEP, "")) in d:
                return True
        return False

    # -- after the response ---------------------------------------------------------------------------

    def finish(self, st: ShapeState, ex: Exchange) -> None:
        """``Shaper.finish_now`` for a request the fast path admitted: release its leases, reconcile
        its token reservations with the real usage (the backend's RELEASE and ADJUST, in that order)."""
        if st.done:
            return
        st.done = True
        backend = self.backend
        d = backend._d
        leases = st.leases
        if leases:
            rid = ex.request_id
            for _, key in leases:
                held = d.get(key)
                if held is not None:
                    held.pop(rid, None)
                    if not held:
                        del d[key]
        charges = st.charges
        if charges:
            u = ex.usage
            base = backend._base
            assert base is not None  # set before the fast path admitted anything
            now: float | None = None
            for cl, key, charged, divisor in charges:
                count = cl.count
                if count == "total" and u.input is not None and u.output is not None:
                    used = u.input + u.output
                else:
                    used = actual_usage(ex, st, count)
                units = used / divisor - charged
                if units > 1e-9 or units < -1e-9:
                    if now is None:
                        now = self._now() - base
                    tat = d.pop(key, MISSING)
                    if tat is MISSING or tat < now:
                        tat = now
                    tat += units * cl.interval
                    if tat > now:
                        d[key] = tat
                        if len(d) > backend.max_keys:
                            backend._evict(key)
        if self._queues:
            for cl, key in leases:
                if cl.queues is not None:
                    cl.queues.notify(key)
