"""State backends, chosen by URL: ``memory://`` (embedded) or ``redis://host:6379/0`` / ``rediss://``.

Redis Cluster and Sentinel URLs are refused with a message saying so: the Lua batch needs all of a
request's keys on one server (they share the hash tag ``{namespace}``, see ``proxy.state.redis``),
and the client wiring for Cluster/Sentinel is not written yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from proxy.state.base import StateBackend, state_key
from proxy.state.memory import MemoryBackend


def _memory(url: str, **kw: Any) -> StateBackend:
    q = parse_qs(urlsplit(url).query)
    if "max_keys" in q:
        kw.setdefault("max_keys", int(q["max_keys"][0]))
    return MemoryBackend(**kw)


def _redis(url: str, *, namespace: str = "distillguard", clock: str = "caller", timeout: float = 0.25,
           connections: int = 1) -> StateBackend:
    """``redis://[:password@]host[:port][/db]`` or ``rediss://`` (TLS). Options come from the
    ``state:`` config section, not the URL (the URL's own query goes to redis-py)."""
    from proxy.state.redis import RedisBackend, redis_client

    return RedisBackend(redis_client(url, timeout=timeout, connections=connections),
                        namespace=namespace, clock=clock)


def _unsupported(what: str) -> Callable[..., StateBackend]:
    def refuse(url: str, **kw: Any) -> StateBackend:
        raise ValueError(
            f"state: {what} is not supported yet ({redact_url(url)}); use one redis:// or rediss:// "
            "primary (a managed failover endpoint works). Every key of a request's batch shares one "
            "hash tag, so the layout is Cluster-ready, but the Cluster/Sentinel clients are not wired.")

    return refuse


# scheme -> factory(url, **options)
BACKENDS: dict[str, Callable[..., StateBackend]] = {
    "memory": _memory,
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "redis+cluster": _unsupported("Redis Cluster"),
    "rediss+cluster": _unsupported("Redis Cluster"),
    "redis-cluster": _unsupported("Redis Cluster"),
    "redis+sentinel": _unsupported("Redis Sentinel"),
    "rediss+sentinel": _unsupported("Redis Sentinel"),
    "redis-sentinel": _unsupported("Redis Sentinel"),
    "sentinel": _unsupported("Redis Sentinel"),
}
REMOTE_SCHEMES = ("redis", "rediss", "unix")


def redact_url(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def backend_from_url(url: str, **kw: Any) -> StateBackend:
    """Build the backend for ``url`` (e.g. ``memory://?max_keys=500000``); options go to its factory."""
    scheme = urlsplit(url).scheme
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(f"{s}://" for s in BACKENDS if "+" not in s and "-" not in s
                                 and s != "sentinel"))
        raise ValueError(
            f"state: unknown backend URL scheme {scheme!r} in {redact_url(url)!r} (known: {known})")
    return factory(url, **kw)


__all__ = ["BACKENDS", "MemoryBackend", "StateBackend", "backend_from_url", "redact_url", "state_key"]
