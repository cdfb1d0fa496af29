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


def build_redaction_filters(config: Any, *, clock: Any = None) -> list[Any]:
    """``[HardenFilter, RedactFilter]`` configured from ``config.sections`` (defaults when absent)."""
    from proxy.clock import SYSTEM_CLOCK
    from proxy.filters.harden import HardenFilter
    from proxy.filters.redact import RedactFilter

    sections = getattr(config, "sections", {}) or {}
    rspec = sections.get("redaction")
    if rspec is None:
        rspec = _spec.parse_redaction(None, _spec.default_at("redaction"), _spec.Problems())
    hspec = sections.get("hardening") or _spec.HardeningSpec()
    return [HardenFilter(hspec), RedactFilter(rspec, clock=clock or SYSTEM_CLOCK)]
