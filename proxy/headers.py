"""Header hygiene for the relay: hop-by-hop fields, client credentials, forwarding fields, the upstream key.

``upstream_headers`` builds what goes up (the client's headers minus hop-by-hop fields and distillguard
keys, plus ``X-Forwarded-*``, the request id and the upstream's own key); ``client_headers`` builds what
goes back down (the upstream's headers minus hop-by-hop fields, plus the request id and filter headers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from proxy.exchange import Exchange

if TYPE_CHECKING:
    from proxy.config import UpstreamSpec

# RFC 9110 §7.6.1 hop-by-hop fields, plus fields the relay recomputes itself.
HOP_BY_HOP = frozenset(
    (
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade",
    )
)
_REQUEST_DROP = HOP_BY_HOP | {"host", "content-length", "content-encoding", "expect"}
# Client credentials are distillguard keys: they never reach the upstream.
_CREDENTIALS = frozenset(("authorization", "x-api-key", "x-goog-api-key", "api-key"))
# The upstream's own Server header is relayed; the framework's would otherwise announce its version.
_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "content-encoding", "date"}


# Fields the relay sets itself on the way up, so a client's own copy is dropped first.
_REQUEST_SET = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-distillguard-request-id"))
_REQUEST_SKIP = _REQUEST_DROP | _CREDENTIALS | _REQUEST_SET


def _connection_listed(headers: Any) -> set[str]:
    listed: set[str] = set()
    for value in headers.getall("Connection", ()):
        listed.update(t.strip().lower() for t in value.split(","))
    return listed


def auth_header(spec: UpstreamSpec, dialect: str | None) -> tuple[str, str] | None:
    """The header carrying the upstream's own key for a request in ``dialect`` (None: no key to send)."""
    key = spec.api_key
    if not key:
        return None
    style = spec.auth_scheme(dialect)
    if style == "bearer":
        return ("Authorization", f"Bearer {key}")
    if style in ("x-api-key", "x-goog-api-key"):
        return (style, key)
    return None


_COMPUTE: Any = object()


def upstream_headers(
    ex: Exchange, spec: UpstreamSpec, peer_ip: str, scheme: str, auth: tuple[str, str] | None = _COMPUTE
) -> CIMultiDict[str]:
    """Headers sent upstream: the client's minus hop-by-hop and credentials, plus forwarding fields and
    the upstream key (``auth``, as ``auth_header`` gives it; computed when not passed)."""
    src = ex.headers
    state = ex.state
    drop: frozenset[str] | set[str] = _REQUEST_SKIP
    if "Connection" in src:
        drop = drop | _connection_listed(src)
    strip = state.get("strip_headers")
    if strip:
        drop = drop | strip
    pairs = [(k, v) for k, v in src.items() if k.lower() not in drop]
    trusted = state.get("peer_trusted")
    xff = src.get("X-Forwarded-For") if trusted else None
    pairs.append(("X-Forwarded-For", f"{xff}, {peer_ip}" if xff else peer_ip))
    pairs.append(("X-Forwarded-Proto", (src.get("X-Forwarded-Proto") if trusted else None) or scheme))
    pairs.append(("X-Distillguard-Request-Id", ex.request_id))
    out: CIMultiDict[str] = CIMultiDict(pairs)
    if spec.headers:
        for k, v in spec.headers.items():
            out[k] = v
    if ex.upstream_headers:
        for k, v in ex.upstream_headers.items():
            out[k] = v
    if auth is _COMPUTE:
        auth = auth_header(spec, ex.dialect.name if ex.dialect is not None else None)
    if auth is not None:
        out[auth[0]] = auth[1]
    return out


def client_headers(ex: Exchange, upstream: Any, rid_header: str = "x-request-id") -> CIMultiDict[str]:
    """Headers sent to the client: the upstream's minus hop-by-hop, plus the request id and filter headers.

    The upstream's own request id is passed on as ``x-upstream-request-id``."""
    drop: frozenset[str] | set[str] = _RESPONSE_DROP
    if "Connection" in upstream:
        drop = drop | _connection_listed(upstream)
    pairs: list[tuple[str, str]] = []
    server = False
    for k, v in upstream.items():
        lk = k.lower()
        if lk in drop:
            continue
        if lk == "x-request-id":
            ex.upstream_request_id = v
            pairs.append(("x-upstream-request-id", v))
            continue
        if lk == rid_header:
            continue
        if lk == "server":
            server = True
        pairs.append((k, v))
    if not server:
        pairs.append(("Server", "distillguard"))
    pairs.append((rid_header, ex.request_id))
    out: CIMultiDict[str] = CIMultiDict(pairs)
    for k, v in ex.reply_headers.items():
        out[k] = v
    return out
