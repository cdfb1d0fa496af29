"""Scopes -> state keys: the value getters (account, key, org, tier, ip, ip_prefix, model, route,
``feature:<name>``) and ``CompiledLimit``, a ``LimitSpec`` ready for the hot path."""

from __future__ import annotations

import ipaddress
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


# --------------------------------------------------------------------------- compiled limits


class CompiledLimit:
    """A ``LimitSpec`` with its key builder, match test, queue and pre-bound metric children."""

    __slots__ = (
        "counts",
        "getters",
        "kind",
        "m_cut",
        "m_delay",
        "m_delayed",
        "match",
        "prefix",
        "queues",
        "shadow",
        "spec",
    )

    def __init__(self, spec: LimitSpec, metrics: ShapeMetrics, queues: DelayQueues | None) -> None:
        self.spec = spec
        self.kind = spec.kind
        self.shadow = spec.shadow
        self.getters = tuple(scope_getter(s) for s in spec.scope)
        self.prefix = state_key("lim", spec.name) + SEP
        self.match = tuple((SCOPE_GETTERS[k], vals) for k, vals in spec.match.items())
        self.queues = queues
        self.counts = metrics.hot.cell(spec.name, spec.mode)  # [admitted, rejected]
        self.m_delayed = metrics.delayed.labels(spec.name)
        self.m_delay = metrics.delay.labels(spec.name)
        self.m_cut = metrics.cut.labels(spec.name)

    def matches(self, ex: Exchange) -> bool:
        for get, vals in self.match:
            if get(ex) not in vals:
                return False
        return True

    def suffix(self, ex: Exchange) -> str | None:
        """The scope part of the state key, or None when a scope value is missing (limit skipped)."""
        if len(self.getters) == 1:
            v = self.getters[0](ex)
            if v is None:
                return None
            return v.replace(SEP, "") if SEP in v else v
        parts = []
        for get in self.getters:
            v = get(ex)
            if v is None:
                return None
            parts.append(v.replace(SEP, "") if SEP in v else v)
        return SEP.join(parts)

    def key(self, ex: Exchange) -> str | None:
        """This request's state key, or None when the limit does not apply to it."""
        if self.match and not self.matches(ex):
            return None
        suffix = self.suffix(ex)
        return None if suffix is None else self.prefix + suffix
