"""Imports every module that registers a top-level config section, so loading a config knows them all.

Kept apart from ``proxy.config`` because those modules import ``proxy.config`` themselves.
"""

from __future__ import annotations

import proxy.policy.settings
import proxy.redact
import proxy.shaping
import proxy.state.config  # noqa: F401  (state)
