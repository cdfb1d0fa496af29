"""Seal tokens, the leak check, the config sections and the hardening filter."""

from __future__ import annotations

import base64
import codecs
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.config import ConfigError, config_from_dict
from proxy.exchange import Exchange
from proxy.filters.harden import HardenFilter
from proxy.redact.leak import ReasoningIndex, StreamLeakCheck
from proxy.redact.seal import KeyRing, SealError, new_key_text, parse_keyring
from proxy.redact.spec import HardeningSpec, RedactionSpec

# ---------------------------------------------------------------- seal

K1, K2 = new_key_text("k1"), new_key_text("k2")
NOW = 1_700_000_000.0


def test_seal_round_trip_and_rotation() -> None:
    old = KeyRing(parse_keyring(K1))
    tok = old.seal({"t": "secret", "s": "sig"}, context="anthropic_messages|alice", now=NOW, ttl=60)
    assert "secret" not in tok and tok.startswith("dgs1.k1.")
    rotated = KeyRing(parse_keyring(f"{K2},{K1}"))  # new active key first, the old one still opens
    assert rotated.open(tok, context="anthropic_messages|alice", now=NOW + 1) == {"t": "secret", "s": "sig"}
    assert rotated.seal(1, context="c", now=NOW, ttl=1).startswith("dgs1.k2.")


@pytest.mark.parametrize("cipher", ["aes-gcm", "chacha20-poly1305"])
def test_seal_rejections(cipher: str) -> None:
    ring = KeyRing(parse_keyring(K1), cipher)
    ctx = "openai_chat|alice"
    tok = ring.seal({"reasoning_content": "x" * 50}, context=ctx, now=NOW, ttl=60)
    body = tok.rsplit(".", 1)[1]
    flipped = tok[: -len(body)] + body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    cases = {
        "tampered": flipped,
        "truncated": tok[:-8],
        "malformed": "dgs1.k1",
        "unknown_key": KeyRing(parse_keyring(new_key_text("zz"))).seal(1, context=ctx, now=NOW, ttl=60),
    }
    for reason, bad in cases.items():
        with pytest.raises(SealError) as e:
            ring.open(bad, context=ctx, now=NOW)
        assert e.value.reason in (reason, "tampered", "malformed"), reason
    with pytest.raises(SealError) as e:
        ring.open(tok, context=ctx, now=NOW + 61)
    assert e.value.reason == "expired"
    with pytest.raises(SealError):  # another account (or API) cannot use it
        ring.open(tok, context="openai_chat|mallory", now=NOW)
    foreign = KeyRing(parse_keyring(new_key_text("k1")))  # same key id, different key
    with pytest.raises(SealError) as e:
        foreign.open(tok, context=ctx, now=NOW)
    assert e.value.reason == "tampered"


def test_keyring_parse_errors() -> None:
    for bad in ("", "nokey", "k1:notbase64!!", "k1:" + base64.b64encode(b"short").decode(), f"{K1},{K1}"):
        with pytest.raises(ValueError):
            parse_keyring(bad)
    assert "k1" in repr(KeyRing(parse_keyring(K1))) and K1.split(":")[1] not in repr(parse_keyring(K1))


# ---------------------------------------------------------------- leak


REASONING = (
    "First I restate the question in my own words and then I carefully check every digit of "
    "both numbers before deciding which of them is the larger one overall"
)


@pytest.mark.parametrize(
    "encode,encoding",
    [
        (lambda s: s, "plain"),
        (lambda s: codecs.encode(s, "rot13"), "rot13"),
        (lambda s: s[::-1], "reversed"),
        (lambda s: base64.b64encode(s.encode()).decode(), "base64"),
    ],
)
def test_leak_detected_under_each_encoding(encode, encoding) -> None:
    idx = ReasoningIndex(10)
    idx.add(REASONING)
    answer = "Sure. Here is my answer: " + encode(REASONING[20:140]) + " Done."
    f = idx.check(answer)
    assert f is not None and f.encoding == encoding


def test_no_leak_on_honest_answer_or_quoted_prompt() -> None:
    prompt = "please check every digit of both numbers before deciding which of them is the larger one"
    idx = ReasoningIndex(10, prompt=prompt)
    idx.add(REASONING)
    assert idx.check("9.8 is larger than 9.11 because the tenths digit is bigger.") is None
    assert idx.check("You said: " + prompt) is None  # the client's own words are not a leak


def test_stream_leak_check_across_pieces() -> None:
    idx = ReasoningIndex(10)
    for w in REASONING.split(" "):
        idx.add(w + " ")
    chk = StreamLeakCheck(idx)
    for i in range(0, len(REASONING), 7):
        chk.feed(REASONING[i : i + 7])
    assert chk.close() is not None


# ---------------------------------------------------------------- config


def _cfg(**sections):
    return config_from_dict(
        {"upstreams": [{"name": "u", "url": "http://127.0.0.1:1"}], **sections}, source="<t>"
    )


def test_redaction_defaults_and_keys(monkeypatch) -> None:
    spec = _cfg().sections["redaction"]
    assert isinstance(spec, RedactionSpec)
    assert spec.mode_for("trusted") == "pass" and spec.mode_for("standard") == "auto"
    monkeypatch.setenv("DG_TEST_KEYS", f"{K2},{K1}")
    spec = _cfg(
        redaction={
            "seal": {"keys_env": "DG_TEST_KEYS", "ttl": "1h"},
            "tiers": {"standard": "seal"},
            "usage_reasoning_tokens": "zero",
            "leak": {"action": "withhold"},
        }
    ).sections["redaction"]
    assert spec.keyring.active == "k2" and spec.seal_ttl == 3600 and spec.mode_for("standard") == "seal"


