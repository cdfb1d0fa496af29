"""Google Gemini API: ``POST …/models/{model}:generateContent`` and ``:streamGenerateContent``.

The model and streaming come from the path. ``?alt=sse`` streams are ``data: <json>\\r\\n\\r\\n`` with no
``[DONE]``; without it the stream is one JSON array sent element by element. Reasoning is the parts
marked ``thought: true``; ``thoughtSignature`` may sit on any part and must be relayed byte for byte.
google-genai fails on SSE comments and on ``data:`` without a space, so nothing here ever emits either.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from proxy import errors
from proxy.dialects.base import Dialect, as_bool, as_dict, as_effort, as_int, as_list, as_str
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Event, Message, Part, RequestView, Usage
from proxy.sse import Framer, JSONArrayFramer, SSEFramer

if TYPE_CHECKING:
    from proxy.exchange import Exchange

_PATH = re.compile(
    r"/v1(?:beta|alpha)?(?:/[^?]*)?/(models|tunedModels)/([^/:?]+):(generateContent|streamGenerateContent)$"
)
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_ROLES = {"model": "assistant", "function": "tool"}


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    """Gemini's JSON accepts both field spellings (proto3 JSON)."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


class GeminiDialect(Dialect):
    """Gemini ``generateContent`` / ``streamGenerateContent`` under ``/v1``, ``/v1beta`` or ``/v1alpha``."""

    name = "gemini"
    auth_style = "x-goog-api-key"

    def match(self, method: str, path: str) -> bool:
        return method == "POST" and _PATH.search(path.partition("?")[0]) is not None

    def parse_request(self, body: dict[str, Any], ex: Exchange) -> RequestView:
        view = RequestView()
        m = _PATH.search(ex.upstream_path.partition("?")[0]) or _PATH.search(ex.path.partition("?")[0])
        if m is not None:
            view.model = m.group(2) if m.group(1) == "models" else f"tunedModels/{m.group(2)}"
            view.stream = m.group(3) == "streamGenerateContent"
        system = as_dict(_get(body, "systemInstruction", "system_instruction"))
        view.system = _parts_text(system.get("parts"))
        for c in as_list(body.get("contents")):
            if not isinstance(c, dict):
                continue
            parts = as_list(c.get("parts"))
            role = as_str(c.get("role")) or "user"
            msg = Message(_ROLES.get(role, role), _parts_text(parts))
            responses = 0
            for p in parts:
                p = as_dict(p)
                if p.get("thought") is True or _get(p, "thoughtSignature", "thought_signature"):
                    msg.has_reasoning = True
                if _get(p, "functionCall", "function_call") is not None:
                    msg.tool_calls += 1
                if _get(p, "functionResponse", "function_response") is not None:
                    responses += 1
            if parts and responses == len(parts):
                msg.role = "tool"
            view.messages.append(msg)
        for tool in as_list(body.get("tools")):
            decls = as_list(_get(as_dict(tool), "functionDeclarations", "function_declarations"))
            view.tools += len(decls) if decls else 1
        cfg = as_dict(_get(body, "generationConfig", "generation_config"))
        view.max_tokens = as_int(_get(cfg, "maxOutputTokens", "max_output_tokens"))
        n = as_int(_get(cfg, "candidateCount", "candidate_count"))
        view.n = n if n is not None and n > 0 else 1
        view.logprobs = _get(cfg, "responseLogprobs", "response_logprobs") is True
        view.top_logprobs = as_int(cfg.get("logprobs")) or 0
        thinking = as_dict(_get(cfg, "thinkingConfig", "thinking_config"))
        include = as_bool(_get(thinking, "includeThoughts", "include_thoughts"))
        if include is not None:
            view.reasoning_display = "summarized" if include else "omitted"
        budget = as_int(_get(thinking, "thinkingBudget", "thinking_budget"))
        if budget is not None:
            view.reasoning_enabled = budget != 0
            view.reasoning_budget = budget if budget > 0 else None  # -1 = dynamic
        level = as_effort(_get(thinking, "thinkingLevel", "thinking_level"))
        if level is not None:
            view.reasoning_effort = level
        return view

    def is_stream_request(self, ex: Exchange) -> bool:
        return ":streamGenerateContent" in ex.path or ":streamGenerateContent" in ex.upstream_path

    def framer(self, ex: Exchange, content_type: str) -> Framer | None:
        if content_type.startswith("text/event-stream"):
            return SSEFramer(b"\r\n")
        if content_type.startswith("application/json") and self.is_stream_request(ex):
            return JSONArrayFramer()
        return None

    def parts(self, obj: Any) -> list[Part]:
        if not isinstance(obj, dict):
            return []
        out: list[Part] = []
        for pos, cand in enumerate(as_list(obj.get("candidates"))):
            cand = as_dict(cand)
            idx = cand.get("index")
            idx = idx if isinstance(idx, int) else pos
            for p in as_list(as_dict(cand.get("content")).get("parts")):
                if not isinstance(p, dict):
                    continue
                text = p.get("text")
                if p.get("thought") is True:
                    out.append(Part(REASONING, as_str(text), idx))
                elif isinstance(text, str):
                    out.append(Part(TEXT, text, idx))
                elif "functionCall" in p:
                    out.append(Part(TOOL, as_str(as_dict(p["functionCall"]).get("name")), idx))
                else:
                    out.append(Part(OTHER, "", idx))
        if isinstance(obj.get("usageMetadata"), dict):
            out.append(Part(USAGE))
        err = obj.get("error")
        if isinstance(err, dict):
            out.append(Part(OTHER, as_str(err.get("message"))))
        return out

    def usage(self, obj: Any) -> Usage | None:
        u = obj.get("usageMetadata") if isinstance(obj, dict) else None
        if not isinstance(u, dict):
            return None
        candidates = as_int(u.get("candidatesTokenCount"))
        thoughts = as_int(u.get("thoughtsTokenCount"))
        # Output counts thoughts, as in the other APIs, so input + output == totalTokenCount.
        output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
        return Usage(as_int(u.get("promptTokenCount")), output, thoughts)

    def error_body(
        self, status: int, code: str, message: str, request_id: str, *, retry_after: float | None = None
    ) -> dict[str, Any]:
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": code,
                "domain": "distillguard",
                "metadata": {"request_id": request_id},
            }
        ]
        if retry_after is not None and retry_after >= 0:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": _duration(retry_after)}
            )
        status_name = _STATUS.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        return {"error": {"code": status, "message": message, "status": status_name, "details": details}}

    def stream_error_events(self, code: str, message: str, request_id: str, ex: Exchange) -> list[Event]:
        # The same event serves both framings: a ``data:`` line in SSE, an element in a JSON array.
        return [Event.from_obj(self.error_body(errors.STATUS.get(code, 500), code, message, request_id))]


def _parts_text(parts: Any) -> str:
    """Visible text of a parts list (thought parts excluded)."""
    out = [
        p["text"]
        for p in as_list(parts)
        if isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("thought") is not True
    ]
    return "\n".join(out) if len(out) != 1 else out[0]


def _duration(seconds: float) -> str:
    """A google.protobuf.Duration in its JSON form: ``"17s"``, ``"1.5s"``."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
