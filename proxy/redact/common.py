"""Per-request redaction context shared by the dialect state machines, and small helpers."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from proxy.redact.leak import ReasoningIndex, StreamLeakCheck
from proxy.redact.seal import KeyRing, binary_token
from proxy.redact.spec import DROP, OMIT, PASS, PLACEHOLDER, SEAL, RedactionSpec


class RedactionFailed(RuntimeError):
    """Raised inside a hook when a stream or body cannot be redacted safely (the relay fails closed)."""


def fingerprint(text: str) -> str:
    """What may be logged about reasoning: its length and hash, never the text."""
    return f"[REDACTED len={len(text)} sha256={hashlib.sha256(text.encode()).hexdigest()[:16]}]"


class Ctx:
    """One request's redaction settings and counters. Lives in ``ex.state["redact"]``."""

    __slots__ = (
        "context",
        "dialect",
        "held",
        "index",
        "keyring",
        "mode",
        "model",
        "now",
        "reasoning_chars",
        "sealed",
        "spec",
        "stream_check",
    )

    def __init__(
        self,
        spec: RedactionSpec,
        mode: str,
        dialect: str,
        keyring: KeyRing,
        *,
        context: str,
        now: float,
        model: str = "",
        prompt: str = "",
    ) -> None:
        self.spec = spec
        self.mode = mode
        self.dialect = dialect
        self.keyring = keyring
        self.context = context
        self.now = now
        self.model = model.lower()
        self.reasoning_chars = 0
        self.held = 0  # reasoning characters held for sealing (bounded by seal.max_bytes)
        self.sealed = 0
        self.index: ReasoningIndex | None = None
        self.stream_check: StreamLeakCheck | None = None
        if spec.leak.action != "off" and mode != PASS:
            self.index = ReasoningIndex(spec.leak.min_words, prompt=prompt)
            self.stream_check = StreamLeakCheck(self.index)

    # -- what the mode asks for -------------------------------------------------------------------

    @property
    def hiding(self) -> bool:
        return self.mode != PASS

    @property
    def omit(self) -> bool:
        return self.mode == OMIT

    @property
    def drop(self) -> bool:
        return self.mode == DROP

    @property
    def seal_mode(self) -> bool:
        return self.mode == SEAL

    @property
    def placeholder(self) -> str | None:
        return self.spec.placeholder if self.mode == PLACEHOLDER else None

    @property
    def zero_usage(self) -> bool:
        return self.spec.usage_reasoning_tokens == "zero"

    # -- reasoning seen / visible text seen ----------------------------------------------------------

    def saw_reasoning(self, text: str) -> None:
        if not text:
            return
        self.reasoning_chars += len(text)
        idx = self.index
        if idx is not None and self.reasoning_chars <= self.spec.leak.max_reasoning_bytes:
            idx.add(text)

    def saw_visible(self, text: str) -> None:
        if self.stream_check is not None and text:
            self.stream_check.feed(text)

    def saw_reasoning_raw(self, body: bytes) -> None:
        """``saw_reasoning`` for the body of a JSON string (escapes included), decoded only when needed."""
        self.reasoning_chars += len(body)
        idx = self.index
        if idx is not None and self.reasoning_chars <= self.spec.leak.max_reasoning_bytes:
            idx.add_raw(body)

    def saw_visible_raw(self, body: bytes) -> None:
        if self.stream_check is not None:
            self.stream_check.feed_raw(body)

    def saw_reasoning_bodies(self, bodies: list[bytes], size: int) -> None:
        """``saw_reasoning_raw`` for several bodies in a row (``size``: their total length), indexed as one
        piece when all of it fits under ``leak.max_reasoning_bytes``."""
        n = self.reasoning_chars + size
        idx = self.index
        if idx is None or n <= self.spec.leak.max_reasoning_bytes:
            self.reasoning_chars = n
            if idx is not None:
                idx.add_raw_many(bodies, size)
            return
        for body in bodies:
            self.saw_reasoning_raw(body)

    def saw_visible_bodies(self, bodies: list[bytes], size: int) -> None:
        """``saw_visible_raw`` for several bodies in a row (``size``: their total length)."""
        if self.stream_check is not None:
            self.stream_check.feed_raw_many(bodies, size)

    def hold_raw(self, body: bytes) -> bytes:
        """``hold`` for the body of a JSON string (what is kept is the bytes; decoded when sealed)."""
        self.held += len(body)
        if self.held > self.spec.seal_max_bytes:
            raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
        return body

    def hold(self, text: str) -> str:
        """Account for reasoning kept until its block ends (seal); past ``seal.max_bytes`` fail closed."""
        self.held += len(text)
        if self.held > self.spec.seal_max_bytes:
            raise RedactionFailed("reasoning to seal exceeds seal.max_bytes")
        return text

    def seal(self, payload: Any) -> str:
        self._sealing(payload)
        return self.keyring.seal(payload, context=self.context, now=self.now, ttl=self.spec.seal_ttl)

    def seal_binary(self, payload: Any) -> bytes:
        """``seal``, as the bytes of ``seal.binary_token`` (for a carrier that is base64 itself)."""
        self._sealing(payload)
        kid, blob = self.keyring.seal_blob(payload, context=self.context, now=self.now, ttl=self.spec.seal_ttl)
        return binary_token(kid, blob)

    def _sealing(self, payload: Any) -> None:
        size = _approx_size(payload)
        if size > self.spec.seal_max_bytes:
            raise RedactionFailed(f"reasoning of {size} bytes exceeds seal.max_bytes")
        self.sealed += 1
        self.held = 0


