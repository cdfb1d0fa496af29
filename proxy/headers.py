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

# What the relay does with a header field, by its name as received. aiohttp hands the common names over
# as shared constants, so looking the name up here costs less than lower-casing it and testing sets for
# every field of every message. Names are sender-chosen: each table is bounded.
_KEEP, _DROP, _CONNECTION, _UPSTREAM_ID, _SERVER = range(5)
_MAX_KINDS = 512
_REQUEST_KINDS: dict[str, int] = {}
_RESPONSE_KINDS: dict[str, dict[str, int]] = {}  # per request-id header name


def _kind(table: dict[str, int], name: str, drop: frozenset[str], rid_header: str) -> int:
    """Classify ``name`` (request fields: ``rid_header`` empty) and remember it in ``table``."""
    lk = name.lower()
    if lk == "connection":
        kind = _CONNECTION
    elif lk in drop:
        kind = _DROP
    elif not rid_header:
        kind = _KEEP
    elif lk == "x-request-id":
        kind = _UPSTREAM_ID
    elif lk == rid_header:
        kind = _DROP
    elif lk == "server":
        kind = _SERVER
    else:
        kind = _KEEP
    if len(table) < _MAX_KINDS:
        table[name] = kind
    return kind


def upstream_headers(
    ex: Exchange, spec: UpstreamSpec, peer_ip: str, scheme: str, auth: tuple[str, str] | None = _COMPUTE
) -> CIMultiDict[str]:
    """Headers sent upstream: the client's minus hop-by-hop and credentials, plus forwarding fields and
    the upstream key (``auth``, as ``auth_header`` gives it; computed when not passed)."""
    src = ex.headers
    state = ex.state
    strip = state.get("strip_headers") if state else None
    pairs: list[tuple[str, str]] | None = None
    if not strip:
        # Each field name's fate looked up by the name as received (see ``_kind``); a Connection field
        # (which may list more fields to drop) sends the request down the general path below.
        pairs = []
        kinds = _REQUEST_KINDS
        for k, v in src.items():
            kind = kinds.get(k)
            if kind is None:
                kind = _kind(kinds, k, _REQUEST_SKIP, "")
            if kind == _KEEP:
                pairs.append((k, v))
            elif kind == _CONNECTION:
                pairs = None
                break
    if pairs is None:
        drop: frozenset[str] | set[str] = _REQUEST_SKIP
        if "Connection" in src:
            drop = drop | _connection_listed(src)
        if strip:
            drop = drop | strip
        pairs = [(k, v) for k, v in src.items() if k.lower() not in drop]
    if state and state.get("peer_trusted"):
        xff = src.get("X-Forwarded-For")
        pairs.append(("X-Forwarded-For", f"{xff}, {peer_ip}" if xff else peer_ip))
        pairs.append(("X-Forwarded-Proto", src.get("X-Forwarded-Proto") or scheme))
    else:
        pairs.append(("X-Forwarded-For", peer_ip))
        pairs.append(("X-Forwarded-Proto", scheme))
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


def client_headers(
    ex: Exchange, upstream: Any, rid_header: str = "x-request-id"
) -> list[tuple[str, str]] | CIMultiDict[str]:
    """Headers sent to the client: the upstream's minus hop-by-hop, plus the request id and filter headers.

    The upstream's own request id is passed on as ``x-upstream-request-id``. Without filter headers the
    fields come as a list of pairs: aiohttp's response builds its own ``CIMultiDict`` from whatever it
    is given, so a multidict made here would only be copied."""
    kinds = _RESPONSE_KINDS.get(rid_header)
    if kinds is None:
        kinds = _RESPONSE_KINDS[rid_header] = {}
    pairs: list[tuple[str, str]] = []
    server = False
    for k, v in upstream.items():
        kind = kinds.get(k)
        if kind is None:
            kind = _kind(kinds, k, _RESPONSE_DROP, rid_header)
        if kind == _KEEP:
            pairs.append((k, v))
        elif kind == _UPSTREAM_ID:
            ex.upstream_request_id = v
            pairs.append(("x-upstream-request-id", v))
        elif kind == _SERVER:
            server = True
            pairs.append((k, v))
        elif kind == _CONNECTION:
            return _client_headers_listed(ex, upstream, rid_header)
    return _finish_client_headers(ex, pairs, server, rid_header)


def _client_headers_listed(
    ex: Exchange, upstream: Any, rid_header: str
) -> list[tuple[str, str]] | CIMultiDict[str]:
    """``client_headers`` when the upstream sent a Connection field (which may name more fields to drop)."""
    drop = _RESPONSE_DROP | _connection_listed(upstream)
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
    return _finish_client_headers(ex, pairs, server, rid_header)


def _finish_client_headers(
    ex: Exchange, pairs: list[tuple[str, str]], server: bool, rid_header: str
) -> list[tuple[str, str]] | CIMultiDict[str]:
    if not server:
        pairs.append(("Server", "distillguard"))
    pairs.append((rid_header, ex.request_id))
    if not ex.reply_headers:
        return pairs
    out: CIMultiDict[str] = CIMultiDict(pairs)
    out.update(ex.reply_headers)  # (a filter's header replaces every upstream field of that name)
    return out
