"""Built-in fake reasoning model server (see ``proxy.fake.upstream``)."""

from proxy.fake.content import REASONING_MARKER, answer_for, reasoning_for, signature
from proxy.fake.state import FAKE_KEY, FakeState, FakeStats, Knobs, RecordedRequest, RoundtripCheck
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
