"""OpenAI Responses API (``POST …/responses``).

Streams are ``event: <type>`` + ``data: {"type": <type>, "sequence_number": n, …}`` with no ``[DONE]``.
Reasoning leaks through five carriers, all reported as REASONING by ``parts``: the
``response.reasoning_*`` events, ``response.content_part.*`` whose part is ``reasoning_text``,
``response.output_item.*`` of a ``reasoning`` item, the ``output`` of the lifecycle events
(``response.created/in_progress/completed/incomplete/failed``) and the ``output`` of a whole body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy.dialects.base import (
    Dialect,
    as_dict,
    as_effort,
    as_int,
    as_list,
    as_str,
    content_text,
)
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Event, Message, Part, RequestView, Usage

if TYPE_CHECKING:
    from proxy.exchange import Exchange

_ROLES = {"developer": "system"}
LIFECYCLE = frozenset(
    (
        "response.created",
        "response.in_progress",
        "response.queued",
        "response.completed",
        "response.incomplete",
        "response.failed",
    )
)
# Event type -> (kind, field holding its text).
_FLAT: dict[str, tuple[str, str]] = {
    "response.reasoning_summary_text.delta": (REASONING, "delta"),
    "response.reasoning_summary_text.done": (REASONING, "text"),
    "response.reasoning_text.delta": (REASONING, "delta"),
    "response.reasoning_text.done": (REASONING, "text"),
    "response.output_text.delta": (TEXT, "delta"),
    "response.output_text.done": (TEXT, "text"),
    "response.refusal.delta": (TEXT, "delta"),
    "response.refusal.done": (TEXT, "refusal"),
    "response.function_call_arguments.delta": (TOOL, "delta"),
    "response.function_call_arguments.done": (TOOL, "arguments"),
    "response.custom_tool_call_input.delta": (TOOL, "delta"),
    "response.custom_tool_call_input.done": (TOOL, "input"),
    "error": (OTHER, "message"),
}
_PART_EVENTS = frozenset(
    (
        "response.content_part.added",
        "response.content_part.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
    )
)
_PART_KINDS = {"reasoning_text": REASONING, "summary_text": REASONING, "output_text": TEXT, "refusal": TEXT}


class OpenAIResponsesDialect(Dialect):
    """``POST …/responses`` (not ``/responses/{id}`` reads, cancels or input-item listings)."""

    name = "openai_responses"
    auth_style = "bearer"

    def match(self, method: str, path: str) -> bool:
        return method == "POST" and path.rstrip("/").endswith("/responses")

    def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
        v = as_int(body.get("max_output_tokens"))
        return v

    def parse_request(self, body: dict[str, Any], ex: Exchange) -> RequestView:
        view = RequestView(model=as_str(body.get("model")), stream=body.get("stream") is True)
        system = [as_str(body.get("instructions"))] if as_str(body.get("instructions")) else []
        inp = body.get("input")
        if isinstance(inp, str):
            view.messages.append(Message("user", inp))
        pending_reasoning = False  # a reasoning item belongs to the assistant turn that follows it
        for item in as_list(inp):
            if not isinstance(item, dict):
                continue
            kind = item.get("type")
            if kind == "reasoning":
                pending_reasoning = True
            elif kind in ("function_call", "custom_tool_call"):
                last = view.messages[-1] if view.messages else None
                if last is not None and last.role == "assistant" and last.tool_calls:
                    last.tool_calls += 1
                    last.has_reasoning = last.has_reasoning or pending_reasoning
                else:
                    view.messages.append(Message("assistant", "", pending_reasoning, 1))
                pending_reasoning = False
            elif kind in ("function_call_output", "custom_tool_call_output"):
                view.messages.append(Message("tool", content_text(item.get("output"))))
            elif kind == "message" or (kind is None and "role" in item):
                role = as_str(item.get("role")) or "user"
                role = _ROLES.get(role, role)
                text = content_text(item.get("content"))
                if role == "system" and text:
                    system.append(text)
                has_reasoning = pending_reasoning and role == "assistant"
                view.messages.append(Message(role, text, has_reasoning))
                pending_reasoning = pending_reasoning and not has_reasoning
        if pending_reasoning:
            view.messages.append(Message("assistant", "", True))
        view.system = "\n".join(system)
        view.tools = len(as_list(body.get("tools")))
        view.max_tokens = as_int(body.get("max_output_tokens"))
        view.top_logprobs = as_int(body.get("top_logprobs")) or 0
        include = as_list(body.get("include"))
        view.logprobs = view.top_logprobs > 0 or "message.output_text.logprobs" in include
        r = as_dict(body.get("reasoning"))
        effort = as_effort(r.get("effort"))
        if effort is not None:
            view.reasoning_effort = effort
            view.reasoning_enabled = effort != "none"
        summary = r.get("summary") or r.get("generate_summary")
        view.reasoning_display = summary if isinstance(summary, str) else None
        return view

    def parts(self, obj: Any) -> list[Part]:
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type")
        if kind is None:
            kind = "response"  # a whole non-streaming body may lack "type"
        elif not isinstance(kind, str):
            return []
        out: list[Part] = []
        idx = obj.get("output_index")
        idx = idx if isinstance(idx, int) else 0
        flat = _FLAT.get(kind)
        if flat is not None:
            out.append(Part(flat[0], as_str(obj.get(flat[1])), idx))
        elif kind in _PART_EVENTS:
            part = as_dict(obj.get("part"))
            ptype = as_str(part.get("type"))
            text = as_str(part.get("refusal" if ptype == "refusal" else "text"))
            out.append(Part(_PART_KINDS.get(ptype, OTHER), text, idx))
        elif kind == "response.output_item.added" or kind == "response.output_item.done":
            _item_parts(obj.get("item"), idx, out)
        elif kind in LIFECYCLE:
            _response_parts(as_dict(obj.get("response")), out)
        elif kind == "response":
            _response_parts(obj, out)  # a whole non-streaming body
        return out

    def usage(self, obj: Any) -> Usage | None:
        if not isinstance(obj, dict):
            return None
        r = obj.get("response")
        u = r.get("usage") if isinstance(r, dict) else obj.get("usage")
        if not isinstance(u, dict):
            return None
        details = u.get("output_tokens_details")
        reasoning = as_int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
        return Usage(as_int(u.get("input_tokens")), as_int(u.get("output_tokens")), reasoning)

    def stream_error_events(self, code: str, message: str, request_id: str, ex: Exchange) -> list[Event]:
        # sequence_number must stay increasing. Upstream numbers start at 0, one per event, so the count
        # of events read is above the last one seen; a filter may record the exact last one in ex.state.
        last = as_dict(ex.state.get(self.name)).get("last_sequence")
        seq = max(ex.events_in, last + 1 if isinstance(last, int) else 0)
        body = {"type": "error", "code": code, "message": message, "param": None, "sequence_number": seq}
        return [Event.from_obj(body, name="error")]


def _response_parts(resp: dict[str, Any], out: list[Part]) -> None:
    for i, item in enumerate(as_list(resp.get("output"))):
        _item_parts(item, i, out)
    if isinstance(resp.get("usage"), dict):
        out.append(Part(USAGE))
    err = resp.get("error")
    if isinstance(err, dict):
        out.append(Part(OTHER, as_str(err.get("message"))))


def _item_parts(item: Any, idx: int, out: list[Part]) -> None:
    if not isinstance(item, dict):
        return
    kind = as_str(item.get("type"))
    if kind == "reasoning":
        texts = [as_str(as_dict(p).get("text")) for p in as_list(item.get("summary"))]
        texts += [as_str(as_dict(p).get("text")) for p in as_list(item.get("content"))]
        out.append(Part(REASONING, "".join(texts), idx))
    elif kind == "message":
        for p in as_list(item.get("content")):
            p = as_dict(p)
            ptype = as_str(p.get("type"))
            text = as_str(p.get("refusal" if ptype == "refusal" else "text"))
            out.append(Part(_PART_KINDS.get(ptype, OTHER), text, idx))
    elif kind == "function_call":
        out.append(Part(TOOL, as_str(item.get("arguments")), idx))
    elif kind == "custom_tool_call":
        out.append(Part(TOOL, as_str(item.get("input")), idx))
    elif kind.endswith("_call"):
        out.append(Part(TOOL, "", idx))
    else:
        out.append(Part(OTHER, "", idx))
