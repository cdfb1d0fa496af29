"""One ``Exchange`` per request: everything filters know and decide about it.

Filters keep compiled config only; anything that belongs to one request lives here (``ex.state`` is a
per-filter scratch dict keyed by the filter's name).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from proxy.accounts import Account
    from proxy.config import UpstreamSpec
    from proxy.dialects.base import Dialect
    from proxy.errors import Reply


# --------------------------------------------------------------------------- stream events


class Event:
    """One unit of a response stream: an SSE event (or a comment), or one element of a JSON-array stream.

    ``raw`` holds the exact bytes received, terminator included; it is relayed as is while no filter
    changed the event. ``set_obj`` replaces the payload and clears ``raw`` so the framer re-encodes it.
    """

    __slots__ = ("_obj", "_parsed", "comment", "data", "name", "raw")

    def __init__(
        self,
        data: bytes,
        *,
        name: str | None = None,
        raw: bytes | None = None,
        comment: bool = False,
    ) -> None:
        self.name = name
        self.data = data
        self.raw = raw
        self.comment = comment
        self._obj: Any = None
        self._parsed = False

    @property
    def obj(self) -> Any:
        """The JSON payload, parsed once on first use; ``None`` for comments, ``[DONE]`` and non-JSON."""
        if not self._parsed:
            self._parsed = True
            if not self.comment and self.data and self.data[:1] in (b"{", b"["):
                try:
                    self._obj = orjson.loads(self.data)
                except orjson.JSONDecodeError:
                    self._obj = None
        return self._obj

    def set_obj(self, obj: Any) -> None:
        """Replace the payload; the event will be re-serialised on the way out."""
        self._obj = obj
        self._parsed = True
        self.data = orjson.dumps(obj)
        self.raw = None

    @classmethod
    def from_obj(cls, obj: Any, name: str | None = None) -> Event:
        ev = cls(orjson.dumps(obj), name=name)
        ev._obj = obj
        ev._parsed = True
        return ev

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        kind = "comment" if self.comment else (self.name or "data")
        return f"<Event {kind} {self.data[:60]!r}{' raw' if self.raw is not None else ''}>"


# --------------------------------------------------------------------------- neutral views


@dataclass(slots=True)
class Message:
    """One turn of the conversation as the client sent it, reduced to role and plain text."""

    role: str  # system | user | assistant | tool
    text: str
    has_reasoning: bool = False  # the client sent reasoning / thinking back in this turn
    tool_calls: int = 0


@dataclass(slots=True)
class RequestView:
    """The dialect-neutral reading of a request body, parsed once by the dialect."""

    model: str = ""
    stream: bool = False
    messages: list[Message] = field(default_factory=list)
    system: str = ""
    tools: int = 0
    max_tokens: int | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    logit_bias: bool = False
    # Reasoning/thinking as requested: enabled (None = API default), budget tokens, effort, summary/display.
    reasoning_enabled: bool | None = None
    reasoning_budget: int | None = None
    reasoning_effort: str | None = None
    reasoning_display: str | None = None

    @property
    def prompt_text(self) -> str:
        """System prompt and user turns joined, for signals that look at what the client asked."""
        parts = [self.system] if self.system else []
        parts.extend(m.text for m in self.messages if m.role == "user")
        return "\n".join(parts)

    @property
    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.role == "user":
                return m.text
        return ""


@dataclass(slots=True)
class Usage:
    """Token counts read from a response body or stream. ``None`` means the upstream did not say."""

    input: int | None = None
    output: int | None = None
    reasoning: int | None = None

    def merge(self, other: Usage) -> None:
        """Later usage reports win field by field (streams repeat running totals)."""
        if other.input is not None:
            self.input = other.input
        if other.output is not None:
            self.output = other.output
        if other.reasoning is not None:
            self.reasoning = other.reasoning

    @property
    def total(self) -> int:
        return (self.input or 0) + (self.output or 0)


# Kinds of response parts a dialect classifies.
TEXT = "text"
REASONING = "reasoning"
TOOL = "tool"
USAGE = "usage"
OTHER = "other"


@dataclass(slots=True)
class Part:
    """A classified piece of a response: what kind it is and the text it carries (if any)."""

    kind: str
    text: str = ""
    index: int = 0  # choice / candidate / block index where the API has one


# --------------------------------------------------------------------------- the exchange


_ID_PREFIX = "dg-" + os.urandom(6).hex()
# Counting from 16**10 gives ids of one fixed width (11 hex digits) for the first 16**11 - 16**10
# requests without a format spec (``hex`` is a third of the cost of ``f"{n:010x}"``).
_id_counter = itertools.count(16**10)


def new_request_id() -> str:
    """Unique per process run: a random per-process prefix and a counter (cheaper than urandom per id)."""
    return _ID_PREFIX + hex(next(_id_counter))[2:]


class Exchange:
    """Everything about one request, from arrival to the access-log line.

    Set by the app: ``request_id``, ``method``, ``path`` (as the client sent it), ``upstream_path``,
    ``query``, ``headers`` (the client's, read-only), ``client_ip`` and ``peer_ip`` (the TCP peer),
    ``route``, ``dialect``, ``body``.
    Set by identify: ``account``, ``key_id``. Filters may rewrite ``json`` (then call ``mark_body_changed``),
    ``upstream_headers``, and add to ``decisions``/``tags``.
    """

    __slots__ = (
        "_json",
        "_json_error",
        "_model",
        "_tags",
        "_user_agent",
        "_view",
        "account",
        "body",
        "body_changed",
        "bytes_in",
        "bytes_out",
        "client_gone",
        "client_ip",
        "controls",
        "decisions",
        "dialect",
        "error_code",
        "events_in",
        "events_out",
        "features",
        "headers",
        "key_id",
        "method",
        "path",
        "peer_ip",
        "query",
        "reply_headers",
        "request_id",
        "response_changed",
        "response_headers",
        "route",
        "started",
        "state",
        "status",
        "streaming",
        "t0",
        "t_end",
        "t_first_byte",
        "t_headers",
        "t_upstream",
        "upstream_headers",
        "upstream_path",
        "upstream_request_id",
        "usage",
        "usage_body",
        "waited",
    )

    def __init__(
        self,
        *,
        method: str = "POST",
        path: str = "/",
        query: str = "",
        headers: Any = None,
        client_ip: str = "127.0.0.1",
        body: bytes = b"",
        dialect: Dialect | None = None,
        route: UpstreamSpec | None = None,
        upstream_path: str | None = None,
        started: float = 0.0,
        request_id: str | None = None,
    ) -> None:
        self.request_id = request_id or _ID_PREFIX + hex(next(_id_counter))[2:]  # new_request_id(), inlined
        self.method = method
        self.path = path
        self.upstream_path = upstream_path if upstream_path is not None else path
        self.query = query
        self.headers = headers if headers is not None else {}
        self.client_ip: str = client_ip
        self.peer_ip: str = client_ip  # the TCP peer (identify may set client_ip from X-Forwarded-For)
        self._user_agent: str | None = None  # read from the headers on first use
        self.route = route
        self.dialect = dialect
        self.body = body
        self._json: Any = None
        self._json_error: str | None = None
        self._view: RequestView | None = None
        self._model: str | None = None  # kept by release_request() when the parsed body is dropped
        self.body_changed = False
        self.upstream_headers: dict[str, str] = {}
        self.account: Account | None = None
        self.key_id: str | None = None
        self.status = 0
        self.response_headers: dict[str, str] = {}
        self.reply_headers: dict[str, str] = {}  # headers filters add to whatever goes to the client
        self.streaming = False
        self.usage = Usage()
        # A buffered response body whose usage the app reads after the response is sent (set by the
        # relay only when no filter hook could look at ``usage`` before that).
        self.usage_body: bytes | None = None
        self.decisions: list[dict[str, Any]] = []
        self._tags: set[str] | None = None  # created on first use (memory per open stream)
        self.state: dict[str, Any] = {}
        self.error_code: str | None = None
        self.started = started
        self.t0 = 0.0  # monotonic arrival time; the t_* fields below are monotonic too
        self.t_upstream = 0.0
        self.t_headers = 0.0  # upstream response headers arrived
        self.waited = 0.0  # seconds spent waiting on purpose (shaping delay queues), not overhead
        self.t_first_byte = 0.0
        self.t_end = 0.0
        self.bytes_in = len(body)
        self.bytes_out = 0
        self.events_in = 0
        self.events_out = 0
        self.client_gone = False
        self.response_changed = False  # set by on_response hooks that edited the body in place
        self.upstream_request_id: str | None = None
        # Request features computed by the signals step (rules read them; shaping reads cluster keys).
        self.features: dict[str, Any] = {}
        # Controls set by rule actions for this request, read by later filters. Known keys:
        # "throttle" (float multiplier on rate limits), "pace_tps" (streamed tokens per second),
        # "redaction" (mode name), "harden" (profile name), "cut_tokens" (end the stream past N tokens).
        self.controls: dict[str, Any] = {}

    # -- request body ---------------------------------------------------------------------------

    @property
    def json(self) -> Any:
        """The request body parsed once with orjson (``None`` if empty or not JSON)."""
        if self._json is None and self._json_error is None and self.body:
            try:
                self._json = orjson.loads(self.body)
            except orjson.JSONDecodeError as e:
                self._json_error = str(e)
        return self._json

    @property
    def json_error(self) -> str | None:
        _ = self.json
        return self._json_error

    @property
    def view(self) -> RequestView:
        """The neutral request view, built once by the dialect (an empty view for unknown paths)."""
        if self._view is None:
            if self.dialect is not None and isinstance(self.json, dict):
                self._view = self.dialect.parse_request(self.json, self)
            else:
                self._view = RequestView()
        return self._view

    def mark_body_changed(self, what: str | None = None) -> None:
        """Call after editing ``ex.json`` in place: the body is re-serialised before forwarding."""
        self.body_changed = True
        self._view = None
        if what:
            self.decisions.append({"filter": "request", "change": what})

    def outgoing_body(self) -> bytes:
        if self.body_changed and self._json is not None:
            return orjson.dumps(self._json)
        return self.body

    # -- replies ----------------------------------------------------------------------------------

    def error(self, code: str, message: str, *, headers: dict[str, str] | None = None) -> Reply:
        """A local error reply in this request's dialect (a generic OpenAI-shaped body for unknown paths)."""
        from proxy.dialects import GENERIC

        self.error_code = code
        dialect = self.dialect or GENERIC
        reply = dialect.error_reply(code, message, self.request_id)
        if headers:
            reply.headers.update(headers)
        return reply

    @property
    def tags(self) -> set[str]:
        """Labels filters attach to this request (access and audit logs)."""
        if self._tags is None:
            self._tags = set()
        return self._tags

    @tags.setter
    def tags(self, value: set[str]) -> None:
        self._tags = value

    def release_request(self) -> None:
        """Called once the request has been sent upstream: drop the raw and parsed body (a long stream
        would otherwise hold them to its end). The view, if a filter built one, stays."""
        body = self._json
        if self._view is None and body is not None:
            dialect = self.dialect
            if isinstance(body, dict) and dialect is not None and dialect.name != "gemini":
                m = body.get("model")  # (what ``model`` reads, without two property calls per request)
                self._model = m if isinstance(m, str) else ""
            else:
                self._model = self.model or ""
        self._json = None
        self._json_error = "released"
        self.body = b""

    @property
    def model(self) -> str | None:
        """The model asked for, without building the full view when nothing else needed it."""
        m = self._model
        if m is not None:
            return m or None
        dialect = self.dialect
        if self._view is None and dialect is not None and dialect.name != "gemini":
            body = self._json
            if body is None:
                body = self.json  # (parses the body if nothing did yet)
            m = body.get("model") if isinstance(body, dict) else None
            return m if isinstance(m, str) else None
        return self.view.model or None if dialect is not None else None

    @property
    def max_tokens(self) -> int | None:
        """The output-token cap asked for, read directly when no view was built."""
        if self._view is None:
            dialect = self.dialect
            if dialect is not None:
                body = self._json
                if body is None:
                    body = self.json  # (parses the body if nothing did yet)
                if isinstance(body, dict):
                    return dialect.max_tokens_of(body, self)
        return self.view.max_tokens

    @property
    def user_agent(self) -> str:
        ua = self._user_agent
        if ua is None:
            ua = self._user_agent = self.headers.get("User-Agent", "") or ""
        return ua

    @user_agent.setter
    def user_agent(self, value: str) -> None:
        self._user_agent = value

    @property
    def tier(self) -> str:
        return self.account.tier if self.account is not None else "none"

    @property
    def account_id(self) -> str | None:
        return self.account.id if self.account is not None else None
