"""Request hardening per account tier: fewer knobs that help distillation (logprobs, many samples, huge
outputs, deep thinking). Fails open on odd input (a knob it cannot read is left alone) and never fails a
request: it only lowers or removes values.

``on_request`` picks the profile (``ex.controls["harden"]`` from a rule action, else the tier's profile in
the ``hardening`` config section) and rewrites the body in the dialect's own field names. Every change is
recorded in ``ex.decisions`` as ``{"filter": "harden", "field": …, "from": …, "to": …}`` (``to`` None =
removed) for logs and rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from proxy.errors import Reply
from proxy.exchange import Exchange
from proxy.pipeline import Filter
from proxy.redact.spec import EFFORTS, HardeningSpec, HardenProfile

_NO_HARDENING = HardenProfile()  # (built once: a frozen dataclass costs ~10k instructions to construct)

_ABSENT = object()
_MAX_PLANS = 256  # cached (dialect, tier, control) plans; cleared when full
# (profile, the dialect's editor or None when nothing applies, the body's top-level fields it may touch)
_Plan = tuple[HardenProfile, "Callable[[dict[str, Any], HardenProfile, _Edit], None] | None", frozenset[str]]


class _Edit:
    __slots__ = ("ex", "n")

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.n = 0

    def set(self, d: dict[str, Any], key: str, value: Any, path: str) -> None:
        old = d.get(key, _ABSENT)
        if value is _ABSENT:
            if old is _ABSENT:
                return
            del d[key]
            value = None
        elif old == value:
            return
        else:
            d[key] = value
        self.n += 1
        self.ex.decisions.append(
            {"filter": "harden", "field": path, "from": None if old is _ABSENT else old, "to": value}
        )

    def cap(self, d: Any, key: str, limit: int | None, path: str, *, minimum: int | None = None) -> None:
        if limit is None or not isinstance(d, dict):
            return
        v = d.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > limit:
            self.set(d, key, max(limit, minimum) if minimum is not None else limit, path)

    def effort(
        self, d: Any, key: str, limit: str | None, path: str, values: tuple[str, ...] = EFFORTS
    ) -> None:
        if limit is None or not isinstance(d, dict):
            return
        v = d.get(key)
        if isinstance(v, str) and v.lower() in values and values.index(v.lower()) > values.index(limit):
            self.set(d, key, limit if v.islower() else limit.upper(), path)


class HardenFilter(Filter):
    """Applies the tier's hardening profile to the request body."""

    name = "harden"

    def __init__(self, spec: HardeningSpec | None = None) -> None:
        self.spec = spec or HardeningSpec()
        # (dialect, tier, harden control) -> (profile, its editor, top-level keys it may touch): resolved
        # once, so a body holding none of those keys (most requests of most tiers) costs one set test.
        self._plans: dict[tuple[str, str, Any], _Plan] = {}

    async def on_request(self, ex: Exchange) -> Reply | None:
        body = ex.json
        dialect = ex.dialect
        if dialect is None or not isinstance(body, dict):
            return None
        key = (dialect.name, ex.tier, ex.controls.get("harden"))
        cache = True
        try:
            plan = self._plans.get(key)
        except TypeError:  # an unhashable control value (not from a rule action): resolve it uncached
            plan, cache = None, False
        if plan is None:
            plan = self._plan(dialect.name, ex)
            if cache:
                if len(self._plans) >= _MAX_PLANS:
                    self._plans.clear()
                self._plans[key] = plan
        profile, apply, keys = plan
        if apply is None or keys.isdisjoint(body):
            return None
        e = _Edit(ex)
        apply(body, profile, e)
        if e.n:
            ex.mark_body_changed()
        return None

    def _plan(self, dialect: str, ex: Exchange) -> _Plan:
        profile = self.spec.profile_for(ex.tier, ex.controls.get("harden"))
        if profile == _NO_HARDENING:
            return profile, None, frozenset()
        apply = _APPLY.get(dialect)
        return profile, apply, touched_keys(dialect, profile)


def touched_keys(dialect: str, p: HardenProfile) -> frozenset[str]:
    """Top-level body fields the editor of ``dialect`` reads under profile ``p`` (not ``_NO_HARDENING``):
    a body without any of them is left as it is. Mirrors ``_chat``/``_responses``/``_anthropic``/``_gemini``."""
    keys: set[str] = set()
    strip_lp = p.logprobs == "strip"
    cap_lp = p.logprobs == "cap" and p.top_logprobs_max is not None
    if dialect == "openai_chat":
        if strip_lp:
            keys |= {"logprobs", "top_logprobs"}
        elif cap_lp:
            keys.add("top_logprobs")
        if p.logit_bias == "strip":
            keys.add("logit_bias")
        if p.n_max is not None:
            keys.add("n")
        if p.max_tokens_max is not None:
            keys |= {"max_tokens", "max_completion_tokens"}
        if p.effort_max is not None:
            keys |= {"reasoning_effort", "reasoning"}
        if p.thinking_budget_max is not None:
            keys |= {"thinking_token_budget", "thinking", "reasoning"}
    elif dialect == "openai_responses":
        if strip_lp:
            keys |= {"top_logprobs", "include"}
        elif cap_lp:
            keys.add("top_logprobs")
        if p.max_tokens_max is not None:
            keys.add("max_output_tokens")
        if p.effort_max is not None:
            keys.add("reasoning")
    elif dialect == "anthropic_messages":
        keys.add("thinking")  # a budget at or over max_tokens is lowered under any profile
        if p.max_tokens_max is not None:
            keys.add("max_tokens")
        if p.effort_max is not None:
            keys.add("output_config")
    elif dialect == "gemini":
        keys |= {"generationConfig", "generation_config"}
    return frozenset(keys)


