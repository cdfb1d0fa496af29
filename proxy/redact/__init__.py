"""Chain-of-thought redaction: modes and config (``spec``), seal tokens (``seal``), the leak check
(``leak``) and one redaction state machine per wire API (``chat``, ``responses``, ``anthropic``,
``gemini``). Importing this package registers the ``redaction`` and ``hardening`` config sections.

``build_redaction_filters(config)`` returns the filters for the chain, in chain order
(``harden`` then ``redact``): place them after rules and shaping, before forwarding.
"""

from __future__ import annotations

from typing import Any

from proxy.redact import spec as _spec  # registers the config sections

__all__ = ["build_redaction_filters"]


def build_redaction_filters(config: Any, *, clock: Any = None, rules: bool = True) -> list[Any]:
    """``[HardenFilter, RedactFilter]`` configured from ``config.sections`` (defaults when absent).

    With ``rules=False`` (no rule engine that could change a request's mode or profile), a filter
    whose every tier is ``pass`` / ``off`` is left out, so it costs nothing per request or event.
    """
    from proxy.clock import SYSTEM_CLOCK
    from proxy.filters.harden import HardenFilter
    from proxy.filters.redact import RedactFilter

    sections = getattr(config, "sections", {}) or {}
    rspec = sections.get("redaction")
    if rspec is None:
        rspec = _spec.parse_redaction(None, _spec.default_at("redaction"), _spec.Problems())
    hspec = sections.get("hardening") or _spec.HardeningSpec()
    out: list[Any] = []
    if rules or any(p != "off" for p in (*hspec.tiers.values(), hspec.default_profile)):
        out.append(HardenFilter(hspec))
    if rules or any(m != _spec.PASS for m in (*rspec.tiers.values(), rspec.default_mode)):
        out.append(RedactFilter(rspec, clock=clock or SYSTEM_CLOCK))
    return out