def _approx_size(v: Any) -> int:
    if isinstance(v, str):
        return len(v)
    if isinstance(v, dict):
        return sum(len(k) + _approx_size(x) for k, x in v.items())
    if isinstance(v, list):
        return sum(_approx_size(x) for x in v)
    return 8


def zero_keys(d: Any, path: tuple[str, ...]) -> bool:
    """Set the int at ``path`` inside ``d`` to 0; True when something changed."""
    for k in path[:-1]:
        if not isinstance(d, dict):
            return False
        d = d.get(k)
    if isinstance(d, dict) and isinstance(d.get(path[-1]), int) and d[path[-1]] != 0:
        d[path[-1]] = 0
        return True
    return False


__all__ = [
    "DROP",
    "OMIT",
    "PASS",
    "PLACEHOLDER",
    "SEAL",
    "Ctx",
    "RedactionFailed",
    "fingerprint",
    "zero_keys",
]


def json_body(text: str) -> bytes:
    """The body of ``text`` as a JSON string (no quotes): what ``decode_bodies`` takes back."""
    return orjson.dumps(text)[1:-1]


def decode_bodies(bodies: list[bytes]) -> str:
    """Concatenated JSON string bodies, decoded; fails closed on a body that is not valid alone."""
    try:
        text = orjson.loads(b'"' + b"".join(bodies) + b'"')
    except orjson.JSONDecodeError as e:
        raise RedactionFailed("malformed reasoning string") from e
    if not isinstance(text, str):
        raise RedactionFailed("malformed reasoning string")
    return text


def string_spans(data: bytes, a: int, b: int) -> bool:
    """True when ``data[a:b]`` is the whole body of a JSON string whose closing quote is ``data[b]``:
    every quote inside is escaped (an odd run of backslashes before it) and the body does not end in an
    escaping backslash. ``data[a - 1]`` is the opening quote, so no backslash run starts before ``a``."""
    if b <= a:
        return False
    i = data.find(b'"', a, b)
    while i >= 0:
        k = i
        while k > a and data[k - 1] == 0x5C:
            k -= 1
        if (i - k) % 2 == 0:
            return False  # an unescaped quote: the string ends before b
        i = data.find(b'"', i + 1, b)
    k = b
    while k > a and data[k - 1] == 0x5C:
        k -= 1
    return (b - k) % 2 == 0


def json_string_at(data: bytes, i: int) -> str | None:
    """The JSON string whose opening quote is at ``data[i - 1]``, decoded; None if unterminated."""
    j = data.find(b'"', i)
    while j >= 0:
        k = j
        while k > i and data[k - 1] == 0x5C:  # backslashes before the quote
            k -= 1
        if (j - k) % 2 == 0:
            value = orjson.loads(data[i - 1 : j + 1])
            return value if isinstance(value, str) else None
        j = data.find(b'"', j + 1)
    return None


def strings_after(data: bytes, key: bytes) -> list[str]:
    """Every string value that follows ``key`` (e.g. ``b'"text":"'``) in a compact JSON text."""
    out: list[str] = []
    i = data.find(key)
    while i >= 0:
        v = json_string_at(data, i + len(key))
        if v is None:
            break
        out.append(v)
        i = data.find(key, i + len(key) + len(v))
    return out
