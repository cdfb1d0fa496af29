"""Shared helpers for the redaction tests: run a transcript through a stream redactor at chosen splits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from proxy.dialects import DIALECTS
from proxy.dialects.think import CLOSE
from proxy.exchange import REASONING, TEXT, Event
from proxy.redact import anthropic, chat, chat_stream, gemini, responses
from proxy.redact.common import Ctx
from proxy.redact.seal import KeyRing, new_key_text, parse_keyring
from proxy.redact.spec import RedactionSpec
from proxy.sse import JSONArrayFramer, SSEFramer

WIRE = Path(__file__).resolve().parent.parent / "fixtures" / "wire"
DIALECT_OF = {
    "chat": "openai_chat",
    "responses": "openai_responses",
    "anthropic": "anthropic_messages",
    "gemini": "gemini",
}
STREAMS: dict[str, Any] = {
    "openai_chat": chat_stream.ChatStream,
    "openai_responses": responses.ResponsesStream,
    "anthropic_messages": anthropic.AnthropicStream,
    "gemini": gemini.GeminiStream,
}
BODIES: dict[str, Any] = {
    "openai_chat": chat.redact_body,
    "openai_responses": responses.redact_body,
    "anthropic_messages": anthropic.redact_body,
    "gemini": gemini.redact_body,
}
RING = KeyRing(parse_keyring(new_key_text("t1")))
HIDING = ("omit", "drop", "seal", "placeholder")
# A seal token, as is or base64-encoded (Gemini thoughtSignature form: base64 of "dgs1." starts "ZGdzMS")
TOKEN = re.compile(rb"dgs1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+|ZGdzMS[A-Za-z0-9+/_-]+=*")
MODEL_R1 = "deepseek-ai/deepseek-r1-distill-qwen-7b"


def stream_fixtures() -> list[str]:
    return sorted(
        p.name
        for p in WIRE.iterdir()
        if (p.name.endswith(".sse") or p.name.endswith("stream-noalt.json")) and ".error." not in p.name
    )


def body_fixtures() -> list[str]:
    return sorted(
        p.name for p in WIRE.iterdir() if p.name.endswith(".nonstream.json") and "error" not in p.name
    )


def dialect_of(name: str) -> str:
    return DIALECT_OF[name.split(".")[0]]


def make_ctx(
    dialect: str, mode: str, *, model: str = "", spec: RedactionSpec | None = None, prompt: str = ""
) -> Ctx:
    return Ctx(
        spec or RedactionSpec(),
        mode,
        dialect,
        RING,
        context=f"{dialect}|alice",
        now=1_700_000_000,
        model=model,
        prompt=prompt,
    )


def framer_for(name: str) -> Any:
    if name.endswith(".json"):
        return JSONArrayFramer()
    return SSEFramer(b"\r\n" if name.startswith("gemini") else b"\n")


def model_for(name: str) -> str:
    return MODEL_R1 if "no-open-tag" in name else ""


def run_stream(name: str, data: bytes, mode: str, cuts: list[int], **kw: Any) -> tuple[bytes, list[Event]]:
    """Feed ``data`` cut at ``cuts`` through framer + redactor; return (client bytes, client events)."""
    dialect = dialect_of(name)
    st = STREAMS[dialect](make_ctx(dialect, mode, model=model_for(name), **kw))
    fr = framer_for(name)
    out: list[Event] = []
    prev = 0
    for c in [*sorted(cuts), len(data)]:
        for ev in fr.feed(data[prev:c]):
            out.extend(st.on_event(ev))
        prev = c
    for ev in fr.close():
        out.extend(st.on_event(ev))
    out.extend(st.on_end())
    raw = b"".join(fr.encode(e) for e in out) + fr.epilogue()
    return raw, out


def upstream_events(name: str) -> list[Event]:
    fr = framer_for(name)
    return fr.feed((WIRE / name).read_bytes()) + fr.close()


def strings(obj: Any, out: list[str]) -> list[str]:
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            strings(v, out)
    return out


def texts(dialect: str, events: list[Event], kind: str) -> list[str]:
    d = DIALECTS[dialect]
    return [
        p.text
        for ev in events
        if not ev.comment and ev.obj is not None
        for p in d.parts(ev.obj)
        if p.kind == kind and p.text
    ]


def think_split(content: str) -> tuple[str, str]:
    """(reasoning, visible) of inline ``<think>`` content, by the fixture convention."""
    if CLOSE not in content:
        return "", content
    head, _, tail = content.partition(CLOSE)
    for _ in range(2):
        if tail.startswith("\n"):
            tail = tail[1:]
    return head.replace("<think>", ""), tail


def reasoning_and_visible(name: str, events: list[Event]) -> tuple[list[str], str]:
    """The reasoning pieces an upstream transcript carries, and the visible text a client must get."""
    dialect = dialect_of(name)
    if "think" in name:
        content = "".join(texts(dialect, events, TEXT))
        r, v = think_split(content)
        return [s for s in re.split(r"(?<=\.)\s", r) if s.strip()], v
    return texts(dialect, events, REASONING), "".join(_visible(dialect, events))


def _visible(dialect: str, events: list[Event]) -> list[str]:
    """Visible text as the delta events carry it (one carrier per API, so nothing is counted twice)."""
    out = []
    for ev in events:
        o = ev.obj
        if not isinstance(o, dict):
            continue
        if dialect == "openai_chat":
            for c in o.get("choices") or ():
                v = (c.get("delta") or c.get("message") or {}).get("content")
                if isinstance(v, str):
                    out.append(v)
        elif dialect == "openai_responses":
            if o.get("type") == "response.output_text.delta":
                out.append(o["delta"])
        elif dialect == "anthropic_messages":
            if o.get("type") == "content_block_delta" and o["delta"].get("type") == "text_delta":
                out.append(o["delta"]["text"])
        else:
            for c in o.get("candidates") or ():
                for p in (c.get("content") or {}).get("parts") or ():
                    if isinstance(p.get("text"), str) and not p.get("thought"):
                        out.append(p["text"])
    return out


def visible_of(name: str, events: list[Event]) -> str:
    return "".join(_visible(dialect_of(name), events))


def assert_no_reasoning(pieces: list[str], visible: str, client_events: list[Event], raw: bytes) -> None:
    found = strings([e.obj for e in client_events if e.obj is not None], [])
    blob = "\x00".join(found)
    for piece in pieces:
        p = piece.strip()
        if len(p) < 8 or p in visible:
            continue  # too short to attribute, or also part of the visible answer
        assert p not in blob, f"reasoning leaked: {p[:40]!r}"
        assert orjson.dumps(p)[1:-1] not in raw, f"reasoning bytes leaked: {p[:40]!r}"