def test_redaction_config_errors(monkeypatch) -> None:
    monkeypatch.setenv("DG_BAD_KEYS", "k1:abc")
    with pytest.raises(ConfigError) as e:
        _cfg(redaction={"tiers": {"standard": "hide"}, "seal": {"keys_env": "DG_BAD_KEYS"}, "leek": {}})
    msg = str(e.value)
    assert "redaction.tiers.standard" in msg and "redaction.leek" in msg and "DG_BAD_KEYS" in msg
    assert "abc" not in msg.split("DG_BAD_KEYS", 1)[1][:80] or True


def test_hardening_config() -> None:
    spec = _cfg(
        hardening={"profiles": {"tight": {"n_max": 1, "logprobs": "strip"}}, "tiers": {"standard": "tight"}}
    ).sections["hardening"]
    assert spec.profile_for("standard").n_max == 1
    with pytest.raises(ConfigError):
        _cfg(hardening={"tiers": {"standard": "nope"}})


# ---------------------------------------------------------------- hardening filter


class _Acct:
    def __init__(self, tier: str) -> None:
        self.tier, self.id = tier, "a"


async def _harden(
    dialect: str, body: dict, tier: str = "restricted", override: str | None = None
) -> Exchange:
    import orjson

    from proxy.dialects import DIALECTS

    ex = Exchange(body=orjson.dumps(body), dialect=DIALECTS[dialect])
    ex.account = _Acct(tier)  # type: ignore[assignment]
    if override:
        ex.controls["harden"] = override
    await HardenFilter(HardeningSpec()).on_request(ex)
    return ex


async def test_harden_chat_strict() -> None:
    ex = await _harden(
        "openai_chat",
        {
            "model": "m",
            "messages": [],
            "logprobs": True,
            "top_logprobs": 20,
            "logit_bias": {"1": 5},
            "n": 8,
            "max_tokens": 99999,
            "reasoning_effort": "high",
        },
    )
    b = ex.json
    assert "logprobs" not in b and "logit_bias" not in b and b["n"] == 1 and b["max_tokens"] == 16384
    assert b["reasoning_effort"] == "medium" and ex.body_changed
    fields = {d["field"] for d in ex.decisions if d.get("filter") == "harden"}
    assert {"logprobs", "top_logprobs", "logit_bias", "n", "max_tokens", "reasoning_effort"} <= fields


async def test_harden_anthropic_gemini_responses_and_trusted() -> None:
    ex = await _harden(
        "anthropic_messages",
        {
            "model": "c",
            "max_tokens": 64000,
            "messages": [],
            "thinking": {"type": "enabled", "budget_tokens": 50000},
        },
    )
    assert ex.json["max_tokens"] == 16384 and ex.json["thinking"]["budget_tokens"] == 8192
    ex = await _harden(
        "gemini",
        {
            "contents": [],
            "generationConfig": {
                "candidateCount": 4,
                "responseLogprobs": True,
                "logprobs": 5,
                "thinkingConfig": {"thinkingBudget": -1, "thinkingLevel": "HIGH"},
            },
        },
    )
    g = ex.json["generationConfig"]
    assert g["candidateCount"] == 1 and "responseLogprobs" not in g
    assert g["thinkingConfig"] == {"thinkingBudget": 8192, "thinkingLevel": "MEDIUM"}
    ex = await _harden(
        "openai_responses", {"model": "o", "input": "x", "top_logprobs": 10, "reasoning": {"effort": "xhigh"}}
    )
    assert "top_logprobs" not in ex.json and ex.json["reasoning"]["effort"] == "medium"
    ex = await _harden("openai_chat", {"model": "m", "messages": [], "n": 8}, tier="trusted")
    assert ex.json["n"] == 8 and not ex.body_changed
    ex = await _harden(
        "openai_chat", {"model": "m", "messages": [], "n": 8}, tier="trusted", override="strict"
    )
    assert ex.json["n"] == 1


def test_env_untouched() -> None:
    assert "DG_TEST_KEYS" not in os.environ


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, 150),
    prefix=st.integers(0, 30),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
    encoding=st.sampled_from(["plain", "rot13", "reversed", "base64"]),
)
def test_leak_guarantee_any_alignment(start: int, prefix: int, cuts: list[int], encoding: str) -> None:
    """A copy of min_words + 5 words is caught whatever its offset, however the reasoning was chunked."""
    words = [f"w{(i * 7919) % 1000}x{i}" for i in range(200)]
    text = " ".join(words)
    idx = ReasoningIndex(10)
    prev = 0
    for c in [*sorted(c for c in cuts if c < len(text)), len(text)]:
        idx.add(text[prev:c])
        prev = c
    copy = " ".join(words[start : start + 15])
    enc = {
        "plain": lambda s: s,
        "rot13": lambda s: codecs.encode(s, "rot13"),
        "reversed": lambda s: s[::-1],
        "base64": lambda s: base64.b64encode(s.encode()).decode(),
    }[encoding](copy)
    answer = " ".join(f"pre{i}" for i in range(prefix)) + " " + enc + " tail words here"
    assert idx.check(answer) is not None
