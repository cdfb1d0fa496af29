"""Shared state of the fake upstream: options/knobs, recorded requests, counters, issued signatures."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

# ---------------------------------------------------------------- knobs


@dataclass(frozen=True)
class Knobs:
    """Behaviour knobs. Constructor options give the defaults; ``x-fake-*`` request headers override.

    Headers: ``x-fake-delay-ms``, ``x-fake-event-delay-ms``, ``x-fake-chunks``, ``x-fake-status``,
    ``x-fake-fail`` (``reset-before-headers`` | ``reset-mid-stream[=K]`` | ``hang`` |
    ``stall-mid-stream[=K]`` | ``error-mid-stream[=K]`` | ``status=<code>`` | ``gzip``; comma separated),
    ``x-fake-after`` (K, default 2), ``x-fake-gzip``, ``x-fake-strict``.
    """

    delay_ms: float = 0.0
    event_delay_ms: float = 0.0
    chunks: int | None = None
    status: int = 0
    fail: str = ""  # one of: reset-before-headers, reset-mid-stream, hang, stall-mid-stream, error-mid-stream
    after: int = 2
    gzip: bool = False
    strict: bool = False

    @property
    def plain(self) -> bool:
        return not (self.delay_ms or self.event_delay_ms or self.status or self.fail or self.gzip)


_FAIL_MODES = {"reset-before-headers", "reset-mid-stream", "hang", "stall-mid-stream", "error-mid-stream"}


def _truthy(v: str) -> bool:
    return v.strip().lower() not in ("", "0", "false", "no", "off")


def apply_fail_spec(k: Knobs, spec: str) -> Knobs:
    """Parse ``x-fake-fail`` / the ``fail=`` option: ``mode[=value]`` items, comma separated."""
    changes: dict[str, Any] = {}
    for item in spec.split(","):
        item = item.strip().lower()
        if not item:
            continue
        name, _, val = item.partition("=")
        name = name.strip()
        if name == "status":
            changes["status"] = int(val)
        elif name == "gzip":
            changes["gzip"] = True
        elif name in _FAIL_MODES:
            changes["fail"] = name
            if val:
                changes["after"] = int(val)
        else:
            raise ValueError(f"unknown x-fake-fail mode {name!r}")
    return replace(k, **changes)


def knobs_from_headers(base: Knobs, headers: Any) -> Knobs:
    """Overlay the ``x-fake-*`` headers of a request on ``base``. Cheap when there are none."""
    changes: dict[str, Any] = {}
    fail = None
    for key, val in headers.items():
        lk = key.lower()
        if not lk.startswith("x-fake-"):
            continue
        name = lk[7:]
        if name == "delay-ms":
            changes["delay_ms"] = float(val)
        elif name == "event-delay-ms":
            changes["event_delay_ms"] = float(val)
        elif name == "chunks":
            changes["chunks"] = int(val)
        elif name == "status":
            changes["status"] = int(val)
        elif name == "after":
            changes["after"] = int(val)
        elif name == "gzip":
            changes["gzip"] = _truthy(val)
        elif name == "strict":
            changes["strict"] = _truthy(val)
        elif name == "fail":
            fail = val
    if not changes and fail is None:
        return base
    k = replace(base, **changes)
    if fail is not None:
        k = apply_fail_spec(replace(k, fail=""), fail)
        if "after" in changes:
            k = replace(k, after=changes["after"])
    return k


# ---------------------------------------------------------------- recording and counters


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    api: str
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class FakeStats:
    total: int = 0
    in_flight: int = 0
    completed: int = 0
    cancelled: int = 0  # handler cancelled / client went away before the answer was complete
    errors: int = 0  # error answers (knob status, bad request, strict-mode 400)
    resets: int = 0  # connections the server closed on purpose
    by_api: dict[str, int] = field(default_factory=lambda: collections.defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "in_flight": self.in_flight,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "errors": self.errors,
            "resets": self.resets,
            "by_api": dict(self.by_api),
        }


@dataclass(frozen=True)
class RoundtripCheck:
    """One piece of reasoning state the client sent back, compared with what this server issued."""

    api: str  # chat | responses | anthropic | gemini
    kind: str  # reasoning_content | encrypted_content | signature | thoughtSignature
    ref: str  # tool call id / item id / signature prefix
    ok: bool  # byte-exact equal to what the server issued
    detail: str = ""


class FakeState:
    """Per-app state. Reach it with ``app[FAKE_KEY]`` (or ``app["fake"]``)."""

    def __init__(self, *, max_recorded: int = 1000, knobs: Knobs | None = None) -> None:
        self.knobs = knobs or Knobs()
        self.requests: collections.deque[RecordedRequest] = collections.deque(maxlen=max_recorded)
        self.stats = FakeStats()
        self.roundtrip_checks: list[RoundtripCheck] = []
        # signature / encrypted_content / thoughtSignature -> reasoning text it stands for
        self.issued: dict[str, str] = {}
        # chat tool_call id -> reasoning text of the turn that made the call (DeepSeek round trip)
        self.issued_by_call: dict[str, str] = {}
        self.cache: dict[Any, Any] = {}
        self.cache_max = 2048
        self.closing = False

    def record(self, request: web.BaseRequest, body: bytes, api: str) -> None:
        hdrs: dict[str, str] = {}
        for k, v in request.headers.items():
            lk = k.lower()
            hdrs[lk] = f"{hdrs[lk]}, {v}" if lk in hdrs else v
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), hdrs, body, api, time.time())
        )

    MAX_ISSUED = 200_000

    def issue(self, sig: str, reasoning: str) -> None:
        """Remember an opaque reasoning token this server handed out (bounded: oldest half dropped)."""
        _bounded_put(self.issued, sig, reasoning, self.MAX_ISSUED)

    def issue_call(self, call_id: str, value: str) -> None:
        _bounded_put(self.issued_by_call, call_id, value, self.MAX_ISSUED)

    def check(self, api: str, kind: str, ref: str, ok: bool, detail: str = "") -> None:
        if len(self.roundtrip_checks) >= 10000:
            del self.roundtrip_checks[:5000]
        self.roundtrip_checks.append(RoundtripCheck(api, kind, ref, ok, detail))

    def cached(self, key: Any, render: Any) -> Any:
        hit = self.cache.get(key)
        if hit is None:
            hit = render()
            if len(self.cache) >= self.cache_max:
                self.cache.clear()
            self.cache[key] = hit
        return hit

    def clear(self) -> None:
        self.requests.clear()
        self.roundtrip_checks.clear()
        self.stats = FakeStats()


def _bounded_put(d: dict[str, str], k: str, v: str, limit: int) -> None:
    if k not in d and len(d) >= limit:
        for old in list(d)[: limit // 2]:
            del d[old]
    d[k] = v


FAKE_KEY: web.AppKey[FakeState] = web.AppKey("fake", FakeState)


# ---------------------------------------------------------------- error bodies in each API's shape

_OPENAI_ERR = {
    400: ("invalid_request_error", "invalid_request_error"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERR = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(api: str, status: int, message: str | None = None) -> tuple[bytes, dict[str, str]]:
    """(JSON body, extra headers) of an HTTP error answer in the API's own shape."""
    message = message or f"Fake upstream error {status}."
    headers = {"x-should-retry": "false"}
    if status == 429:
        headers["retry-after"] = "1"
    if api == "anthropic":
        etype = _ANTHROPIC_ERR.get(status, "api_error" if status >= 500 else "invalid_request_error")
        body = {"type": "error", "error": {"type": etype, "message": message}, "request_id": "req_fake"}
        headers["request-id"] = "req_fake"
    elif api == "gemini":
        st = _GOOGLE_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        err: dict[str, Any] = {"code": status, "message": message, "status": st}
        if status == 429:
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        body = {"error": err}
    else:
        etype, code = _OPENAI_ERR.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
        headers["x-request-id"] = "req_fake"
    return orjson.dumps(body), headers


def mid_stream_error(api: str, seq: int) -> bytes:
    """One stream event carrying an error, in the API's own in-stream shape."""
    if api == "anthropic":
        return (
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
            b"\n\n"
        )
    if api == "responses":
        d = orjson.dumps(
            {
                "type": "error",
                "sequence_number": seq,
                "code": "server_error",
                "message": "Fake upstream mid-stream error.",
                "param": None,
            }
        )
        return b"event: error\ndata: " + d + b"\n\n"
    if api == "gemini":
        return (
            b'data: {"error":{"code":500,"message":"Fake upstream mid-stream error.","status":"INTERNAL"}}'
            b"\r\n\r\n"
        )
    return (
        b'data: {"error":{"message":"Fake upstream mid-stream error.","type":"server_error","param":null,'
        b'"code":"server_error"}}\n\n'
    )
