"""Anthropic Messages API (``POST …/messages``).

Streams need an ``event: <type>`` line on every event (anthropic-py drops unnamed events). Reasoning
lives in ``thinking`` blocks (``thinking_delta``) and opaque ``redacted_thinking`` blocks; the
``signature_delta`` of a thinking block is opaque too and is reported as OTHER, because it must be kept
for the next turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from proxy import errors
from proxy.dialects.base import Dialect, as_dict, as_effort, as_int, as_list, as_str, content_text
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Event, Message, Part, RequestView, Usage

if TYPE_CHECKING:
    from proxy.exchange import Exchange

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DELTA_KINDS = {
    "thinking_delta": (REASONING, "thinking"),
    "text_delta": (TEXT, "text"),
    "input_json_delta": (TOOL, "partial_json"),
    "signature_delta": (OTHER, ""),
}


_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicMessagesDialect(Dialect):
    """``POST …/messages`` (not ``count_tokens``, batches, or OpenAI Assistants thread messages)."""

    name = "anthropic_messages"
    auth_style = "x-api-key"

    def match(self, method: str, path: str) -> bool:
        path = path.rstrip("/")
        return method == "POST" and path.endswith("/messages") and "/threads/" not in path

    def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
        v = as_int(body.get("max_tokens"))
        return v

    def parse_request(self, body: dict[str, Any], ex: Exchange) -> RequestView:
        # One pass; a turn whose content is a plain string has no blocks to look at (every request the
        # rules read goes through here).
        get = body.get
        messages: list[Message] = []
        for m in as_list(get("messages")):
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            role = role if isinstance(role, str) and role else "user"
            content = m.get("content")
            if isinstance(content, str):
                messages.append(Message(role, content))
                continue
            msg = Message(role, content_text(content))
            for block in as_list(content):
                kind = block.get("type") if isinstance(block, dict) else None
                if kind in ("thinking", "redacted_thinking"):
                    msg.has_reasoning = True
                elif kind in ("tool_use", "server_tool_use"):
                    msg.tool_calls += 1
            messages.append(msg)
        model, system, tools = get("model"), get("system"), get("tools")
        view = RequestView(
            model if isinstance(model, str) else "",
            get("stream") is True,
            messages,
            system if isinstance(system, str) else content_text(system),
            len(tools) if isinstance(tools, list) else 0,
            as_int(get("max_tokens")),
        )
        thinking = get("thinking")
        if isinstance(thinking, dict):
            kind = thinking.get("type")
            if kind in ("enabled", "adaptive", "between_tools"):
                view.reasoning_enabled = True
            elif kind == "disabled":
                view.reasoning_enabled = False
            view.reasoning_budget = as_int(thinking.get("budget_tokens"))
            display = thinking.get("display")
            view.reasoning_display = display if isinstance(display, str) else None
        config = get("output_config")
        if isinstance(config, dict):
            view.reasoning_effort = as_effort(config.get("effort"))
        return view

    def parts(self, obj: Any) -> list[Part]:
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type")
        out: list[Part] = []
        if kind == "content_block_delta":
            delta = as_dict(obj.get("delta"))
            found = _DELTA_KINDS.get(as_str(delta.get("type")))
            idx = _index(obj)
            if found is None:
                out.append(Part(OTHER, "", idx))
            else:
                out.append(Part(found[0], as_str(delta.get(found[1])) if found[1] else "", idx))
        elif kind == "content_block_start":
            _block_part(obj.get("content_block"), _index(obj), out)
        elif kind == "message_delta":
            if isinstance(obj.get("usage"), dict):
                out.append(Part(USAGE))
        elif kind == "message_start":
            _message_parts(as_dict(obj.get("message")), out)
        elif kind == "message":
            _message_parts(obj, out)
        elif kind == "error":
            out.append(Part(OTHER, as_str(as_dict(obj.get("error")).get("message"))))
        return out

    def usage(self, obj: Any) -> Usage | None:
        if not isinstance(obj, dict):
            return None
        u = obj.get("usage")
        if u is None and obj.get("type") == "message_start":
            u = as_dict(obj.get("message")).get("usage")
        if not isinstance(u, dict):
            return None
        # Cached prompt tokens are reported apart from input_tokens; the prompt is their sum.
        inputs = [as_int(u.get(k)) for k in _INPUT_KEYS]
        present = [n for n in inputs if n is not None]
        details = u.get("output_tokens_details")
        thinking = as_int(details.get("thinking_tokens")) if isinstance(details, dict) else None
        return Usage(sum(present) if present else None, as_int(u.get("output_tokens")), thinking)

    def error_body(
        self, status: int, code: str, message: str, request_id: str, *, retry_after: float | None = None
    ) -> dict[str, Any]:
        etype = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        # The SDKs read error.type and error.message and keep the rest of the body: ``code`` rides along.
        return {
            "type": "error",
            "error": {"type": etype, "message": message, "code": code},
            "request_id": request_id,
        }

    def stream_error_events(self, code: str, message: str, request_id: str, ex: Exchange) -> list[Event]:
        body = self.error_body(errors.STATUS.get(code, 500), code, message, request_id)
        return [Event.from_obj(body, name="error")]


def _index(obj: dict[str, Any]) -> int:
    i = obj.get("index")
    return i if isinstance(i, int) else 0


def _block_part(block: Any, idx: int, out: list[Part]) -> None:
    if not isinstance(block, dict):
        return
    kind = block.get("type")
    if kind == "thinking":
        out.append(Part(REASONING, as_str(block.get("thinking")), idx))
    elif kind == "redacted_thinking":
        out.append(Part(REASONING, "", idx))
    elif kind == "text":
        out.append(Part(TEXT, as_str(block.get("text")), idx))
    elif kind in ("tool_use", "server_tool_use"):
        inp = block.get("input")
        out.append(Part(TOOL, "" if not inp else _json_text(inp), idx))
    else:
        out.append(Part(OTHER, "", idx))


def _message_parts(msg: dict[str, Any], out: list[Part]) -> None:
    for i, block in enumerate(as_list(msg.get("content"))):
        _block_part(block, i, out)
    if isinstance(msg.get("usage"), dict):
        out.append(Part(USAGE))


def _json_text(v: Any) -> str:
    return orjson.dumps(v).decode()
