"""Anthropic Messages API: thinking (with signature), text and tool_use blocks."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.fake.content import Turn, count_tokens, first_tool, short_id, signature, split_json, text_of
from proxy.fake.state import FakeState, Knobs

_MISSING_THINKING = (
    "messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{t}`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
    "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult "
    "our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)


def parse(payload: dict[str, Any], state: FakeState, knobs: Knobs) -> Turn | tuple[int, str]:
    model = str(payload.get("model") or "claude-fake")
    messages = payload.get("messages") or []
    if not isinstance(messages, list) or not messages:
        return 400, "messages: Field required"
    cfg = payload.get("thinking") or {}
    thinking = isinstance(cfg, dict) and cfg.get("type") in ("enabled", "adaptive")
    show = not (isinstance(cfg, dict) and cfg.get("display") == "omitted")
    prompt = ""
    tool_result = None
    last_tool_turn = -1
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if m.get("role") == "user":
            if isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content
            ):
                if i == len(messages) - 1:
                    tr = next(b for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
                    c = tr.get("content")
                    tool_result = c if isinstance(c, str) else text_of(c)
                txt = text_of([b for b in content if isinstance(b, dict) and b.get("type") == "text"])
            else:
                txt = text_of(content)
            if txt:
                prompt = txt
        elif m.get("role") == "assistant" and isinstance(content, list):
            for j, b in enumerate(content):
                if not isinstance(b, dict):
                    continue
                if b.get("type") == "thinking":
                    sig = b.get("signature") or ""
                    issued = state.issued.get(sig)
                    ok = issued is not None and b.get("thinking") in (issued, "")
                    state.check(
                        "anthropic",
                        "signature",
                        sig[:16],
                        ok,
                        "" if ok else ("unknown signature" if issued is None else "thinking text changed"),
                    )
                    if knobs.strict and thinking and issued is None:
                        return 400, f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                elif b.get("type") == "redacted_thinking":
                    state.check(
                        "anthropic",
                        "redacted_thinking",
                        str(b.get("data", ""))[:16],
                        b.get("data") in state.issued,
                        "redacted_thinking",
                    )
                elif b.get("type") == "tool_use":
                    last_tool_turn = i
    if knobs.strict and thinking and last_tool_turn >= 0:
        first = messages[last_tool_turn]["content"][0]
        t = first.get("type") if isinstance(first, dict) else "text"
        if t not in ("thinking", "redacted_thinking"):
            return 400, _MISSING_THINKING.format(i=last_tool_turn, t=t)
    tool = None
    if payload.get("tools") and tool_result is None:
        tool = first_tool(payload["tools"], prompt, schema_keys=("input_schema",))
    system = payload.get("system")
    pt = sum(count_tokens(text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    pt += count_tokens(text_of(system)) if system else 0
    return Turn(
        model=model,
        prompt=prompt,
        stream=bool(payload.get("stream")),
        chunks=knobs.chunks,
        tool=tool,
        tool_result=tool_result,
        thinking=thinking,
        show_thinking=show,
        prompt_tokens=pt + 8,
    )


def _ev(typ: str, **fields: Any) -> bytes:
    return b"event: " + typ.encode() + b"\ndata: " + orjson.dumps({"type": typ, **fields}) + b"\n\n"


def render(turn: Turn, state: FakeState) -> bytes | list[bytes]:
    h = short_id(turn.model, turn.prompt, str(turn.tool), str(turn.tool_result), str(turn.chunks))
    msg_id, tool_id = "msg_01" + h, "toolu_01" + h
    rparts = turn.reasoning_parts if turn.thinking else []
    reasoning = "".join(rparts)
    sig = ""
    if turn.thinking:
        sig = signature("anthropic", reasoning)
        state.issue(sig, reasoning)
    aparts = [f"I will call {turn.tool.name}."] if turn.tool else turn.answer_parts
    answer = "".join(aparts)
    blocks: list[dict[str, Any]] = []
    if turn.thinking:
        blocks.append(
            {"type": "thinking", "thinking": reasoning if turn.show_thinking else "", "signature": sig}
        )
    blocks.append({"type": "text", "text": answer})
    if turn.tool:
        blocks.append(
            {"type": "tool_use", "id": tool_id, "name": turn.tool.name, "input": turn.tool.args_obj}
        )
    rt = count_tokens(reasoning)
    ot = rt + count_tokens(answer) + (count_tokens(turn.tool.args) if turn.tool else 0)
    usage = {
        "input_tokens": turn.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": ot,
        "output_tokens_details": {"thinking_tokens": rt},
        "service_tier": "standard",
    }
    stop = "tool_use" if turn.tool else "end_turn"
    if not turn.stream:
        return orjson.dumps(
            {
                "model": turn.model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": blocks,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": usage,
            }
        )
    ev = [
        _ev(
            "message_start",
            message={
                "model": turn.model,
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1, "output_tokens_details": None},
            },
        )
    ]
    idx = 0
    if turn.thinking:
        ev.append(
            _ev(
                "content_block_start",
                index=0,
                content_block={"type": "thinking", "thinking": "", "signature": ""},
            )
        )
        ev.append(_ev("ping"))
        if turn.show_thinking:
            ev += [
                _ev("content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": s})
                for s in rparts
            ]
        ev.append(_ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": sig}))
        ev.append(_ev("content_block_stop", index=0))
        idx = 1
    else:
        ev.append(_ev("ping"))
    ev.append(_ev("content_block_start", index=idx, content_block={"type": "text", "text": ""}))
    ev += [_ev("content_block_delta", index=idx, delta={"type": "text_delta", "text": s}) for s in aparts]
    ev.append(_ev("content_block_stop", index=idx))
    if turn.tool:
        idx += 1
        ev.append(
            _ev(
                "content_block_start",
                index=idx,
                content_block={"type": "tool_use", "id": tool_id, "name": turn.tool.name, "input": {}},
            )
        )
        for p in ["", *split_json(turn.tool.args)]:
            ev.append(
                _ev("content_block_delta", index=idx, delta={"type": "input_json_delta", "partial_json": p})
            )
        ev.append(_ev("content_block_stop", index=idx))
    ev.append(
        _ev(
            "message_delta",
            delta={"stop_reason": stop, "stop_sequence": None},
            usage={
                "input_tokens": turn.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": ot,
                "output_tokens_details": {"thinking_tokens": rt},
            },
        )
    )
    ev.append(_ev("message_stop"))
    return ev
