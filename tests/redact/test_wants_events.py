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
