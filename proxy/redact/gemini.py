"""Redaction for Gemini ``generateContent`` / ``streamGenerateContent`` (SSE and JSON-array streams).

Thought parts (``thought: true``) are removed; a thought part that carries a ``thoughtSignature`` is kept
with ``text: ""`` so the signature (which Gemini 3 needs back on function calls) survives byte for byte
(google-genai validates it as base64, so it is never rewritten). ``seal`` behaves as ``omit`` here:
the signature is already Google's own authenticated carrier and the thought text is not needed back.
``placeholder`` puts the marker in the first thought part; ``drop`` removes thought parts with their
signatures. A chunk left with nothing but empty candidates is dropped (google-genai accepts both).
Nothing here ever emits an SSE comment: google-genai fails on them.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from proxy.exchange import Event
from proxy.redact.common import Ctx, RedactionFailed, strings_after, zero_keys

_USAGE_PATH = ("thoughtsTokenCount",)
_SIG = ("thoughtSignature", "thought_signature")
_CHUNK_META = frozenset(("candidates", "usageMetadata", "modelVersion", "responseId", "createTime"))
_KEY = re.compile(rb'"([A-Za-z_]+)"\s*:')
_TO_HEAD = b'{"candidates":[{"content":{"parts":[{"text":"'
_TO_TAIL = b'","thought":true}],"role":"model"},"index":0}]'
_REST_KEYS = frozenset(
    k.encode()
    for k in (
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "totalTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "promptTokensDetails",
        "modality",
        "tokenCount",
        "modelVersion",
        "responseId",
        "createTime",
    )
)


def rewrite_request(body: dict[str, Any], suppress: bool) -> list[str]:
    if not suppress:
        return []
    changes: list[str] = []
    for gk in ("generationConfig", "generation_config"):
        gc = body.get(gk)
        if not isinstance(gc, dict):
            continue
        for tk in ("thinkingConfig", "thinking_config"):
            tc = gc.get(tk)
            if not isinstance(tc, dict):
                continue
            for ik in ("includeThoughts", "include_thoughts"):
                if tc.get(ik) is True:
                    tc[ik] = False
                    changes.append(f"{gk}.{tk}.{ik}=false")
    return changes


class GeminiRedactor:
    """Works on whole bodies and on stream chunks alike (each chunk is a ``GenerateContentResponse``)."""

    __slots__ = ("ctx", "ph_sent")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.ph_sent = False

    def redact(self, obj: Any) -> tuple[bool, bool]:
        """Redact in place: (changed, now empty and droppable)."""
        if not isinstance(obj, dict):
            raise RedactionFailed("unparsable Gemini chunk")
        if "error" in obj:
            return False, False
        ctx = self.ctx
        changed = False
        empty = True
        for cand in obj.get("candidates") or ():
            if not isinstance(cand, dict):
                continue
            if ctx.spec.strip_logprobs:
                for k in ("logprobsResult", "avgLogprobs"):
                    if k in cand:
                        del cand[k]
                        changed = True
            content = cand.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(content, dict) and isinstance(parts, list):
                new, did = self._parts(parts)
                if did:
                    content["parts"] = new
                    changed = True
                if new:
                    empty = False
            if any(k not in ("content", "index") for k in cand):
                empty = False  # finishReason, safetyRatings, citationMetadata, ... must reach the client
        if ctx.zero_usage and zero_keys(obj, ("usageMetadata", *_USAGE_PATH)):
            changed = True
        droppable = changed and empty and bool(obj.get("candidates")) and all(k in _CHUNK_META for k in obj)
        return changed, droppable

    def _parts(self, parts: list[Any]) -> tuple[list[Any], bool]:
        ctx = self.ctx
        out: list[Any] = []
        changed = False
        for p in parts:
            if not isinstance(p, dict) or p.get("thought") is not True:
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    ctx.saw_visible(p["text"])
                out.append(p)
                continue
            changed = True
            text = p.get("text")
            if isinstance(text, str):
                ctx.saw_reasoning(text)
            if ctx.drop:
                continue
            sig = next((k for k in _SIG if p.get(k)), None)
            ph = ctx.placeholder
            if ph and not self.ph_sent:
                self.ph_sent = True
                out.append({**{k: v for k, v in p.items() if k != "text"}, "text": ph})
            elif sig is not None:
                out.append({**{k: v for k, v in p.items() if k != "text"}, "text": ""})
        return out, changed


class GeminiStream:
    __slots__ = ("ctx", "redactor", "rest_shape")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.redactor = GeminiRedactor(ctx)
        self.rest_shape = b"-"

    def on_event(self, ev: Event) -> list[Event]:
        if ev.comment:
            return [ev]
        data = ev.data
        ctx = self.ctx
        # Fast path: no thought, no logprobs, nothing to count; a complete object (a truncated element
        # may have lost its ``"thought": true`` after the text, so it is parsed, and fails closed).
        if (
            b'"thought"' not in data
            and b"ogprobs" not in data
            and not ctx.zero_usage
            and data[:1] == b"{"
            and data[-1:] == b"}"
        ):
            if ctx.stream_check is None:
                return [ev]
            texts = strings_after(data, b'"text":"')
            if texts or b'"text"' not in data:  # else: not the compact form, parsed below
                for t in texts:
                    ctx.saw_visible(t)
                return [ev]
        if self._thought_only(data):
            return []
        obj = ev.obj
        changed, droppable = self.redactor.redact(obj)
        if droppable:
            return []
        if changed:
            ev.set_obj(obj)
        return [ev]

    def _thought_only(self, data: bytes) -> bool:
        """A chunk of nothing but one thought part (what omit/seal/drop drop anyway), recognised unparsed
        in the compact form: the part is the whole ``parts`` list, and the rest of the chunk has only
        usage and identification keys. Anything else is parsed."""
        ctx = self.ctx
        if ctx.placeholder or ctx.zero_usage or not data.startswith(_TO_HEAD):
            return False
        i = len(_TO_HEAD)
        j = data.find(_TO_TAIL, i)
        if j < 0 or data.find(b"\\\\", i, j) >= 0 or data.count(b'"', i, j) != data.count(b'\\"', i, j):
            return False
        rest = data[j + len(_TO_TAIL) :]
        # The keys after the candidates: checked once per shape (numbers aside), then by comparison.
        shape = rest.translate(None, b"0123456789")
        if shape != self.rest_shape:
            if not (set(_KEY.findall(rest)) <= _REST_KEYS and data[-1:] == b"}"):
                return False
            self.rest_shape = shape
        if ctx.index is not None:
            ctx.saw_reasoning(orjson.loads(data[i - 1 : j + 1]))
        return True

    def on_end(self) -> list[Event]:
        return []


def redact_body(obj: Any, ctx: Ctx) -> bool:
    changed, _ = GeminiRedactor(ctx).redact(obj)
    return changed
