"""Deterministic content of the fake reasoning model: answer, reasoning, tokens, signatures, tool args.

Everything here is a pure function of its inputs, so tests can compute what the server will say
(``reasoning_for(prompt)``, ``answer_for(prompt)``) and compare it with what crossed the proxy.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

_TOKEN_RE = re.compile(r"\s*\S+|\s+")
_SECRET = b"distillguard-fake-upstream"

# Phrase present in every reasoning text and in no answer text: handy for "did reasoning leak" asserts.
REASONING_MARKER = "step by step"


def _short(prompt: str, limit: int = 12) -> str:
    words = prompt.split()
    if not words:
        return "(empty prompt)"
    s = " ".join(words[:limit])
    return s + " ..." if len(words) > limit else s


def reasoning_sentences(prompt: str, chunks: int | None = None) -> list[str]:
    """The reasoning as a list of deltas (sentences); joined they give ``reasoning_for(prompt)``."""
    short = _short(prompt)
    base = [
        f'The user wrote {len(prompt.split())} words: "{short}".',
        f" I should think about this {REASONING_MARKER}.",
        " First I restate the question in my own words.",
        f" Then I check the details: the message has {len(prompt)} characters.",
        " Finally I decide to write a short, direct answer.",
    ]
    n = chunks if chunks and chunks > 0 else len(base)
    if n <= len(base):
        return base[:n] if n > 1 else [base[0] + base[1]]
    return base + [f" Step {i}: I keep checking the details." for i in range(len(base) + 1, n + 1)]


def answer_sentences(prompt: str, chunks: int | None = None, tool_result: str | None = None) -> list[str]:
    """The visible answer as a list of deltas; joined they give ``answer_for(prompt)``."""
    if tool_result is not None:
        base = [
            f'The tool returned: "{_short(tool_result)}".',
            f' So, about "{_short(prompt, 6)}":',
            " done.",
        ]
    else:
        base = [
            f'You asked: "{_short(prompt)}".',
            f" It has {len(prompt.split())} words.",
            " That is my answer.",
        ]
    n = chunks if chunks and chunks > 0 else len(base)
    if n <= len(base):
        return base
    return base + [f" More detail {i}." for i in range(len(base) + 1, n + 1)]


def reasoning_for(prompt: str, chunks: int | None = None) -> str:
    """The full reasoning text the server produces for this last-user-message text."""
    return "".join(reasoning_sentences(prompt, chunks))


def answer_for(prompt: str, chunks: int | None = None, tool_result: str | None = None) -> str:
    """The full visible answer the server produces for this last-user-message text."""
    return "".join(answer_sentences(prompt, chunks, tool_result))


def tokens(text: str) -> list[str]:
    """Fake tokenizer: words with their leading whitespace. ``"".join(tokens(t)) == t``."""
    return _TOKEN_RE.findall(text)


def count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def logprob_entries(text: str, top: int) -> list[dict[str, Any]]:
    """Chat Completions ``logprobs.content[]`` entries covering ``text`` exactly."""
    out = []
    for i, tok in enumerate(tokens(text)):
        lp = -round(0.01 + (i % 7) * 0.05, 4)
        b = list(tok.encode())
        alts = [{"token": tok, "logprob": lp, "bytes": b}]
        alts += [
            {"token": f" alt{k}", "logprob": round(lp - k, 4), "bytes": list(f" alt{k}".encode())}
            for k in range(1, top)
        ]
        out.append({"token": tok, "logprob": lp, "bytes": b, "top_logprobs": alts[:top]})
    return out


def signature(kind: str, text: str) -> str:
    """A deterministic opaque signature: base64 (alphanumeric only, no padding) of a hex digest.

    Alphanumeric-only means standard and URL-safe base64 agree, so an SDK that decodes and re-encodes
    it (google-genai) sends back the same string.
    """
    h = hashlib.sha256(_SECRET + kind.encode() + b"\0" + text.encode()).hexdigest()
    return base64.b64encode((h + h[:32]).encode()).decode()


def short_id(*parts: str, n: int = 24) -> str:
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=16).hexdigest()[:n]


def tool_args(schema: Any, prompt: str) -> dict[str, Any]:
    """Arguments for a tool call, derived from the JSON schema of its parameters."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        return {}
    word = next((w.strip("?.,!\"'") for w in reversed(prompt.split()) if w[:1].isupper()), "") or "example"
    out: dict[str, Any] = {}
    for name, sub in props.items():
        t = (sub or {}).get("type") if isinstance(sub, dict) else None
        if isinstance(t, list):
            t = next((x for x in t if x != "null"), None)
        t = str(t).lower() if t else "string"
        if t == "string":
            enum = sub.get("enum") if isinstance(sub, dict) else None
            out[name] = enum[0] if enum else word
        elif t in ("integer", "number"):
            out[name] = 1
        elif t == "boolean":
            out[name] = True
        elif t == "array":
            out[name] = []
        elif t == "object":
            out[name] = {}
        else:
            out[name] = None
    return out


def split_json(s: str, parts: int = 3) -> list[str]:
    """Split a string in ``parts`` pieces (for streamed tool-call arguments)."""
    if not s:
        return [""]
    step = max(1, math.ceil(len(s) / parts))
    return [s[i : i + step] for i in range(0, len(s), step)]


@dataclass(frozen=True)
class Tool:
    name: str
    args: str  # JSON text of the arguments

    @property
    def args_obj(self) -> Any:
        return orjson.loads(self.args)


@dataclass(frozen=True)
class Turn:
    """What one request asks of the fake model; hashable so rendered answers can be cached."""

    model: str
    prompt: str
    stream: bool
    chunks: int | None = None
    tool: Tool | None = None  # answer with a call to this tool
    tool_result: str | None = None  # the last turn is a tool result: answer with text about it
    thinking: bool = True  # produce reasoning at all
    show_thinking: bool = True  # Anthropic display / Gemini includeThoughts / Responses summary
    n: int = 1
    logprobs: int = -1  # -1: none; k >= 0: logprobs with k top_logprobs
    include_usage: bool = False
    prompt_tokens: int = 1
    extra: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def reasoning_parts(self) -> list[str]:
        return reasoning_sentences(self.prompt, self.chunks)

    @property
    def answer_parts(self) -> list[str]:
        return answer_sentences(self.prompt, self.chunks, self.tool_result)


def first_tool(
    tools: Any, prompt: str, *, name_key: str = "name", schema_keys: tuple[str, ...] = ()
) -> Tool | None:
    """The first tool of a request, with arguments derived from its schema."""
    if not isinstance(tools, list) or not tools:
        return None
    t = tools[0]
    if not isinstance(t, dict):
        return None
    if isinstance(t.get("function"), dict):  # Chat Completions {"type":"function","function":{...}}
        t = t["function"]
    name = t.get(name_key) or "tool"
    schema = None
    for k in schema_keys:
        if t.get(k) is not None:
            schema = t[k]
            break
    return Tool(str(name), orjson.dumps(tool_args(schema, prompt)).decode())


def text_of(content: Any, types: tuple[str, ...] = ("text", "input_text")) -> str:
    """Plain text of a message content: a string, or a list of typed text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for p in content:
            if isinstance(p, dict) and p.get("type", "text") in types and isinstance(p.get("text"), str):
                out.append(p["text"])
            elif isinstance(p, str):
                out.append(p)
        return " ".join(out)
    return ""
