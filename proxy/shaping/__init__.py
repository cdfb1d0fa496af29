"""Rate shaping: limit specs (``spec``), the limiter (``limiter``), fair delay queues (``queue``),
limit headers (``headers``) and metrics (``metrics``). The chain filter is ``proxy.filters.shape``.

Importing this package registers the ``limits:`` top-level config section.
"""

from __future__ import annotations

from proxy.config import register_section
from proxy.shaping.spec import LimitSpec, LimitSpecError, limits_section, parse_limits

register_section("limits", limits_section)

__all__ = ["LimitSpec", "LimitSpecError", "limits_section", "parse_limits"]
