"""Redaction for Gemini ``generateContent`` / ``streamGenerateContent`` (SSE and JSON-array streams).

Thought parts (``thought: true``) are removed; a thought part that carries a ``thoughtSignature`` is kept
with ``text: ""`` so the signature (which Gemini 3 needs back on function calls) survives byte for byte
(google-genai validates it as base64, so Google's own signatures are never rewritten).

``seal``: each run of thought parts becomes one part ``{"text": "", "thought": true, "thoughtSignature":
<seal>}`` where ``<seal>`` is the base64 of the seal token in its binary form (``seal.binary_token``: the
ciphertext is not base64-encoded twice; the text form of older parts is still accepted). google-genai
decodes the field to bytes and encodes it again, URL-safe, when the client sends the part back: both
alphabets are accepted. It holds the thoughts' text and the signature of the run's last thought part,
if any. The sealed part takes the place of a thought part that carried a signature, or goes just before
the first non-thought part that ends the run, or at the end of the candidate's parts when the chunk
finishes it (``finishReason``); a
stream that ends with a run still open gets one more chunk holding it. On the way in, ``rewrite_request``
turns such a part back into ``{"text": <thoughts>, "thought": true}`` (plus the original signature).
Signatures on non-thought parts (function calls, answer text) are Google's and are left alone.

``placeholder`` puts the marker in the first thought part; ``drop`` removes thought parts with their
signatures. A chunk left with nothing but empty candidates is dropped (google-genai accepts both).
Nothing here ever emits an SSE comment: google-genai fails on them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from proxy.exchange import Event
from proxy.redact.common import Ctx, RedactionFailed, decode_bodies, json_body, strings_after, zero_keys
from proxy.redact.seal import KeyRing, parse_binary_token

_USAGE_PATH = ("thoughtsTokenCount",)
_SIG = ("thoughtSignature", "thought_signature")
_CHUNK_META = frozenset(("candidates", "usageMetadata", "modelVersion", "responseId", "createTime"))
_KEY = re.compile(rb'"([A-Za-z_]+)"\s*:')
_TO_HEAD = b'{"candidates":[{"content":{"parts":[{"text":"'
_TO_TAIL = b'","thought":true}],"role":"model"},"index":0}]'
_TV_TAIL = b'"}],"role":"model"},"index":0}]'
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


_SEALED_B64 = "ZGdzMS"  # how base64 of b"dgs1." (the seal token prefix) starts, in both alphabets


def seal_signature(token: bytes) -> str:
    """A seal token (``seal.binary_token``: ``thoughtSignature`` is base64 already, so the ciphertext is
    not encoded twice) in the form ``thoughtSignature`` takes."""
    return binascii.b2a_base64(token, newline=False).decode("ascii")


def sealed_blob(sig: Any) -> tuple[str, bytes] | None:
    """(key id, ``nonce || ciphertext``) of a seal token inside a ``thoughtSignature`` we made (binary or
    text form), or None for any other signature. Raises ``SealError`` for one of ours that is broken."""
    if not isinstance(sig, str) or not sig.startswith(_SEALED_B64):
        return None
    try:
        raw = base64.b64decode(sig.replace("-", "+").replace("_", "/") + "=" * (-len(sig) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return parse_binary_token(raw)


def rewrite_request(
    body: dict[str, Any], ctx: Ctx | None, keyring: KeyRing, context: str, now: float, suppress: bool
) -> list[str]:
    """Restore sealed thought parts in ``contents``; ask for ``includeThoughts: false`` when hiding."""
    changes: list[str] = []
    restored = 0
    contents = body.get("contents")
    for c in contents if isinstance(contents, list) else ():
        parts = c.get("parts") if isinstance(c, dict) else None
        for i, p in enumerate(parts if isinstance(parts, list) else ()):
            if not isinstance(p, dict):
                continue
            sk = next((k for k in _SIG if k in p), None)
            found = sealed_blob(p.get(sk)) if sk is not None else None
            if found is None:
                continue
            payload = keyring.open_blob(found[0], found[1], context=context, now=now)
            if not isinstance(payload, dict) or not isinstance(payload.get("t"), str):
                raise RedactionFailed("sealed thought part has an unexpected payload")
            part: dict[str, Any] = {"text": payload["t"], "thought": True}
            if isinstance(payload.get("s"), str):
                part[sk or "thoughtSignature"] = payload["s"]
            parts[i] = part  # type: ignore[index]
            restored += 1
    if restored:
        changes.append(f"restored {restored} sealed thought part(s)")
    if not suppress:
        return changes
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
    """Works on whole bodies and on stream chunks alike (each chunk is a ``GenerateContentResponse``).
    ``held``: per candidate index, the thought text of the run being sealed (JSON string bodies)."""

    __slots__ = ("ctx", "held", "ph_sent")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.ph_sent = False
        self.held: dict[int, list[bytes]] = {}

    def redact(self, obj: Any, *, whole: bool = False) -> tuple[bool, bool]:
        """Redact in place: (changed, now empty and droppable). ``whole``: a complete body (seal every
        run of thoughts in it), not one chunk of a stream."""
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
            idx = cand.get("index", 0)
            ends = whole or cand.get("finishReason") is not None
            if isinstance(content, dict) and isinstance(parts, list):
                new, did = self._parts(parts, idx if isinstance(idx, int) else 0, ends)
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

    def _parts(self, parts: list[Any], idx: int, ends: bool) -> tuple[list[Any], bool]:
        ctx = self.ctx
        out: list[Any] = []
        changed = False
        for p in parts:
            if not isinstance(p, dict) or p.get("thought") is not True:
                if isinstance(p, dict) and isinstance(p.get("text"), str):
                    ctx.saw_visible(p["text"])
                if idx in self.held:
                    out.append(self.sealed_part(idx, None))
                    changed = True
                out.append(p)
                continue
            changed = True
            text = p.get("text")
            if isinstance(text, str):
                ctx.saw_reasoning(text)
            if ctx.drop:
                continue
            sig = next((k for k in _SIG if p.get(k)), None)
            if ctx.seal_mode:
                held = self.held.setdefault(idx, [])
                if isinstance(text, str) and text:
                    held.append(ctx.hold_raw(json_body(text)))
                if sig is not None:
                    out.append(self.sealed_part(idx, p[sig]))
                continue
            ph = ctx.placeholder
            if ph and not self.ph_sent:
                self.ph_sent = True
                out.append({**{k: v for k, v in p.items() if k != "text"}, "text": ph})
            elif sig is not None:
                out.append({**{k: v for k, v in p.items() if k != "text"}, "text": ""})
        if ends and idx in self.held:
            out.append(self.sealed_part(idx, None))
            changed = True
        return out, changed

    def hold_raw(self, idx: int, body: bytes) -> None:
        """Thought text (a JSON string body) read off a chunk that was not parsed (seal)."""
        self.held.setdefault(idx, []).append(self.ctx.hold_raw(body))

    def sealed_part(self, idx: int, sig: Any) -> dict[str, Any]:
        """The part that stands for candidate ``idx``'s run of thoughts; the run ends here."""
        payload: dict[str, Any] = {"t": decode_bodies(self.held.pop(idx, []))}
        if isinstance(sig, str):
            payload["s"] = sig
        return {"text": "", "thought": True, "thoughtSignature": seal_signature(self.ctx.seal_binary(payload))}

    def flush(self) -> list[Event]:
        """Runs of thoughts still open at the end of a stream, in one chunk of their own."""
        if not self.held:
            return []
        cands = [
            {"content": {"parts": [self.sealed_part(i, None)], "role": "model"}, "index": i}
            for i in sorted(self.held)
        ]
        return [Event.from_obj({"candidates": cands})]


