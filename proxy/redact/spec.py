"""The ``redaction`` and ``hardening`` config sections (registered at import) and the redaction modes.

Modes (per account tier, overridable per request by a rule action through ``ex.controls["redaction"]``):

``pass``         reasoning relayed unchanged.
``omit``         reasoning text removed, in the shape each API uses itself when it hides reasoning: an
                 Anthropic thinking block with empty text and its signature; a Responses reasoning item
                 with empty ``summary``/``content`` and its ``encrypted_content``; Gemini thought parts
                 removed (``thoughtSignature`` kept); Chat reasoning fields deleted.
``drop``         reasoning parts removed entirely, indexes renumbered (breaks tool loops that need them).
``seal``         reasoning replaced by an AEAD token the client carries back; restored before forwarding
                 (Gemini: base64 in a thought part's ``thoughtSignature``; inline ``<think>``: in
                 ``reasoning_content``, put back into ``content``). Never asks the upstream to hide it.
``placeholder``  a visible marker where the reasoning was (not tool-loop safe on Anthropic).
``auto``         the safest mode that keeps tool loops working: ``omit`` where omitting is round-trip safe
                 (Anthropic, Responses, Gemini), ``seal`` where the API needs the reasoning back (Chat
                 Completions: DeepSeek ``reasoning_content``, OpenRouter ``reasoning_details``).

Config keys (every one documented with its default in ``config.example.yaml``):
``redaction``: ``tiers.{trusted,standard,restricted}`` (mode), ``default_mode``, ``placeholder``,
``usage_reasoning_tokens`` (keep|zero), ``suppress_upstream``, ``strip_logprobs``, ``prefilled_models``,
``seal.{keys_env,ttl,cipher,max_bytes}``, ``leak.{action,min_words,max_reasoning_bytes}``.
``hardening``: ``tiers.<tier>`` (profile name), ``default_profile``, ``profiles.<name>.{logprobs,
top_logprobs_max,logit_bias,n_max,max_tokens_max,thinking_budget_max,effort_max}``.
The seal key ring is read from the environment variable named by ``seal.keys_env`` when the config is
loaded (``"kid:base64key,kid2:base64key"``, first = active); errors name key ids, never key material.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from proxy.config import TIERS, register_section
from proxy.redact.seal import CIPHERS, KeyRing, parse_keyring
from proxy.yamlspec import At, Fields, Mark, Problems, to_str

PASS, OMIT, DROP, SEAL, PLACEHOLDER, AUTO = "pass", "omit", "drop", "seal", "placeholder", "auto"
MODES = (PASS, OMIT, DROP, SEAL, PLACEHOLDER, AUTO)
HIDING = frozenset((OMIT, DROP, SEAL, PLACEHOLDER))
# What ``auto`` means per dialect.
AUTO_BY_DIALECT = MappingProxyType(
    {
        "openai_chat": SEAL,
        "openai_responses": OMIT,
        "anthropic_messages": OMIT,
        "gemini": OMIT,
    }
)
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
DEFAULT_PREFILLED = ("deepseek-r1", "r1-distill", "qwq", "thinking-2507", "think-noopen")


@dataclass(frozen=True, slots=True)
class LeakSpec:
    action: str = "flag"  # off | flag | withhold
    min_words: int = 10
    max_reasoning_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class RedactionSpec:
    tiers: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType({"trusted": PASS, "standard": AUTO, "restricted": AUTO})
    )
    default_mode: str = AUTO
    placeholder: str = "[reasoning hidden]"
    usage_reasoning_tokens: str = "keep"  # keep | zero
    suppress_upstream: bool = True
    strip_logprobs: bool = True
    keyring: KeyRing | None = None  # None: an ephemeral key is made at start (tokens die with the process)
    keys_env: str = "DISTILLGUARD_SEAL_KEYS"
    seal_ttl: float = 7 * 86400.0
    seal_max_bytes: int = 1024 * 1024
    prefilled_models: tuple[str, ...] = DEFAULT_PREFILLED
    leak: LeakSpec = LeakSpec()

    def mode_for(self, tier: str) -> str:
        return self.tiers.get(tier, self.default_mode)


def default_at(name: str) -> At:
    return At(Mark("<defaults>"), name)


def resolve(mode: str, dialect: str) -> str:
    return AUTO_BY_DIALECT.get(dialect, SEAL) if mode == AUTO else mode


def parse_redaction(value: Any, at: At, problems: Problems) -> RedactionSpec:
    f = Fields.of(value, at, problems)
    base = RedactionSpec()
    tiers = dict(base.tiers)
    t = f.map("tiers")
    for tier in TIERS:
        tiers[tier] = t.enum(tier, MODES, tiers[tier])
    t.done()
    default_mode = f.enum("default_mode", MODES, base.default_mode)
    placeholder = f.string("placeholder", base.placeholder)
    usage = f.enum("usage_reasoning_tokens", ("keep", "zero"), "keep")
    suppress = f.boolean("suppress_upstream", True)
    strip_lp = f.boolean("strip_logprobs", True)
    s = f.map("seal")
    keys_env = s.string("keys_env", base.keys_env)
    ttl = s.duration("ttl", base.seal_ttl, min=1)
    cipher = s.enum("cipher", CIPHERS, "aes-gcm")
    max_bytes = s.size("max_bytes", base.seal_max_bytes, min=1024)
    s.done()
    keyring = None
    text = os.environ.get(keys_env) if keys_env else None
    if text:
        try:
            keyring = KeyRing(parse_keyring(text), cipher)
        except ValueError as e:  # the message names key ids only, never key material
            s.report("keys_env", f"environment variable {keys_env}: {e}")
    prefilled = f.list_of("prefilled_models", to_str, DEFAULT_PREFILLED)
    lf = f.map("leak")
    leak = LeakSpec(
        action=lf.enum("action", ("off", "flag", "withhold"), "flag"),
        min_words=lf.integer("min_words", 10, min=4, max=64),
        max_reasoning_bytes=lf.size("max_reasoning_bytes", 256 * 1024, min=1024),
    )
    lf.done()
    f.done()
    return RedactionSpec(
        tiers=MappingProxyType(tiers),
        default_mode=default_mode,
        placeholder=placeholder,
        usage_reasoning_tokens=usage,
        suppress_upstream=suppress,
        strip_logprobs=strip_lp,
        keyring=keyring,
        keys_env=keys_env,
        seal_ttl=float(ttl),
        seal_max_bytes=int(max_bytes),
        prefilled_models=tuple(p.lower() for p in prefilled),
        leak=leak,
    )


# --------------------------------------------------------------------------- hardening


@dataclass(frozen=True, slots=True)
class HardenProfile:
    """What a hardening profile changes in requests. ``None`` = leave that knob alone."""

    logprobs: str = "allow"  # allow | cap | strip
    top_logprobs_max: int = 5
    logit_bias: str = "allow"  # allow | strip
    n_max: int | None = None
    max_tokens_max: int | None = None
    thinking_budget_max: int | None = None
    effort_max: str | None = None


BUILTIN_PROFILES = MappingProxyType(
    {
        "off": HardenProfile(),
        "standard": HardenProfile(logprobs="cap", top_logprobs_max=5, n_max=4),
        "strict": HardenProfile(
            logprobs="strip",
            logit_bias="strip",
            n_max=1,
            max_tokens_max=16384,
            thinking_budget_max=8192,
            effort_max="medium",
        ),
    }
)


@dataclass(frozen=True, slots=True)
class HardeningSpec:
    tiers: MappingProxyType[str, str] = field(
        default_factory=lambda: MappingProxyType(
            {"trusted": "off", "standard": "standard", "restricted": "strict"}
        )
    )
    default_profile: str = "strict"
    profiles: MappingProxyType[str, HardenProfile] = field(default_factory=lambda: BUILTIN_PROFILES)

    def profile_for(self, tier: str, override: Any = None) -> HardenProfile:
        if isinstance(override, str) and override in self.profiles:
            return self.profiles[override]
        return self.profiles[self.tiers.get(tier, self.default_profile)]


def _profile(f: Fields, base: HardenProfile) -> HardenProfile:
    p = HardenProfile(
        logprobs=f.enum("logprobs", ("allow", "cap", "strip"), base.logprobs),
        top_logprobs_max=f.integer("top_logprobs_max", base.top_logprobs_max, min=0, max=20),
        logit_bias=f.enum("logit_bias", ("allow", "strip"), base.logit_bias),
        n_max=f.integer("n_max", base.n_max, min=1),
        max_tokens_max=f.integer("max_tokens_max", base.max_tokens_max, min=1),
        thinking_budget_max=f.integer("thinking_budget_max", base.thinking_budget_max, min=0),
        effort_max=f.enum("effort_max", EFFORTS, base.effort_max, nullable=True),
    )
    f.done()
    return p


def parse_hardening(value: Any, at: At, problems: Problems) -> HardeningSpec:
    f = Fields.of(value, at, problems)
    base = HardeningSpec()
    profiles = dict(BUILTIN_PROFILES)
    pf = f.map("profiles")
    for name in list(pf.data):
        profiles[name] = _profile(pf.map(name), BUILTIN_PROFILES.get(name, HardenProfile()))
    pf.done()
    tiers = dict(base.tiers)
    tf = f.map("tiers")
    for tier in TIERS:
        tiers[tier] = tf.enum(tier, tuple(profiles), tiers[tier])
    tf.done()
    default = f.enum("default_profile", tuple(profiles), base.default_profile)
    f.done()
    return HardeningSpec(MappingProxyType(tiers), default, MappingProxyType(profiles))


register_section("redaction", parse_redaction)
register_section("hardening", parse_hardening)
