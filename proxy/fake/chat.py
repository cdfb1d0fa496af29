"""OpenAI Chat Completions: parsing and rendering in the reasoning flavour chosen by the model name."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.fake.content import (
    Turn,
    count_tokens,
    first_tool,
    logprob_entries,
    short_id,
    signature,
    split_json,
    text_of,
)
from proxy.fake.state import FakeState, Knobs

CREATED = 1767225600


def flavour(model: str) -> str:
    """``think-noopen`` | ``think`` | ``openrouter`` | ``reasoning`` | ``plain`` | ``reasoning_content``."""
    m = model.lower()
    if "think-noopen" in m:
        return "think-noopen"
    if "think" in m:
        return "think"
    if "openrouter" in m:
        return "openrouter"
    if "vllm" in m or "ollama" in m:
        return "reasoning"
    if "plain" in m:
        return "plain"
    return "reasoning_content"


def parse(payload: dict[str, Any], state: FakeState, knobs: Knobs) -> Turn | tuple[int, str]:
    model = str(payload.get("model") or "fake-model")
    messages = payload.get("messages") or []
    if not isinstance(messages, list) or not messages:
        return 400, "'messages' must be a non-empty array."
    fl = flavour(model)
    prompt = ""
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            prompt = text_of(m.get("content"))
            break
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    for m in messages:
        if (
            isinstance(m, dict)
            and m.get("role") == "assistant"
            and (m.get("tool_calls") or m.get("reasoning_details"))
        ):
            err = _check_assistant(m, fl, state, knobs)
            if err:
                return 400, err
    tool_result = text_of(last.get("content")) if last.get("role") == "tool" else None
    tool = None
    if payload.get("tools") and last.get("role") == "user":
        tool = first_tool(payload["tools"], prompt, schema_keys=("parameters",))
    so = payload.get("stream_options") or {}
    lp = int(payload.get("top_logprobs") or 0) if payload.get("logprobs") else -1
    return Turn(
        model=model,
        prompt=prompt,
        stream=bool(payload.get("stream")),
        chunks=knobs.chunks,
        tool=tool,
        tool_result=tool_result,
        thinking=fl != "plain",
        n=max(1, int(payload.get("n") or 1)),
        logprobs=lp,
        include_usage=bool(so.get("include_usage")),
        prompt_tokens=sum(count_tokens(text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        + 3,
    )


def _check_assistant(m: dict[str, Any], fl: str, state: FakeState, knobs: Knobs) -> str | None:
    for d in m.get("reasoning_details") or []:
        if isinstance(d, dict) and d.get("signature"):
            sig = d["signature"]
            state.check("chat", "reasoning_details.signature", sig[:16], sig in state.issued)
    sent = m.get("reasoning_content", m.get("reasoning"))
    for tc in m.get("tool_calls") or []:
        cid = tc.get("id", "") if isinstance(tc, dict) else ""
        issued = state.issued_by_call.get(cid)
        if issued is not None or sent is not None:
            state.check(
                "chat",
                "reasoning_content",
                cid,
                issued is not None and sent == issued,
                "missing" if sent is None else ("" if issued is not None else "unknown tool call id"),
            )
    if knobs.strict and fl in ("reasoning_content", "reasoning") and m.get("tool_calls") and not sent:
        return "The `reasoning_content` in the thinking mode must be passed back to the API."
    return None


def _ids(turn: Turn) -> tuple[str, str]:
    h = short_id(turn.model, turn.prompt, str(turn.tool), str(turn.tool_result), str(turn.chunks))
    return "chatcmpl-" + h, "call_" + h[:20]


def _usage(turn: Turn, reasoning: str, visible: str, fl: str) -> dict[str, Any]:
    r = count_tokens(reasoning) * turn.n if turn.thinking else 0
    c = r + count_tokens(visible) * turn.n
    u: dict[str, Any] = {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": c,
        "total_tokens": turn.prompt_tokens + c,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": r},
    }
    if fl == "openrouter":
        u["cost"] = round(c * 1e-5, 6)
        u["is_byok"] = False
    return u


def render(turn: Turn, state: FakeState) -> bytes | list[bytes]:
    fl = flavour(turn.model)
    rparts = turn.reasoning_parts if turn.thinking else []
    reasoning = "".join(rparts)
    aparts = [] if turn.tool else turn.answer_parts
    answer = "".join(aparts)
    cid, call_id = _ids(turn)
    sig = signature("openrouter", reasoning) if fl == "openrouter" else ""
    if sig:
        state.issue(sig, reasoning)
    if turn.tool and fl in ("reasoning_content", "reasoning"):
        state.issue_call(call_id, reasoning)
    think_prefix = {"think": "<think>\n", "think-noopen": ""}.get(fl)
    args = turn.tool.args if turn.tool else ""
    visible = answer + args
    if think_prefix is not None:
        inline = think_prefix + reasoning + "\n</think>\n\n"
    usage = _usage(turn, reasoning, visible, fl)
    finish = "tool_calls" if turn.tool else "stop"

    if not turn.stream:
        content: str | None = answer if not turn.tool else None
        msg: dict[str, Any] = {"role": "assistant", "content": content}
        if think_prefix is not None:
            msg["content"] = inline + answer
        elif fl == "reasoning_content":
            msg["reasoning_content"] = reasoning
        elif fl == "reasoning":
            msg["reasoning"] = reasoning
        elif fl == "openrouter":
            msg["reasoning"] = reasoning
            msg["reasoning_details"] = [
                {
                    "type": "reasoning.text",
                    "text": reasoning,
                    "signature": sig,
                    "id": None,
                    "format": "anthropic-claude-v1",
                    "index": 0,
                }
            ]
        if turn.tool:
            msg["tool_calls"] = [
                {"id": call_id, "type": "function", "function": {"name": turn.tool.name, "arguments": args}}
            ]
        lp = None
        if turn.logprobs >= 0 and msg["content"]:
            lp = {"content": logprob_entries(msg["content"], turn.logprobs), "refusal": None}
        choices = []
        for i in range(turn.n):
            ch: dict[str, Any] = {"index": i, "message": msg, "logprobs": lp, "finish_reason": finish}
            if fl == "openrouter":
                ch["native_finish_reason"] = "tool_use" if turn.tool else "end_turn"
            choices.append(ch)
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": CREATED,
            "model": turn.model,
            "choices": choices,
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }
        if fl == "openrouter":
            body["provider"] = "FakeProvider"
        return orjson.dumps(body)

    # ---- stream: a list of deltas (delta, finish_reason), shared by every choice
    steps: list[dict[str, Any]] = []
    if fl == "reasoning_content":
        steps.append({"role": "assistant", "content": None, "reasoning_content": ""})
        steps += [{"content": None, "reasoning_content": s} for s in rparts]
        steps += [{"content": s, "reasoning_content": None} for s in aparts]
    elif fl in ("reasoning", "plain"):
        steps.append({"role": "assistant", "content": ""})
        steps += [{"reasoning": s} for s in rparts]
        steps += [{"content": s} for s in aparts]
    elif fl == "openrouter":
        det = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}
        steps += [
            {"role": "assistant", "content": "", "reasoning": s, "reasoning_details": [{**det, "text": s}]}
            for s in rparts
        ]
        steps.append(
            {
                "role": "assistant",
                "content": "",
                "reasoning": None,
                "reasoning_details": [{**det, "signature": sig}],
            }
        )
        steps += [
            {"role": "assistant", "content": s, "reasoning": None, "reasoning_details": []} for s in aparts
        ]
    else:
        steps.append({"role": "assistant", "content": ""})
        pieces = (["<think>", "\n"] if fl == "think" else []) + rparts + ["\n", "</think>", "\n\n"]
        steps += [{"content": s} for s in pieces]
        steps += [{"content": s} for s in aparts]
    if turn.tool:
        first = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": turn.tool.name, "arguments": ""},
        }
        steps.append({"tool_calls": [first]})
        steps += [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in split_json(args)]
    final: dict[str, Any] = {"content": ""}
    if fl == "reasoning_content":
        final["reasoning_content"] = None
    elif fl == "openrouter":
        final = {"role": "assistant", "content": "", "reasoning": None, "reasoning_details": []}

    head = (
        b'data: {"id":"'
        + cid.encode()
        + b'","object":"chat.completion.chunk","created":'
        + str(CREATED).encode()
    )
    head += b',"model":' + orjson.dumps(turn.model) + b',"system_fingerprint":"fp_fake"'
    if fl == "openrouter":
        head += b',"provider":"FakeProvider"'
    tail = b',"usage":null}\n\n' if turn.include_usage else b"}\n\n"
    events: list[bytes] = [b": OPENROUTER PROCESSING\n\n"] if fl == "openrouter" else []
    want_lp = turn.logprobs >= 0
    for j, d in enumerate([*steps, final]):
        fr = finish if j == len(steps) else None
        lp = None
        if want_lp and isinstance(d.get("content"), str) and d["content"]:
            lp = {"content": logprob_entries(d["content"], turn.logprobs), "refusal": None}
        for i in range(turn.n):
            ch = {"index": i, "delta": d, "logprobs": lp, "finish_reason": fr}
            if fl == "openrouter":
                ch["native_finish_reason"] = None if fr is None else ("tool_use" if turn.tool else "end_turn")
            events.append(head + b',"choices":' + orjson.dumps([ch]) + tail)
    if fl == "openrouter":
        ch = {
            "index": 0,
            "delta": final,
            "logprobs": None,
            "finish_reason": finish,
            "native_finish_reason": "tool_use" if turn.tool else "end_turn",
        }
        events.append(
            head + b',"choices":' + orjson.dumps([ch]) + b',"usage":' + orjson.dumps(usage) + b"}\n\n"
        )
    elif turn.include_usage:
        events.append(head + b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\n")
    events.append(b"data: [DONE]\n\n")
    return events
