"""Identity without sockets: client IP through trusted proxies, key sources, account header, 401s."""

from __future__ import annotations

import ipaddress

import pytest
from multidict import CIMultiDict

from proxy.accounts import Account, AccountStore
from proxy.config import IdentitySpec
from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.filters.identify import IdentifyFilter
from proxy.keys import digest

KEY = "dg-test-key-0123456789"
STORE = AccountStore([Account("alice", "standard", "acme", (digest(KEY),)), Account("tina", "trusted")])


def _filter(**kw) -> IdentifyFilter:
    nets = tuple(ipaddress.ip_network(n) for n in kw.pop("trusted", ()))
    return IdentifyFilter(IdentitySpec(trusted_proxies=nets, **kw), lambda: STORE)


def _ex(headers=None, peer="198.51.100.7", query="", dialect="openai_chat") -> Exchange:
    return Exchange(headers=CIMultiDict(headers or {}), client_ip=peer, query=query, dialect=DIALECTS[dialect])


@pytest.mark.parametrize("headers", [
    {"Authorization": f"Bearer {KEY}"}, {"authorization": f"bearer {KEY}"}, {"x-api-key": KEY},
    {"x-goog-api-key": KEY},
])
async def test_key_from_each_sdk_header(headers):
    ex = _ex(headers)
    assert await _filter().on_request(ex) is None
    assert ex.account.id == "alice" and ex.key_id.startswith("k_") and KEY not in ex.key_id


async def test_key_from_query_is_removed_from_query():
    ex = _ex(query=f"alt=sse&key={KEY}", dialect="gemini")
    assert await _filter().on_request(ex) is None
    assert ex.account.id == "alice" and ex.query == "alt=sse"


@pytest.mark.parametrize("headers,message", [({}, "No API key"), ({"x-api-key": "dg-nope"}, "not valid"),
                                             ({"Authorization": "Basic abc"}, "No API key")])
async def test_unauthenticated(headers, message):
    ex = _ex(headers, dialect="anthropic_messages")
    reply = await _filter().on_request(ex)
    assert reply is not None and reply.status == 401 and message.encode() in reply.body
    assert b"authentication_error" in reply.body and ex.error_code == "unauthenticated"


async def test_anonymous_when_allowed():
    ex = _ex()
    assert await _filter(allow_anonymous=True, anonymous_tier="restricted").on_request(ex) is None
    assert ex.account.id == "anonymous" and ex.account.tier == "restricted"


@pytest.mark.parametrize("peer,xff,expected", [
    ("198.51.100.7", "203.0.113.1", "198.51.100.7"),            # untrusted peer: XFF ignored
    ("10.0.0.2", "203.0.113.1", "203.0.113.1"),                 # trusted peer
    ("10.0.0.2", "203.0.113.1, 10.0.0.9", "203.0.113.1"),       # chain of trusted proxies skipped
    ("10.0.0.2", "6.6.6.6, 203.0.113.1", "203.0.113.1"),        # a spoofed left-most hop is not believed
    ("10.0.0.2", "garbage, 10.0.0.3", "10.0.0.2"),              # garbled hop: stop trusting the chain
    ("10.0.0.2", "2001:db8::5", "2001:db8::5"),
])
async def test_client_ip_through_trusted_proxies(peer, xff, expected):
    ex = _ex({"X-Forwarded-For": xff, "x-api-key": KEY}, peer=peer)
    await _filter(trusted=["10.0.0.0/8"]).on_request(ex)
    assert ex.client_ip == expected


async def test_account_header_only_from_trusted_peer():
    f = _filter(trusted=["10.0.0.0/8"], account_header="x-auth-account")
    ex = _ex({"x-auth-account": "tina"}, peer="10.1.1.1")
    assert await f.on_request(ex) is None and ex.account.tier == "trusted"
    ex = _ex({"x-auth-account": "tina"}, peer="198.51.100.7")
    reply = await f.on_request(ex)
    assert reply is not None and reply.status == 401
    # An account the file does not know gets the default tier from the gateway's word.
    ex = _ex({"x-auth-account": "newcomer"}, peer="10.1.1.1")
    assert await f.on_request(ex) is None and ex.account.id == "newcomer" and ex.account.tier == "standard"
