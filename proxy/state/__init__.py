"""State backends, chosen by URL (``memory://``; ``redis://host:6379/0`` once that backend lands)."""

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


# scheme -> factory(url, **options). The Redis backend registers "redis" and "rediss" here.
BACKENDS: dict[str, Callable[..., StateBackend]] = {
    "memory": _memory,
}


def backend_from_url(url: str, **kw: Any) -> StateBackend:
    """Build the backend for ``url`` (e.g. ``memory://?max_keys=500000``); options go to its factory."""
    scheme = urlsplit(url).scheme
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(f"{s}://" for s in BACKENDS))
        raise ValueError(f"state: unknown backend URL scheme {scheme!r} in {url!r} (known: {known})")
    return factory(url, **kw)


__all__ = ["BACKENDS", "MemoryBackend", "StateBackend", "backend_from_url", "state_key"]
