"""Built-in fake reasoning model server (see ``proxy.fake.upstream``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy.fake.content import REASONING_MARKER, answer_for, reasoning_for, signature
from proxy.fake.state import FAKE_KEY, FakeState, FakeStats, Knobs, RecordedRequest, RoundtripCheck

if TYPE_CHECKING:
    from proxy.fake.upstream import FakeUpstream, make_fake_app, start_fake_upstream

__all__ = [
    "FAKE_KEY",
    "REASONING_MARKER",
    "FakeState",
    "FakeStats",
    "FakeUpstream",
    "Knobs",
    "RecordedRequest",
    "RoundtripCheck",
    "answer_for",
    "make_fake_app",
    "reasoning_for",
    "signature",
    "start_fake_upstream",
]

_LAZY = {"FakeUpstream", "make_fake_app", "start_fake_upstream"}


def __getattr__(name: str) -> Any:
    # Lazy, so that ``python -m proxy.fake.upstream`` does not import the module twice.
    if name in _LAZY:
        from proxy.fake import upstream

        return getattr(upstream, name)
    raise AttributeError(name)
