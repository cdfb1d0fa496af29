"""Local replies and the stable error codes distillguard answers with.

A filter that wants to end the request returns a ``Reply`` (already rendered bytes) or, more often,
asks the exchange's dialect to build one with ``ex.error(code, message)``: the body then has the shape
of the caller's own API, so the official SDK raises the matching exception type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Stable codes. Clients, dashboards and rules match on these strings: never rename one.
INVALID_REQUEST = "invalid_request"
UNAUTHENTICATED = "unauthenticated"
BODY_TOO_LARGE = "body_too_large"
RATE_LIMITED = "rate_limited"
POLICY_BLOCKED = "policy_blocked"
UPSTREAM_UNAVAILABLE = "upstream_unavailable"
UPSTREAM_TIMEOUT = "upstream_timeout"
UPSTREAM_STREAM_ERROR = "upstream_stream_error"
REDACTION_FAILED = "redaction_failed"
SHUTTING_DOWN = "shutting_down"
NOT_FOUND = "not_found"
STATE_UNAVAILABLE = "state_unavailable"
INTERNAL = "internal_error"
CLIENT_TIMEOUT = "client_timeout"  # logged only: the client stopped reading a response and was dropped

# The HTTP status each code is answered with.
STATUS = {
    INVALID_REQUEST: 400,
    UNAUTHENTICATED: 401,
    POLICY_BLOCKED: 403,
    NOT_FOUND: 404,
    CLIENT_TIMEOUT: 408,
    BODY_TOO_LARGE: 413,
    RATE_LIMITED: 429,
    INTERNAL: 500,
    REDACTION_FAILED: 500,
    UPSTREAM_UNAVAILABLE: 502,
    UPSTREAM_STREAM_ERROR: 502,
    SHUTTING_DOWN: 503,
    STATE_UNAVAILABLE: 503,
    UPSTREAM_TIMEOUT: 504,
}


@dataclass(slots=True)
class Reply:
    """A complete local answer: status, headers and body bytes. Ends the request side of the chain."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    code: str = ""


class ProxyError(Exception):
    """Raised where a local error reply must be sent; the app renders it in the caller's dialect."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = STATUS.get(code, 500)
        self.headers = headers or {}
