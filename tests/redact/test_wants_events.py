"""The redaction filter asks to see a stream's events only when it hides that stream's reasoning."""

from __future__ import annotations

from types import MappingProxyType

import orjson
import pytest

from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.filters.redact import RedactFilter
from proxy.redact.spec import RedactionSpec

from .helpers import RING

BODY = orjson.dumps({"model": "deepseek-reasoner", "stream": True, "messages": [{"role": "user", "content": "hi"}]})


@pytest.mark.parametrize(("mode", "wants"), [("pass", False), ("omit", True), ("seal", True), ("drop", True)])
async def test_only_hiding_modes_want_the_events(mode: str, wants: bool) -> None:
    spec = RedactionSpec(default_mode=mode, tiers=MappingProxyType({}))
    f = RedactFilter(spec, keyring=RING)
    ex = Exchange(path="/v1/chat/completions", body=BODY, dialect=DIALECTS["openai_chat"])
    assert await f.on_request(ex) is None
    assert f.wants_events(ex) is wants


async def test_a_rule_control_makes_a_pass_tier_stream_looked_at() -> None:
    spec = RedactionSpec(default_mode="pass", tiers=MappingProxyType({}))
    f = RedactFilter(spec, keyring=RING)
    ex = Exchange(path="/v1/chat/completions", body=BODY, dialect=DIALECTS["openai_chat"])
    ex.controls["redaction"] = "omit"  # the rules flagged this account
    assert await f.on_request(ex) is None
    assert f.wants_events(ex) is True


# The filter skips its restore walk when the raw body cannot hold a seal token (no "dgs1." and no base64 of it).


def _sealed_chat_body(token: str) -> bytes:
    msg = {"role": "assistant", "content": "42", "reasoning_content": token}
    return orjson.dumps({"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "q"}, msg]})


@pytest.mark.parametrize("mode", ["pass", "seal", "omit"])
async def test_a_returning_token_is_restored_in_every_mode(mode: str) -> None:
    spec = RedactionSpec(default_mode=mode, tiers=MappingProxyType({}))
    f = RedactFilter(spec, keyring=RING)
    token = RING.seal({"reasoning_content": "the hidden steps"}, context="openai_chat|-", now=1.0e9, ttl=1.0e9)
    ex = Exchange(path="/v1/chat/completions", body=_sealed_chat_body(token), dialect=DIALECTS["openai_chat"])
    assert await f.on_request(ex) is None
    assert ex.json["messages"][1]["reasoning_content"] == "the hidden steps"
    assert ex.body_changed


async def test_a_token_spelt_with_json_escapes_is_forwarded_as_the_opaque_token_it_is() -> None:
    spec = RedactionSpec(default_mode="pass", tiers=MappingProxyType({}))
    f = RedactFilter(spec, keyring=RING)
    token = RING.seal({"reasoning_content": "the hidden steps"}, context="openai_chat|-", now=1.0e9, ttl=1.0e9)
    body = _sealed_chat_body(token).replace(b'"dgs1.', b'"\\u0064gs1.')
    ex = Exchange(path="/v1/chat/completions", body=body, dialect=DIALECTS["openai_chat"])
    assert await f.on_request(ex) is None
    assert not ex.body_changed and ex.outgoing_body() == body  # nothing restored, nothing revealed
    assert b"the hidden steps" not in ex.outgoing_body()
