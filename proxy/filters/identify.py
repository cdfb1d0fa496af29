"""Identity: the first filter. Resolves the client IP and the account behind every request.

Fails closed: a request whose account cannot be established is answered 401 in its dialect's shape.
Keys are looked up by digest and never logged; the exchange keeps only a short key id.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from hashlib import sha256
from typing import TYPE_CHECKING

from proxy import errors
from proxy.errors import Reply
from proxy.pipeline import Filter

if TYPE_CHECKING:
    from proxy.accounts import Account, AccountStore
    from proxy.config import IdentitySpec
    from proxy.exchange import Exchange

log = logging.getLogger("distillguard.identify")


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class IdentifyFilter(Filter):
    """Sets ``ex.client_ip``, ``ex.account`` and ``ex.key_id``; strips credentials before forwarding.

    The client IP honours ``X-Forwarded-For`` only when the TCP peer is a configured trusted proxy: it
    is then the right-most address in the chain that is not itself a trusted proxy. The account header
    of an auth gateway is honoured under the same condition.
    """

    name = "identify"

    def __init__(self, spec: IdentitySpec, accounts: Callable[[], AccountStore | None]) -> None:
        self.spec = spec
        self.accounts = accounts
        self.trusted = tuple(spec.trusted_proxies)
        self.account_header = spec.account_header
        self.query_param = spec.key_query_param

    def _is_trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in net for net in self.trusted)

    def _client_ip(self, ex: Exchange, peer: str) -> str:
        if not self._is_trusted(_ip(peer)):
            return peer
        ex.state["peer_trusted"] = True
        xff = ex.headers.get("X-Forwarded-For")
        if not xff:
            return peer
        for hop in reversed(xff.split(",")):
            ip = _ip(hop)
            if ip is None:
                break  # a garbled hop: stop trusting the chain here
            if not self._is_trusted(ip):
                return str(ip)
        return peer

    def _presented_key(self, ex: Exchange) -> str | None:
        h = ex.headers
        auth = h.get("Authorization")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer":
                token = token.strip()
                if token:
                    return token
        for name in ("x-api-key", "x-goog-api-key", "api-key"):
            v = h.get(name)
            if v:
                return v.strip()
        if self.query_param and ex.query:
            from urllib.parse import parse_qsl

            pairs = parse_qsl(ex.query, keep_blank_values=True)
            for k, v in pairs:
                if k == self.query_param and v:
                    # The key must not travel upstream in the URL either.
                    ex.query = "&".join(
                        f"{a}={b}" for a, b in _raw_pairs(ex.query) if a != self.query_param
                    )
                    return v
        return None

    async def on_request(self, ex: Exchange) -> Reply | None:
        if self.trusted:
            ex.client_ip = self._client_ip(ex, ex.client_ip)
        store = self.accounts()
        if self.account_header:
            ex.state["strip_headers"] = frozenset((self.account_header.lower(),))
            if ex.state.get("peer_trusted"):
                acct_id = ex.headers.get(self.account_header)
                if acct_id:
                    ex.account = (store.by_id(acct_id) if store is not None else None) or _adhoc(
                        acct_id, self.spec.anonymous_tier
                    )
                    ex.key_id = None
                    return None
        # The usual credential, "Authorization: Bearer <key>", read here; anything else through
        # ``_presented_key`` (same order of precedence: a usable bearer token wins).
        auth = ex.headers.get("Authorization")
        key: str | None = None
        if auth and auth[:7].lower() == "bearer ":
            key = auth[7:].strip() or None
        if key is None:
            key = self._presented_key(ex)
        if key is not None and store is not None:
            d = "sha256:" + sha256(key.encode("utf-8", "surrogatepass")).hexdigest()  # key_digest, inlined
            account = store.by_digest(d)
            if account is not None:
                ex.account = account
                # A short, stable, non-reversible id for logs and per-key limits.
                ex.key_id = "k_" + d[7:19]
                return None
        if self.spec.allow_anonymous:
            ex.account = _adhoc("anonymous", self.spec.anonymous_tier)
            return None
        if key is None:
            return ex.error(errors.UNAUTHENTICATED, "No API key was provided.")
        return ex.error(errors.UNAUTHENTICATED, "The API key is not valid.")


def _raw_pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for part in query.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        out.append((k, v))
    return out


def _adhoc(account_id: str, tier: str) -> Account:
    from proxy.accounts import Account

    return Account(id=account_id, tier=tier)
