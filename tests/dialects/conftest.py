"""Helpers shared by the dialect tests: fixture loading, framing at chosen split points, part collection.

Test modules reach the helpers through the session fixture ``wire`` (this module), never by importing
``conftest`` (ambiguous when several test folders have one). ``stream_file`` / ``nonstream_file``
arguments are parametrized over the wire fixtures.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from proxy.dialects import DIALECTS
from proxy.dialects.base import Dialect
from proxy.exchange import Event, Exchange, Part, Usage
from proxy.sse import Framer

WIRE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"

# Fixture file prefix -> dialect name.
PREFIX_DIALECT = {
    "chat": "openai_chat",
    "openai": "openai_chat",
    "responses": "openai_responses",
    "anthropic": "anthropic_messages",
    "gemini": "gemini",
}
PATHS = {
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
    "anthropic_messages": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
}

REASONING_TEXT = (
    "The user asks which is larger, 9.11 or 9.8. Compare the tenths digit: 9.8 has 8 tenths, "
    "9.11 has 1 tenth. So 9.8 is larger."
)
ANSWER = "9.8 is larger than 9.11."


def wire_files() -> list[str]:
    return sorted(p.name for p in WIRE.iterdir() if p.is_file())


def stream_files() -> list[str]:
    return [n for n in wire_files() if n.endswith(".sse") or n.endswith(".stream-noalt.json")]


def nonstream_files() -> list[str]:
    return [n for n in wire_files() if n.endswith(".nonstream.json")]


def load(name: str) -> bytes:
    return (WIRE / name).read_bytes()


def load_json(name: str) -> Any:
    return orjson.loads(load(name))


def dialect_for(name: str) -> Dialect:
    return DIALECTS[PREFIX_DIALECT[name.split(".", 1)[0]]]


def make_ex(dialect: Dialect, body: Any = None, *, path: str | None = None, query: str = "") -> Exchange:
    raw = orjson.dumps(body) if body is not None else b""
    return Exchange(path=path or PATHS[dialect.name], query=query, body=raw, dialect=dialect)


def content_type_for(name: str) -> str:
    return "text/event-stream" if name.endswith(".sse") else "application/json"


def framer_for(name: str) -> Framer:
    """The framer the fixture's dialect picks for its content type (the path makes Gemini a stream)."""
    dialect = dialect_for(name)
    query = "alt=sse" if name.startswith("gemini.") and name.endswith(".sse") else ""
    framer = dialect.framer(make_ex(dialect, {}, query=query), content_type_for(name))
    assert framer is not None
    return framer


def frame(framer: Framer, data: bytes, cuts: Iterable[int] = ()) -> list[Event]:
    """Feed ``data`` cut at the given offsets, then close."""
    events: list[Event] = []
    prev = 0
    for cut in sorted(set(cuts)):
        events += framer.feed(data[prev:cut])
        prev = cut
    events += framer.feed(data[prev:])
    events += framer.close()
    return events


def key(ev: Event) -> tuple[Any, ...]:
    return (ev.name, ev.data, ev.raw, ev.comment)


def keys(events: Sequence[Event]) -> list[tuple[Any, ...]]:
    return [key(e) for e in events]


def reencode(framer: Framer, events: Sequence[Event]) -> bytes:
    return b"".join(framer.encode(e) for e in events) + framer.epilogue()


def stream_parts(dialect: Dialect, events: Iterable[Event]) -> list[Part]:
    out: list[Part] = []
    for ev in events:
        if ev.obj is not None:
            out += dialect.parts(ev.obj)
    return out


def stream_usage(dialect: Dialect, events: Iterable[Event]) -> Usage:
    total = Usage()
    for ev in events:
        if ev.obj is not None:
            u = dialect.usage(ev.obj)
            if u is not None:
                total.merge(u)
    return total


def texts(parts: Iterable[Part], kind: str) -> str:
    return "".join(p.text for p in parts if p.kind == kind)


def kinds(parts: Iterable[Part]) -> set[str]:
    return {p.kind for p in parts}


def fixture_events(name: str) -> list[Event]:
    return frame(framer_for(name), load(name))


# Taken at import: pytest may later rebind the name "conftest" in sys.modules to another folder's file.
_THIS = sys.modules[__name__]


@pytest.fixture(scope="session")
def wire() -> ModuleType:
    return _THIS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "stream_file" in metafunc.fixturenames:
        metafunc.parametrize("stream_file", stream_files())
    if "nonstream_file" in metafunc.fixturenames:
        metafunc.parametrize("nonstream_file", nonstream_files())


def json_values() -> Any:
    """Hypothesis strategy for arbitrary JSON (request bodies and event payloads of any shape)."""
    from hypothesis import strategies as st

    keys = st.sampled_from(
        [
            "model",
            "messages",
            "content",
            "role",
            "type",
            "text",
            "input",
            "contents",
            "parts",
            "choices",
            "delta",
            "usage",
            "reasoning",
            "thinking",
            "tools",
            "stream",
            "response",
            "output",
            "index",
            "x",
        ]
    )
    scalars = (
        st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=5)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=25,
    )


def sdk_request(url: str = "http://127.0.0.1:9/v1/x") -> Any:
    import httpx2

    return httpx2.Request("POST", url)


def sdk_response(status: int, body: Any) -> Any:
    import httpx2

    return httpx2.Response(status, json=body, request=sdk_request())