class GeminiStream:
    """Per-stream state. Fast path: a chunk of one text part and nothing else in the compact form
    (``{"candidates":[{"content":{"parts":[{"text":"…"}],"role":"model"},"index":0}]`` then only usage and
    identification keys) is recognised on its bytes: a thought is dropped (its text read off the bytes
    for seal and the leak check), an answer relayed as it came. The text must hold no quote and end in
    no backslash; the keys after the candidates are checked once per shape (digits aside) and must be
    spelt without escapes. Anything else is parsed."""

    __slots__ = ("cap", "ctx", "fast_ok", "hot", "lean", "quick", "redactor", "rest_last", "rest_ok")

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.redactor = GeminiRedactor(ctx)
        self.fast_ok = not (ctx.placeholder or ctx.zero_usage)
        self.lean = not ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        # seal without the leak check: the hot path keeps thought bodies itself (no calls)
        self.quick = ctx.seal_mode and ctx.index is None and ctx.stream_check is None
        self.cap = ctx.spec.seal_max_bytes
        self.rest_last = b"-"  # the last rest of a chunk found valid, compared byte for byte first
        self.rest_ok: set[bytes] = set()  # valid rest shapes (digits removed), a few at most
        # The compact chunk that matched last: (what follows the text, a thought?), tried first; None while
        # the bytes after the text change from chunk to chunk (usage counts that grow).
        self.hot: tuple[bytes, bool] | None = None

    def on_event(self, ev: Event) -> list[Event]:
        """The hot path: the compact chunk that matched last (``_compact``), its text followed by the very
        same bytes. The text holds no quote (so it ends where that tail starts) and does not end in a
        backslash (which would escape its closing quote). Anything else: ``_event``."""
        hot = self.hot
        if hot is None:
            return self._event(ev)
        data = ev.data
        tail, thought = hot
        # removeprefix / removesuffix return their input itself when it does not match
        rest = data.removeprefix(_TO_HEAD)
        body = rest.removesuffix(tail)
        if rest is not data and body is not rest and body and 34 not in body and body[-1] != 92 and not ev.comment:
            if thought:
                if self.lean:
                    self.ctx.reasoning_chars += len(body)
                elif self.quick:  # the body kept as it came, decoded once when sealed
                    ctx = self.ctx
                    ctx.reasoning_chars += len(body)
                    ctx.held += len(body)
                    if ctx.held > self.cap:
                        raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
                    held = self.redactor.held
                    if 0 in held:
                        held[0].append(body)
                    else:
                        held[0] = [body]
                else:
                    self._thought(body)
                return []
            if self.lean:
                return [ev]
            if not self.redactor.held:  # else a sealed run ends here: parsed
                if self.ctx.stream_check is not None:
                    self.ctx.saw_visible_raw(body)
                return [ev]
        return self._event(ev)

    def _thought(self, body: bytes) -> None:
        """A thought's text (a JSON string body) read off the bytes: counted, indexed, held to seal."""
        ctx = self.ctx
        if ctx.index is not None:
            ctx.saw_reasoning_raw(body)
        else:
            ctx.reasoning_chars += len(body)
        if ctx.seal_mode:
            self.redactor.hold_raw(0, body)

    def _event(self, ev: Event) -> list[Event]:
        if ev.comment:
            return [ev]
        data = ev.data
        ctx = self.ctx
        if self.fast_ok and data.startswith(_TO_HEAD):
            out = self._compact(ev, data)
            if out is not None:
                return out
        # No thought, no logprobs, nothing to count, no sealed run to close; a complete object (a
        # truncated element may have lost its ``"thought": true`` after the text, so it is parsed, and
        # fails closed). A key may be spelt with escapes (``"\\u0074hought"``): any ``\\u`` is parsed.
        if (
            b'"thought"' not in data
            and b"ogprobs" not in data
            and b"\\u" not in data
            and not ctx.zero_usage
            and not self.redactor.held
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
        obj = ev.obj
        changed, droppable = self.redactor.redact(obj)
        if droppable:
            return []
        # A duplicate "thought" key or a key spelt with escapes: parsers may disagree on what the raw
        # bytes say, so the client gets the object as parsed and checked here.
        if changed or b'"thought"' in data or b"\\u" in data:
            ev.set_obj(obj)
        return [ev]

    def _compact(self, ev: Event, data: bytes) -> list[Event] | None:
        """The fast path for a chunk starting with ``_TO_HEAD``: [] (a thought, dropped), [event] (an
        answer, relayed) or None (parse it)."""
        i = len(_TO_HEAD)
        q = data.find(b'"', i)  # the end of the text, if it holds no (escaped) quote
        if q < 0 or data[q - 1] == 0x5C:
            return None
        if data.startswith(_TO_TAIL, q):
            thought = True
            r = q + len(_TO_TAIL)
        elif data.startswith(_TV_TAIL, q):
            if self.redactor.held:
                return None  # a sealed run ends here: the sealed part goes into this chunk
            thought = False
            r = q + len(_TV_TAIL)
        else:
            return None
        if data.endswith(self.rest_last) and len(data) - r == len(self.rest_last):
            self.hot = (data[q:], thought)  # the same bytes as the last compact chunk's: worth trying first
        else:
            rest = data[r:]
            shape = rest.translate(None, b"0123456789")
            if shape not in self.rest_ok:
                if not (
                    b"\\" not in rest and set(_KEY.findall(rest)) <= _REST_KEYS and rest.endswith(b"}")
                ):
                    return None
                if len(self.rest_ok) < 8:
                    self.rest_ok.add(shape)
            self.rest_last = rest
            self.hot = None
        if not thought:
            if self.ctx.stream_check is not None:
                self.ctx.saw_visible_raw(data[i:q])
            return [ev]
        self._thought(data[i:q])
        return []

    def on_end(self) -> list[Event]:
        return self.redactor.flush()


def redact_body(obj: Any, ctx: Ctx) -> bool:
    changed, _ = GeminiRedactor(ctx).redact(obj, whole=True)
    return changed
