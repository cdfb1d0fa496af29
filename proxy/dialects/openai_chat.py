"""OpenAI Chat Completions and the many servers that copy it (DeepSeek, vLLM, SGLang, Ollama, OpenRouter).

Reasoning arrives in one of several places, all of which ``parts`` reports as REASONING:
``reasoning_content`` (DeepSeek, SGLang, llama.cpp), ``reasoning`` (vLLM, Ollama, OpenRouter) and
``reasoning_details[]`` (OpenRouter, may be encrypted), in ``message`` or ``delta``. Reasoning inlined in
``content`` as ``<think>…</think>`` is reported as TEXT here; ``proxy.dialects.think.ThinkSplitter``
separates it for the filters that need to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from proxy import errors
from proxy.dialects.base import (
    Dialect,
    as_bool,
    as_dict,
    as_effort,
    as_int,
    as_list,
    as_str,
    content_text,
    openai_error_type,
)
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Event, Message, Part, RequestView, Usage

if TYPE_CHECKING:
    from proxy.exchange import Exchange

_ROLES = {"developer": "system", "function": "tool"}
_REASONING_KEYS = ("reasoning_content", "reasoning", "reasoning_details")
_MESSAGE_EXTRAS = frozenset((*_REASONING_KEYS, "tool_calls", "function_call"))
# Every body key ``_read_reasoning`` reads: a body with none of them leaves the view's reasoning unset.
_REASONING_BODY_KEYS = frozenset(
    ("reasoning_effort", "include_reasoning", "reasoning", "thinking", "thinking_token_budget", "chat_template_kwargs")
)


class OpenAIChatDialect(Dialect):
    """``POST …/chat/completions``; streams are ``data: <chunk>`` events ending with ``data: [DONE]``."""

    name = "openai_chat"
    auth_style = "bearer"

    def match(self, method: str, path: str) -> bool:
        return method == "POST" and path.rstrip("/").endswith("/chat/completions")

    def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
        v = as_int(body.get("max_completion_tokens"))
        return v if v is not None else as_int(body.get("max_tokens"))

    def parse_request(self, body: dict[str, Any], ex: Exchange) -> RequestView:
        # One pass, no helper call for what the usual request does not carry: this runs on every request
        # the rules read (a message with none of ``_MESSAGE_EXTRAS`` has no reasoning and no tool call;
        # a body with none of ``_REASONING_BODY_KEYS`` sets no reasoning knob).
        get = body.get
        messages: list[Message] = []
        system: list[str] = []
        for m in as_list(get("messages")):
            if not isinstance(m, dict):
                continue
            role = m.get("role")
            role = _ROLES.get(role, role) if isinstance(role, str) and role else "user"
            content = m.get("content")
            text = content if isinstance(content, str) else content_text(content)
            if role == "system" and text:
                system.append(text)
            if _MESSAGE_EXTRAS.isdisjoint(m):
                messages.append(Message(role, text))
            else:
                messages.append(Message(
                    role,
                    text,
                    any(m.get(k) for k in _REASONING_KEYS),
                    len(as_list(m.get("tool_calls"))) + (1 if m.get("function_call") else 0),
                ))
        tools, functions = get("tools"), get("functions")
        cap = get("max_completion_tokens")
        max_tokens = as_int(cap) if cap is not None else None
        if max_tokens is None:
            cap = get("max_tokens")
            max_tokens = as_int(cap) if cap is not None else None
        n = get("n")
        n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
        top = get("top_logprobs")
        bias = get("logit_bias")
        model = get("model")
        view = RequestView(
            model if isinstance(model, str) else "",
            get("stream") is True,
            messages,
            "\n".join(system),
            (len(tools) if isinstance(tools, list) else 0) + (len(functions) if isinstance(functions, list) else 0),
            max_tokens,
            n,
            get("logprobs") is True,
            (as_int(top) or 0) if top is not None else 0,
            isinstance(bias, dict) and bool(bias),
        )
        if not _REASONING_BODY_KEYS.isdisjoint(body):
            _read_reasoning(body, view)
        return view

    def parts(self, obj: Any) -> list[Part]:
        if not isinstance(obj, dict):
            return []
        out: list[Part] = []
        choices = obj.get("choices")
        if isinstance(choices, list):
            for pos, choice in enumerate(choices):
                if not isinstance(choice, dict):
                    continue
                idx = choice.get("index")
                idx = idx if isinstance(idx, int) else pos
                msg = choice.get("delta")
                if msg is None:
                    msg = choice.get("message")
                if isinstance(msg, dict):
                    _message_parts(msg, idx, out)
        if isinstance(obj.get("usage"), dict):
            out.append(Part(USAGE))
        err = obj.get("error")
        if err:
            out.append(Part(OTHER, as_str(as_dict(err).get("message"))))
        return out

    def usage(self, obj: Any) -> Usage | None:
        u = obj.get("usage") if isinstance(obj, dict) else None
        if not isinstance(u, dict):
            return None
        details = u.get("completion_tokens_details")
        reasoning = as_int(details.get("reasoning_tokens")) if isinstance(details, dict) else None
        return Usage(as_int(u.get("prompt_tokens")), as_int(u.get("completion_tokens")), reasoning)

    def stream_error_events(self, code: str, message: str, request_id: str, ex: Exchange) -> list[Event]:
        status = errors.STATUS.get(code, 500)
        body = {"error": {"message": message, "type": openai_error_type(status), "param": None, "code": code}}
        return [Event.from_obj(body)]


def _message_parts(msg: dict[str, Any], idx: int, out: list[Part]) -> None:
    """Parts of one ``message`` (whole body) or ``delta`` (stream chunk), in wire order."""
    rc = msg.get("reasoning_content")
    if isinstance(rc, str) and rc:
        out.append(Part(REASONING, rc, idx))
    r = msg.get("reasoning")
    if isinstance(r, str) and r:
        out.append(Part(REASONING, r, idx))
    details = msg.get("reasoning_details")
    if isinstance(details, list) and details:
        # OpenRouter repeats the text of ``reasoning`` here: report it once, but always flag the details
        # (they may be encrypted or carry only a signature, and are reasoning all the same).
        text = "" if r else "".join(_detail_text(d) for d in details)
        out.append(Part(REASONING, text, idx))
    content = msg.get("content")
    if content:
        text = content_text(content)
        if text:
            out.append(Part(TEXT, text, idx))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        out.append(Part(TEXT, refusal, idx))
    for call in as_list(msg.get("tool_calls")):
        fn = as_dict(as_dict(call).get("function"))
        out.append(Part(TOOL, as_str(fn.get("arguments")), idx))
    fc = msg.get("function_call")
    if isinstance(fc, dict):
        out.append(Part(TOOL, as_str(fc.get("arguments")), idx))


def _detail_text(d: Any) -> str:
    if not isinstance(d, dict):
        return ""
    return as_str(d.get("text")) or as_str(d.get("summary"))


def _read_reasoning(body: dict[str, Any], view: RequestView) -> None:
    """The reasoning knobs of every server that speaks this API; later, more specific ones win."""
    effort = as_effort(body.get("reasoning_effort"))
    if effort is not None:
        view.reasoning_effort = effort
        view.reasoning_enabled = effort != "none"
    include = as_bool(body.get("include_reasoning"))  # OpenRouter (legacy) and vLLM
    if include is True:
        view.reasoning_enabled = True
    elif include is False:
        view.reasoning_display = "omitted"
    r = body.get("reasoning")  # OpenRouter
    if isinstance(r, dict):
        effort = as_effort(r.get("effort"))
        if effort is not None:
            view.reasoning_effort = effort
            view.reasoning_enabled = effort != "none"
        budget = as_int(r.get("max_tokens"))
        if budget is not None:
            view.reasoning_budget = budget
            view.reasoning_enabled = budget > 0
        enabled = as_bool(r.get("enabled"))
        if enabled is not None:
            view.reasoning_enabled = enabled
        if r.get("exclude") is True:
            view.reasoning_display = "omitted"
    thinking = body.get("thinking")  # DeepSeek: {"type": "enabled" | "disabled"}
    if isinstance(thinking, dict):
        kind = thinking.get("type")
        if kind in ("enabled", "disabled"):
            view.reasoning_enabled = kind == "enabled"
        budget = as_int(thinking.get("budget_tokens"))
        if budget is not None:
            view.reasoning_budget = budget
    budget = as_int(body.get("thinking_token_budget"))  # vLLM
    if budget is not None:
        view.reasoning_budget = budget
    kwargs = as_dict(body.get("chat_template_kwargs"))  # vLLM / SGLang templates
    for key in ("enable_thinking", "thinking"):
        flag = as_bool(kwargs.get(key))
        if flag is not None:
            view.reasoning_enabled = flag
