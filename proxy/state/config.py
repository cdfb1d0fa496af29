"""The ``state:`` config section (where shared state lives, what happens when it is unreachable) and
the helpers that turn it into a backend for the shape filter.

```yaml
state:
  url: redis://redis.internal:6379/0   # memory:// (default, per process) | redis:// | rediss:// | unix://
  namespace: distillguard              # key prefix and Redis Cluster hash tag; one per deployment
  on_failure: open                     # open: local in-memory limits, loudly | closed: 503 state_unavailable
  timeout: 250ms                       # per state call; a dead store adds at most this to a request
  clock: caller                        # caller: the proxy's clock | server: Redis TIME
  connections: 1                       # pipelined connections per process (one carries ~50k calls/s)
  breaker:
    failures: 3                        # consecutive failures that open the circuit
    open_for: 5s                       # then one probe call; success closes it (automatic recovery)
```

Importing this module registers the section (``proxy.sections`` imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.config import register_section
from proxy.state import BACKENDS, REMOTE_SCHEMES, StateBackend, backend_from_url, redact_url
from proxy.yamlspec import At, Fields, Problems

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


@dataclass(frozen=True, slots=True)
class StateSpec:
    url: str = "memory://"
    namespace: str = "distillguard"
    on_failure: str = "open"
    timeout: float = 0.25
    clock: str = "caller"
    connections: int = 1
    breaker_failures: int = 3
    breaker_open_for: float = 5.0

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def shared(self) -> bool:
        """True when several processes see the same state (anything but ``memory://``)."""
        return self.scheme in REMOTE_SCHEMES


def state_section(value: Any, at: At, problems: Problems) -> StateSpec:
    f = Fields.of(value, at, problems)
    d = StateSpec()
    url = f.string("url", d.url)
    if f.has("url") and isinstance(url, str):
        scheme = urlsplit(url).scheme
        if scheme not in BACKENDS:
            f.report("url", "expected a memory://, redis://, rediss:// or unix:// URL, "
                            f"got '{redact_url(url)}'")
            url = d.url
        else:
            try:
                backend_check(url)
            except ValueError as e:
                f.report("url", str(e).removeprefix("state: "))
                url = d.url
    namespace = f.string("namespace", d.namespace, pattern=_NAMESPACE,
                         what="a name of letters, digits, '.', '_', ':' or '-'")
    on_failure = f.enum("on_failure", ("open", "closed"), d.on_failure)
    timeout = f.duration("timeout", d.timeout, min=0.001, max=60.0)
    clock = f.enum("clock", ("caller", "server"), d.clock)
    connections = f.integer("connections", d.connections, min=1, max=64)
    b = f.map("breaker")
    failures = b.integer("failures", d.breaker_failures, min=1, max=1000)
    open_for = b.duration("open_for", d.breaker_open_for, min=0.01, max=3600.0)
    b.done()
    f.done()
    return StateSpec(url, namespace, on_failure, timeout, clock, connections, failures, open_for)


def backend_check(url: str) -> None:
    """Raise ValueError for URLs the registry refuses (Cluster, Sentinel) without connecting."""
    scheme = urlsplit(url).scheme
    if scheme in REMOTE_SCHEMES or scheme == "memory":
        return
    backend_from_url(url)  # the refusing factories raise with their message


def state_spec(cfg: Any) -> StateSpec:
    spec = cfg.sections.get("state") if hasattr(cfg, "sections") else None
    return spec if isinstance(spec, StateSpec) else StateSpec()


def backend_from_config(cfg: Any, *, registry: Any = None, clock: Clock = SYSTEM_CLOCK) -> StateBackend:
    """The backend the ``state:`` section asks for: ``memory://`` as is, a remote store wrapped in
    ``FaultTolerantBackend`` (timeout, breaker, fail-open/closed)."""
    spec = state_spec(cfg)
    if not spec.shared:
        return backend_from_url(spec.url)
    from proxy.state.faults import FaultTolerantBackend

    primary = backend_from_url(spec.url, namespace=spec.namespace, clock=spec.clock, timeout=spec.timeout,
                               connections=spec.connections)
    return FaultTolerantBackend(
        primary, on_failure=spec.on_failure, timeout=spec.timeout, failures=spec.breaker_failures,
        open_for=spec.breaker_open_for, clock=clock, registry=registry, name=spec.scheme,
        describe=redact_url(spec.url),
    )


def shape_state(cfg: Any, *, registry: Any = None, clock: Clock = SYSTEM_CLOCK) -> dict[str, Any]:
    """Keyword arguments for ``ShapeFilter.from_config``: ``backend`` and ``fail_open`` (False when
    ``on_failure: closed``, so the filter answers 503 ``state_unavailable``)."""
    spec = state_spec(cfg)
    return {"backend": backend_from_config(cfg, registry=registry, clock=clock),
            "fail_open": spec.on_failure == "open"}


register_section("state", state_section)

__all__ = ["StateSpec", "backend_from_config", "shape_state", "state_section", "state_spec"]
