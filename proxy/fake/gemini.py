"""Gemini generateContent / streamGenerateContent: thought parts, thoughtSignature, functionCall."""

from __future__ import annotations

from typing import Any

import orjson

from proxy.fake.content import Turn, count_tokens, first_tool, short_id, signature, text_of
from proxy.fake.state import FakeState, Knobs

_MISSING_SIG = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. "
    "Additional data, function "
    "call `default_api:{name}` , position {pos}. Please refer to https://ai.google.dev/gemini-api/docs/"
    "thought-signatures for more details."
)


def _g(d: dict[str, Any], camel: str, snake: str) -> Any:
    """google-genai may send either spelling (camelCase on the wire, snake_case inside some configs)."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


def parse(
    payload: dict[str, Any], state: FakeState, knobs: Knobs, model: str, stream: bool, sse: bool
) -> Turn | tuple[int, str]:
    contents = payload.get("contents") or []
    if not isinstance(contents, list) or not contents:
        return 400, "* GenerateContentRequest.contents: contents is not specified"
    gc = _g(payload, "generationConfig", "generation_config") or {}
    tc = _g(gc, "thinkingConfig", "thinking_config") or {}
    thinking = _g(tc, "thinkingBudget", "thinking_budget") != 0
    show = bool(_g(tc, "includeThoughts", "include_thoughts"))
    prompt = ""
    tool_result = None
    for i, c in enumerate(contents):
        if not isinstance(c, dict):
            continue
        parts = [p for p in c.get("parts") or [] if isinstance(p, dict)]
        if c.get("role", "user") == "user":
            txt = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
            if txt:
                prompt = txt
            if i == len(contents) - 1:
                fr = next((_g(p, "functionResponse", "function_response") for p in parts
                           if _g(p, "functionResponse", "function_response") is not None), None)
                if fr is not None:
                    tool_result = orjson.dumps(fr.get("response", fr)).decode()
        else:
            first_call = True
            for p in parts:
                sig = _g(p, "thoughtSignature", "thought_signature")
                if sig:
                    state.check("gemini", "thoughtSignature", sig[:16], sig in state.issued)
                fc = _g(p, "functionCall", "function_call")
                if fc is not None:
                    if first_call and not sig and knobs.strict:
                        return 400, _MISSING_SIG.format(name=fc.get("name"), pos=i + 1)
                    first_call = False
    tool = None
    if tool_result is None:
        decls = [
            d
            for t in payload.get("tools") or []
            if isinstance(t, dict)
            for d in t.get("functionDeclarations") or t.get("function_declarations") or []
        ]
        if decls:
            tool = first_tool(decls, prompt, schema_keys=("parameters", "parametersJsonSchema"))
    pt = sum(
        count_tokens(text_of(p.get("text", "")))
        for c in contents
        if isinstance(c, dict)
        for p in c.get("parts") or []
        if isinstance(p, dict)
    )
    return Turn(
        model=model,
        prompt=prompt,
        stream=stream,
        chunks=knobs.chunks,
        tool=tool,
        tool_result=tool_result,
        thinking=thinking,
        show_thinking=show,
        prompt_tokens=pt + 2,
        extra=(("sse", sse),),
    )


def render(turn: Turn, state: FakeState) -> bytes | list[bytes]:
    rid = short_id(turn.model, turn.prompt, str(turn.tool), str(turn.tool_result), str(turn.chunks), n=22)
    rparts = turn.reasoning_parts if turn.thinking else []
    reasoning = "".join(rparts)
    sig = signature("gemini", reasoning + str(turn.tool))
    state.issue(sig, reasoning)
    aparts = [] if turn.tool else turn.answer_parts
    answer = "".join(aparts)
    rt = count_tokens(reasoning)
    ct = count_tokens(answer) + (count_tokens(turn.tool.args) if turn.tool else 0)
    pt = turn.prompt_tokens
    usage_mid: dict[str, Any] = {
        "promptTokenCount": pt,
        "totalTokenCount": pt + rt,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": pt}],
    }
    usage: dict[str, Any] = {
        "promptTokenCount": pt,
        "candidatesTokenCount": ct,
        "totalTokenCount": pt + rt + ct,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": pt}],
    }
    if turn.thinking:
        usage_mid["thoughtsTokenCount"] = rt
        usage["thoughtsTokenCount"] = rt
    call_part = None
    if turn.tool:
        call_part = {
            "functionCall": {"name": turn.tool.name, "args": turn.tool.args_obj},
            "thoughtSignature": sig,
        }
    tail = {"modelVersion": turn.model, "responseId": rid}
    if not turn.stream:
        parts: list[dict[str, Any]] = []
        if turn.thinking and turn.show_thinking:
            parts.append({"text": reasoning, "thought": True})
        parts.append(call_part or {"text": answer, "thoughtSignature": sig})
        return orjson.dumps(
            {
                "candidates": [
                    {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
                ],
                "usageMetadata": usage,
                **tail,
            }
        )
    chunks: list[list[dict[str, Any]]] = []
    if turn.thinking and turn.show_thinking:
        chunks += [[{"text": s, "thought": True}] for s in rparts]
    if call_part:
        chunks.append([call_part])
    else:
        chunks += [[{"text": s}] for s in aparts]
        chunks[-len(aparts)][0]["thoughtSignature"] = sig
    out = []
    for i, parts in enumerate(chunks):
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        last = i == len(chunks) - 1
        if last:
            cand["finishReason"] = "STOP"
        out.append(
            orjson.dumps({"candidates": [cand], "usageMetadata": usage if last else usage_mid, **tail})
        )
    if dict(turn.extra).get("sse", True):
        return [b"data: " + j + b"\r\n\r\n" for j in out]
    return [(b"[" if i == 0 else b",\r\n") + j for i, j in enumerate(out)] + [b"]"]
