"""Scopes -> state keys: the value getters (account, key, org, tier, ip, ip_prefix, model, route,
``feature:<name>``) and ``CompiledLimit``, a ``LimitSpec`` ready for the hot path."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from proxy.shaping.metrics import ShapeMetrics
from proxy.shaping.queue import DelayQueues
from proxy.shaping.spec import FEATURE_PREFIX, LimitSpec
from proxy.state.base import SEP, state_key

if TYPE_CHECKING:
    from proxy.exchange import Exchange


# --------------------------------------------------------------------------- scope values


@lru_cache(maxsize=65536)
def ip_prefix(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network of an address; the address itself if it does not parse."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 64
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def _account(ex: Exchange) -> str | None:
    a = ex.account
    return a.id if a is not None else None


def _org(ex: Exchange) -> str | None:
    a = ex.account
    org = getattr(a, "org", None) if a is not None else None
    return str(org) if org else None


def _tier(ex: Exchange) -> str | None:
    a = ex.account
    return a.tier if a is not None else None


def _model(ex: Exchange) -> str | None:
    return ex.model


def _route(ex: Exchange) -> str | None:
    r = ex.route
    name = getattr(r, "name", None) if r is not None else None
    return str(name) if name else None


SCOPE_GETTERS: dict[str, Callable[[Exchange], str | None]] = {
    "account": _account,
    "key": lambda ex: ex.key_id,
    "org": _org,
    "tier": _tier,
    "ip": lambda ex: ex.client_ip or None,
    "ip_prefix": lambda ex: ip_prefix(ex.client_ip) if ex.client_ip else None,
    "model": _model,
    "route": _route,
}


def _feature_getter(name: str) -> Callable[[Exchange], str | None]:
    def get(ex: Exchange) -> str | None:
        v = ex.features.get(name)
        return None if v is None or v == "" else str(v)

    return get


def scope_getter(scope: str) -> Callable[[Exchange], str | None]:
    if scope.startswith(FEATURE_PREFIX):
        return _feature_getter(scope[len(FEATURE_PREFIX):])
    return SCOPE_GETTERS[scope]


def multiplier_key(scope: str, value: str) -> str:
    return state_key("mult", scope, value)


def _account_suffix(ex: Exchange) -> str | None:
    a = ex.account
    if a is None:
        return None
    v = a.id
    return v if SEP not in v else v.replace(SEP, "")


def _account_model_suffix(ex: Exchange) -> str | None:
    a = ex.account
    m = ex.model
    if a is None or m is None:
        return None
    v = a.id
    if SEP in v:
        v = v.replace(SEP, "")
    if SEP in m:
        m = m.replace(SEP, "")
    return v + SEP + m


def suffix_builder(scope: tuple[str, ...]) -> Callable[[Exchange], str | None]:
    """The function giving the scope part of a state key (None when a scope value is missing: the
    limit is skipped). Specialised for the common single scopes: it runs for every limit of every
    request."""
    if scope == ("account",):
        return _account_suffix
    if scope == ("account", "model"):
        return _account_model_suffix
    getters = tuple(scope_getter(s) for s in scope)
    if len(getters) == 1:
        get = getters[0]

        def one(ex: Exchange) -> str | None:
            v = get(ex)
            return None if v is None else v if SEP not in v else v.replace(SEP, "")

        return one

    if len(getters) == 2:
        get_a, get_b = getters

        def two(ex: Exchange) -> str | None:
            a = get_a(ex)
            if a is None:
                return None
            b = get_b(ex)
            if b is None:
                return None
            if SEP in a:
                a = a.replace(SEP, "")
            if SEP in b:
                b = b.replace(SEP, "")
            return a + SEP + b

        return two

    def many(ex: Exchange) -> str | None:
        parts = []
        for g in getters:
            v = g(ex)
            if v is None:
                return None
            parts.append(v if SEP not in v else v.replace(SEP, ""))
        return SEP.join(parts)

    return many


# --------------------------------------------------------------------------- compiled limits

REQUESTS, TOKENS, CONCURRENCY, PACE = "requests", "tokens", "concurrency", "pace"


class CompiledLimit:
    """A ``LimitSpec`` with its key builder, match test, queue, pre-bound metric children and the
    fields of its state op at hand (one attribute load each on the hot path)."""

    __slots__ = (
        "bit",
        "build",
        "capacity",
        "count",
        "counts",
        "cuts",
        "interval",
        "kind",
        "lease_ttl",
        "m_cut",
        "m_delay",
        "m_delayed",
        "match",
        "max_inflight",
        "prefix",
        "queues",
        "required",
        "reserve",
        "scope",
        "shadow",
        "shadow_wait",
        "shows",
        "sid",
        "spec",
    )

    def __init__(self, spec: LimitSpec, metrics: ShapeMetrics, queues: DelayQueues | None, bit: int = 0,
                 sid: int = 0) -> None:
        self.spec = spec
        self.kind = sys.intern(spec.kind)  # compared by identity on the hot path
        self.shadow = spec.shadow
        self.required = not spec.shadow
        self.scope = spec.scope
        self.build = suffix_builder(spec.scope)
        self.prefix = state_key("lim", spec.name) + SEP
        self.match = tuple((SCOPE_GETTERS[k], vals) for k, vals in spec.match.items())
        self.queues = queues
        self.interval = spec.interval
        self.capacity = spec.capacity
        self.count = spec.count  # tokens: what is counted, and the reservation when no cap is asked
        self.reserve = spec.reserve
        # tokens: a stream past this limit's room is cut (its budget is set on admission)
        self.cuts = spec.cut_stream and not spec.shadow and spec.count != "input"
        # a shadow limit reports the delay it would impose (the backend reserves like nginx's delay)
        self.shadow_wait = spec.delay_max if spec.shadow else 0.0
        self.max_inflight = spec.max_inflight
        self.lease_ttl = spec.lease_ttl
        self.shows = not spec.shadow and spec.kind in (REQUESTS, TOKENS)  # in the limit headers
        self.bit = bit  # this limit's bit in a mask of the limits a request applied
        self.sid = sid  # index of this limit's scope among the distinct scopes of all limits
        self.counts = metrics.hot.cell(spec.name, spec.mode)  # [admitted, rejected]
        self.m_delayed = metrics.delayed.labels(spec.name)
        self.m_delay = metrics.delay.labels(spec.name)
        self.m_cut = metrics.cut.labels(spec.name)

    def matches(self, ex: Exchange) -> bool:
        for get, vals in self.match:
            if get(ex) not in vals:
                return False
        return True

    def key(self, ex: Exchange) -> str | None:
        """This request's state key, or None when the limit does not apply to it."""
        if self.match and not self.matches(ex):
            return None
        suffix = self.build(ex)
        return None if suffix is None else self.prefix + suffix