def _chat(b: dict[str, Any], p: HardenProfile, e: _Edit) -> None:
    if p.logprobs == "strip":
        e.set(b, "logprobs", _ABSENT, "logprobs")
        e.set(b, "top_logprobs", _ABSENT, "top_logprobs")
    elif p.logprobs == "cap":
        e.cap(b, "top_logprobs", p.top_logprobs_max, "top_logprobs")
    if p.logit_bias == "strip":
        e.set(b, "logit_bias", _ABSENT, "logit_bias")
    e.cap(b, "n", p.n_max, "n")
    e.cap(b, "max_tokens", p.max_tokens_max, "max_tokens")
    e.cap(b, "max_completion_tokens", p.max_tokens_max, "max_completion_tokens")
    e.effort(b, "reasoning_effort", p.effort_max, "reasoning_effort")
    e.cap(b, "thinking_token_budget", p.thinking_budget_max, "thinking_token_budget")  # vLLM
    e.cap(b.get("thinking"), "budget_tokens", p.thinking_budget_max, "thinking.budget_tokens")
    r = b.get("reasoning")  # OpenRouter
    e.cap(r, "max_tokens", p.thinking_budget_max, "reasoning.max_tokens")
    e.effort(r, "effort", p.effort_max, "reasoning.effort")


def _responses(b: dict[str, Any], p: HardenProfile, e: _Edit) -> None:
    if p.logprobs == "strip":
        e.set(b, "top_logprobs", _ABSENT, "top_logprobs")
        inc = b.get("include")
        if isinstance(inc, list) and "message.output_text.logprobs" in inc:
            e.set(b, "include", [i for i in inc if i != "message.output_text.logprobs"], "include")
    elif p.logprobs == "cap":
        e.cap(b, "top_logprobs", p.top_logprobs_max, "top_logprobs")
    e.cap(b, "max_output_tokens", p.max_tokens_max, "max_output_tokens")
    e.effort(b.get("reasoning"), "effort", p.effort_max, "reasoning.effort")


def _anthropic(b: dict[str, Any], p: HardenProfile, e: _Edit) -> None:
    e.cap(b, "max_tokens", p.max_tokens_max, "max_tokens")
    t = b.get("thinking")
    # budget_tokens must stay >= 1024 and below max_tokens, or the API answers 400.
    e.cap(t, "budget_tokens", p.thinking_budget_max, "thinking.budget_tokens", minimum=1024)
    mt = b.get("max_tokens")
    if (
        isinstance(t, dict)
        and isinstance(t.get("budget_tokens"), int)
        and isinstance(mt, int)
        and t["budget_tokens"] >= mt
        and mt > 1024
    ):
        e.set(t, "budget_tokens", mt - 1, "thinking.budget_tokens")
    e.effort(b.get("output_config"), "effort", p.effort_max, "output_config.effort")


_LEVELS = ("minimal", "low", "medium", "high", "xhigh")


def _k(d: dict[str, Any], camel: str, snake: str) -> str:
    """The spelling the client used (proto3 JSON accepts both; google-genai mixes them)."""
    return snake if snake in d and camel not in d else camel


def _gemini(b: dict[str, Any], p: HardenProfile, e: _Edit) -> None:
    for gk in ("generationConfig", "generation_config"):
        g = b.get(gk)
        if not isinstance(g, dict):
            continue
        if p.logprobs == "strip":
            e.set(g, _k(g, "responseLogprobs", "response_logprobs"), _ABSENT, f"{gk}.responseLogprobs")
            e.set(g, "logprobs", _ABSENT, f"{gk}.logprobs")
        elif p.logprobs == "cap":
            e.cap(g, "logprobs", p.top_logprobs_max, f"{gk}.logprobs")
        e.cap(g, _k(g, "candidateCount", "candidate_count"), p.n_max, f"{gk}.candidateCount")
        e.cap(g, _k(g, "maxOutputTokens", "max_output_tokens"), p.max_tokens_max, f"{gk}.maxOutputTokens")
        tc = g.get(_k(g, "thinkingConfig", "thinking_config"))
        if isinstance(tc, dict):
            bk = _k(tc, "thinkingBudget", "thinking_budget")
            if p.thinking_budget_max is not None and tc.get(bk) == -1:  # dynamic = unbounded
                e.set(tc, bk, p.thinking_budget_max, f"{gk}.thinkingConfig.thinkingBudget")
            e.cap(tc, bk, p.thinking_budget_max, f"{gk}.thinkingConfig.thinkingBudget")
            if p.effort_max is not None:
                limit = (
                    p.effort_max
                    if p.effort_max in _LEVELS
                    else ("minimal" if p.effort_max == "none" else "xhigh")
                )
                lk = _k(tc, "thinkingLevel", "thinking_level")
                e.effort(tc, lk, limit, f"{gk}.thinkingConfig.thinkingLevel", _LEVELS)


_APPLY: dict[str, Callable[[dict[str, Any], HardenProfile, _Edit], None]] = {
    "openai_chat": _chat,
    "openai_responses": _responses,
    "anthropic_messages": _anthropic,
    "gemini": _gemini,
}
