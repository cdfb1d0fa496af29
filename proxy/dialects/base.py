"""What every dialect (one wire API) provides to the rest of the proxy.

Filters never touch vendor JSON directly: they ask the exchange's dialect to read a request into a
``RequestView``, to classify response events into ``Part``s, to read ``Usage`` and to build errors in the
API's own shape (so the official SDK raises the matching exception type).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from proxy import errors
from proxy.errors import Reply
from proxy.exchange import Event, Part, RequestView, Usage
from proxy.sse import Framer, SSEFramer

if TYPE_CHECKING:
    from proxy.exchange import Exchange


class Dialect:
    """Base dialect. Subclasses override the class attributes and the methods marked *override*."""

    name = "generic"
    # Header the upstream credential goes in, and how: "bearer" -> Authorization: Bearer <key>.
    auth_style = "bearer"

    # -- recognising requests -------------------------------------------------------------------

    def match(self, method: str, path: str) -> bool:
        """*override*: True when ``path`` (after any route prefix was stripped) is this API's endpoint."""
        return False

    def parse_request(self, body: dict[str, Any], ex: Exchange) -> RequestView:
        """*override*: the neutral view of a request body (called once, lazily, through ``ex.view``)."""
        return RequestView()

    def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
        """The output-token cap the request asks for. Dialects override it with a direct read, so
        callers that need only this (rate shaping) do not pay for the whole view."""
        return ex.view.max_tokens

    def is_stream_request(self, ex: Exchange) -> bool:
        """Whether the client asked for a streamed answer (from the body, or the path for Gemini)."""
        return ex.view.stream

    # -- responses --------------------------------------------------------------------------------

    def framer(self, ex: Exchange, content_type: str) -> Framer | None:
        """The framer for a streamed response with this content type, or None to buffer the body."""
        if content_type.startswith("text/event-stream"):
            return SSEFramer()
        return None

    def parts(self, obj: Any) -> list[Part]:
        """*override*: classify one stream event payload (or a whole non-streaming body) into parts."""
        return []

    def usage(self, obj: Any) -> Usage | None:
        """*override*: token usage carried by this event payload or body, if any."""
        return None

    # -- errors -----------------------------------------------------------------------------------

    def error_body(
        self, status: int, code: str, message: str, request_id: str, *, retry_after: float | None = None
    ) -> dict[str, Any]:
        """*override*: the JSON error body in this API's shape (``retry_after`` in seconds, if known)."""
        return {"error": {"message": message, "type": _openai_type(status), "param": None, "code": code}}

    def error_reply(
        self,
        code: str,
        message: str,
        request_id: str,
        status: int | None = None,
        *,
        retry_after: float | None = None,
    ) -> Reply:
        status = status or errors.STATUS.get(code, 500)
        body = orjson.dumps(self.error_body(status, code, message, request_id, retry_after=retry_after))
        headers = {
            "Content-Type": "application/json",
            "x-request-id": request_id,
            "x-distillguard-error": code,
        }
        return Reply(status=status, body=body, headers=headers, code=code)

    def stream_error_events(self, code: str, message: str, request_id: str, ex: Exchange) -> list[Event]:
        """*override*: the events that end a started stream with an error the SDK recognises."""
        return [Event.from_obj(self.error_body(500, code, message, request_id))]


def _openai_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
        503: "service_unavailable",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")


openai_error_type = _openai_type


# -- tolerant readers: request bodies are client input, so a wrong type reads as "absent" -------------


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def as_str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def as_int(v: Any) -> int | None:
    """An int (not a bool, which is an int subclass), else None."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def as_bool(v: Any) -> bool | None:
    return v if isinstance(v, bool) else None


def as_effort(v: Any) -> str | None:
    return v.lower() if isinstance(v, str) and v else None


_TEXT_PART_TYPES = frozenset(("text", "input_text", "output_text"))


def content_text(content: Any, types: frozenset[str] = _TEXT_PART_TYPES) -> str:
    """Plain text of a message ``content``: a string, or a list of typed parts whose text is joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    out = [
        p["text"]
        for p in content
        if isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] in types
        and isinstance(p.get("text"), str)
    ]
    return "\n".join(out) if len(out) != 1 else out[0]
