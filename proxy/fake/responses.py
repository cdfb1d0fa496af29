"""OpenAI Responses API: reasoning item (summary, reasoning_text, encrypted_content), message, tools."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.fake.content import Tool, Turn, count_tokens, first_tool, short_id, signature, split_json, text_of
from proxy.fake.state import FakeState, Knobs

CREATED = 1767225605
SUMMARY_TITLES = ("**Thinking it through**", "**Concluding**")


def parse(payload: dict[str, Any], state: FakeState, knobs: Knobs) -> Turn | tuple[int, str]:
    model = str(payload.get("model") or "o4-mini")
    inp = payload.get("input")
    items: list[Any] = [{"role": "user", "content": inp}] if isinstance(inp, str) else (inp or [])
    if not isinstance(items, list) or not items:
        return 400, "Missing required parameter: 'input'."
    prompt = ""
    for it in reversed(items):
        if isinstance(it, dict) and it.get("role") == "user":
            prompt = text_of(it.get("content"))
            break
    prev: Any = None
    for it in items:
        if not isinstance(it, dict):
            continue
        typ = it.get("type")
        if typ == "reasoning" and it.get("encrypted_content") is not None:
            enc = it["encrypted_content"]
            state.check("responses", "encrypted_content", str(it.get("id", "")), enc in state.issued)
        elif typ == "function_call" and knobs.strict:
            if not (isinstance(prev, dict) and prev.get("type") == "reasoning"):
                rs = state.issued_by_call.get("resp:" + str(it.get("call_id")), "rs_unknown")
                return 400, (
                    f"Item '{it.get('id')}' of type 'function_call' was provided without its required "
                    f"'reasoning' item: '{rs}'."
                )
        prev = it
    last = items[-1] if isinstance(items[-1], dict) else {}
    tool_result = None
    if last.get("type") == "function_call_output":
        out = last.get("output")
        tool_result = out if isinstance(out, str) else text_of(out, ("input_text", "text", "output_text"))
    tool: Tool | None = None
    tools = [t for t in payload.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    if tools and tool_result is None:
        tool = first_tool(tools, prompt, schema_keys=("parameters",))
    r = payload.get("reasoning")
    show = True if not isinstance(r, dict) else bool(r.get("summary") or r.get("generate_summary"))
    return Turn(
        model=model,
        prompt=prompt,
        stream=bool(payload.get("stream")),
        chunks=knobs.chunks,
        tool=tool,
        tool_result=tool_result,
        show_thinking=show,
        prompt_tokens=count_tokens(orjson.dumps(items).decode()) // 2 + 1,
    )


def summary_parts(turn: Turn) -> list[list[str]]:
    """Summary parts as lists of deltas: two parts, each a title and half of the reasoning sentences."""
    rp = turn.reasoning_parts
    half = max(1, len(rp) // 2)
    out = []
    for title, sents in zip(SUMMARY_TITLES, (rp[:half], rp[half:]), strict=True):
        if sents:
            out.append([title, "\n\n" + sents[0].lstrip(), *sents[1:]])
    return out


def _ev(typ: str, seq: int, **fields: Any) -> bytes:
    return (
        b"event: "
        + typ.encode()
        + b"\ndata: "
        + orjson.dumps({"type": typ, "sequence_number": seq, **fields})
        + b"\n\n"
    )


def render(turn: Turn, state: FakeState) -> bytes | list[bytes]:
    h = short_id(turn.model, turn.prompt, str(turn.tool), str(turn.tool_result), str(turn.chunks), n=32)
    rid, rs_id, msg_id, fc_id, call_id = "resp_" + h, "rs_" + h, "msg_" + h, "fc_" + h, "call_" + h[:24]
    oss = "oss" in turn.model.lower()
    reasoning = "".join(turn.reasoning_parts)
    parts = summary_parts(turn) if turn.show_thinking and not oss else []
    r_item: dict[str, Any] = {
        "id": rs_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "".join(p)} for p in parts],
    }
    if oss:
        r_item["content"] = [{"type": "reasoning_text", "text": reasoning}]
        r_item["encrypted_content"] = None
    else:
        enc = "gAAAAAB" + signature("responses", reasoning)
        r_item["encrypted_content"] = enc
        state.issue(enc, reasoning)
    r_item["status"] = "completed"
    if turn.tool:
        state.issue_call("resp:" + call_id, rs_id)
        args = turn.tool.args
        second: dict[str, Any] = {
            "id": fc_id,
            "type": "function_call",
            "status": "completed",
            "arguments": args,
            "call_id": call_id,
            "name": turn.tool.name,
        }
        visible = args
    else:
        aparts = turn.answer_parts
        visible = "".join(aparts)
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": visible}
        second = {
            "id": msg_id,
            "type": "message",
            "status": "completed",
            "content": [part],
            "role": "assistant",
        }
    rt = count_tokens(reasoning)
    ot = rt + count_tokens(visible)
    usage = {
        "input_tokens": turn.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": ot,
        "output_tokens_details": {"reasoning_tokens": rt},
        "total_tokens": turn.prompt_tokens + ot,
    }
    resp: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": turn.model,
        "output": [r_item, second],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": "medium", "summary": "auto" if parts else None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }
    if not turn.stream:
        return orjson.dumps(resp)

    ev: list[bytes] = []

    def add(typ: str, **fields: Any) -> None:
        ev.append(_ev(typ, len(ev), **fields))

    pending = {**resp, "status": "in_progress", "output": [], "usage": None}
    add("response.created", response=pending)
    add("response.in_progress", response=pending)
    added: dict[str, Any] = {"id": rs_id, "type": "reasoning", "summary": []}
    if oss:
        added.update(content=[], status="in_progress")
    add("response.output_item.added", output_index=0, item=added)
    base = {"item_id": rs_id, "output_index": 0}
    for si, deltas in enumerate(parts):
        text = "".join(deltas)
        add(
            "response.reasoning_summary_part.added",
            **base,
            summary_index=si,
            part={"type": "summary_text", "text": ""},
        )
        for d in deltas:
            add(
                "response.reasoning_summary_text.delta",
                **base,
                summary_index=si,
                delta=d,
                obfuscation="xQ3vZ",
            )
        add("response.reasoning_summary_text.done", **base, summary_index=si, text=text)
        add(
            "response.reasoning_summary_part.done",
            **base,
            summary_index=si,
            part={"type": "summary_text", "text": text},
        )
    if oss:
        add(
            "response.content_part.added",
            **base,
            content_index=0,
            part={"type": "reasoning_text", "text": ""},
        )
        for d in turn.reasoning_parts:
            add("response.reasoning_text.delta", **base, content_index=0, delta=d)
        add("response.reasoning_text.done", **base, content_index=0, text=reasoning)
        add(
            "response.content_part.done",
            **base,
            content_index=0,
            part={"type": "reasoning_text", "text": reasoning},
        )
    add("response.output_item.done", output_index=0, item=r_item)
    if turn.tool:
        add(
            "response.output_item.added",
            output_index=1,
            item={**second, "status": "in_progress", "arguments": ""},
        )
        for d in split_json(second["arguments"]):
            add(
                "response.function_call_arguments.delta",
                item_id=fc_id,
                output_index=1,
                delta=d,
                obfuscation="k2",
            )
        add(
            "response.function_call_arguments.done",
            item_id=fc_id,
            output_index=1,
            arguments=second["arguments"],
            name=second["name"],
        )
    else:
        add(
            "response.output_item.added",
            output_index=1,
            item={
                "id": msg_id,
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            },
        )
        mb = {"item_id": msg_id, "output_index": 1, "content_index": 0}
        add(
            "response.content_part.added",
            **mb,
            part={"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        )
        for d in turn.answer_parts:
            add("response.output_text.delta", **mb, delta=d, logprobs=[], obfuscation="k2Lm")
        add("response.output_text.done", **mb, text=visible, logprobs=[])
        add("response.content_part.done", **mb, part=second["content"][0])
    add("response.output_item.done", output_index=1, item=second)
    add("response.completed", response=resp)
    return ev
