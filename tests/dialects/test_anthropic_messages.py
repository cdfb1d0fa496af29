"""AnthropicMessagesDialect."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy import errors
from proxy.dialects import DIALECTS, detect
from proxy.dialects.anthropic_messages import AnthropicMessagesDialect
from proxy.dialects.base import as_dict, as_effort, as_int, as_list, as_str, content_text
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Exchange, Message, RequestView, Usage

D = AnthropicMessagesDialect()


def test_registered() -> None:
    assert isinstance(DIALECTS["anthropic_messages"], AnthropicMessagesDialect)
    assert D.auth_style == "x-api-key"


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", "/v1/messages", True),
        ("POST", "/anthropic/v1/messages", True),
        ("POST", "/v1/messages/count_tokens", False),
        ("POST", "/v1/messages/batches", False),
        ("GET", "/v1/messages/batches/b1", False),
        ("GET", "/v1/messages", False),
        ("POST", "/v1/threads/t1/messages", False),  # OpenAI Assistants, not Anthropic
    ],
)
def test_match(method: str, path: str, ok: bool) -> None:
    assert D.match(method, path) is ok
    assert (detect(method, path) is DIALECTS["anthropic_messages"]) is ok


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("manual_extended_thinking", (True, True, 10000, None, None)),
        ("adaptive_thinking_summarized", (False, True, None, "high", "summarized")),
        ("adaptive_thinking_omitted", (False, True, None, None, "omitted")),
        ("thinking_disabled", (False, False, None, None, None)),
    ],
)
def test_request_views_from_fixture(case: str, expected: tuple[Any, ...], wire: Any) -> None:
    body = wire.load_json("anthropic.request.json")[case]
    view = D.parse_request(body, wire.make_ex(D, body))
    got = (
        view.stream,
        view.reasoning_enabled,
        view.reasoning_budget,
        view.reasoning_effort,
        view.reasoning_display,
    )
    assert got == expected
    assert view.model.startswith("claude-")
    assert view.max_tokens == body["max_tokens"]
    assert view.messages[0].role == "user" and "9.11" in view.messages[0].text


def test_request_view_blocks(wire: Any) -> None:
    body = {
        "model": "claude-x",
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "No lists."}],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Weather?"}, {"type": "image", "source": {}}],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "redacted_thinking", "data": "d"},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "tu", "name": "w", "input": {}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu", "content": "sunny"}]},
            5,
        ],
        "tools": [{"name": "w"}],
        "thinking": {"type": "enabled", "budget_tokens": "many"},
    }
    view = D.parse_request(body, wire.make_ex(D, body))
    assert view.system == "Be brief.\nNo lists."
    assert [(m.role, m.text, m.has_reasoning, m.tool_calls) for m in view.messages] == [
        ("user", "Weather?", False, 0),
        ("assistant", "Checking.", True, 1),
        ("user", "", False, 0),
    ]
    assert (view.tools, view.reasoning_enabled, view.reasoning_budget) == (1, True, None)


def _plain_view(body: dict[str, Any]) -> RequestView:
    """The request view read field by field with the tolerant readers (every block of every turn looked
    at): what the dialect's single pass must equal."""
    view = RequestView(model=as_str(body.get("model")), stream=body.get("stream") is True)
    view.system = content_text(body.get("system"))
    for m in as_list(body.get("messages")):
        if isinstance(m, dict):
            msg = Message(as_str(m.get("role")) or "user", content_text(m.get("content")))
            for block in as_list(m.get("content")):
                kind = as_dict(block).get("type")
                msg.has_reasoning |= kind in ("thinking", "redacted_thinking")
                msg.tool_calls += kind in ("tool_use", "server_tool_use")
            view.messages.append(msg)
    view.tools = len(as_list(body.get("tools")))
    view.max_tokens = as_int(body.get("max_tokens"))
    thinking = as_dict(body.get("thinking"))
    kind = thinking.get("type")
    view.reasoning_enabled = True if kind in ("enabled", "adaptive", "between_tools") else (
        False if kind == "disabled" else None)
    view.reasoning_budget = as_int(thinking.get("budget_tokens"))
    display = thinking.get("display")
    view.reasoning_display = display if isinstance(display, str) else None
    view.reasoning_effort = as_effort(as_dict(body.get("output_config")).get("effort"))
    return view


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_view_equals_the_plain_reading(data: st.DataObject, wire: Any) -> None:
    word = st.sampled_from(["", "x", "user", "assistant", "thinking", "redacted_thinking", "tool_use", "text",
                            "server_tool_use", "enabled", "disabled", "adaptive", "High", "summarized"])
    small = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), word)
    block = st.one_of(small, st.dictionaries(st.sampled_from(["type", "text", "thinking"]), word, max_size=2))
    content = st.one_of(small, st.lists(block, max_size=3))
    msg = st.dictionaries(st.sampled_from(["role", "content", "name"]), content, max_size=3)
    knob = st.dictionaries(st.sampled_from(["type", "budget_tokens", "display", "effort"]), small, max_size=3)
    body = data.draw(st.fixed_dictionaries({}, optional={
        "model": small, "stream": small, "messages": st.one_of(st.lists(msg, max_size=3), small),
        "system": content, "tools": st.one_of(small, st.lists(small, max_size=2)), "max_tokens": small,
        "thinking": st.one_of(knob, small), "output_config": st.one_of(knob, small), "temperature": small,
    }))
    assert D.parse_request(body, wire.make_ex(D, body)) == _plain_view(body)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_json_never_raises(data: st.DataObject, wire: Any) -> None:
    keys = st.sampled_from(["model", "messages", "system", "thinking", "tools", "output_config"])
    body = data.draw(st.dictionaries(keys, wire.json_values()))
    D.parse_request(body, wire.make_ex(D, body))
    obj = data.draw(wire.json_values())
    D.parts(obj)
    D.usage(obj)
    if isinstance(obj, dict):
        for kind in ("message_start", "content_block_start", "content_block_delta", "message", "error"):
            D.parts({**obj, "type": kind})
            D.usage({**obj, "type": kind})


# --------------------------------------------------------------------------- responses


def _block_text(events: list[Any], kind: str) -> str:
    return "".join(
        p.text
        for e in events
        if e.obj and e.obj["type"] == "content_block_delta"
        for p in D.parts(e.obj)
        if p.kind == kind
    )


@pytest.mark.parametrize(
    ("name", "reasoning", "text", "tool", "usage"),
    [
        ("anthropic.thinking.stream.sse", "REASONING_TEXT", "ANSWER", "", Usage(48, 96, None)),
        ("anthropic.thinking-omitted.stream.sse", "", "ANSWER", "", Usage(48, 96, None)),
        (
            "anthropic.thinking-tool-use.stream.sse",
            "I should look up the weather in Paris.",
            "Let me check.",
            '{"city": "Paris"}',
            Usage(48, 85, None),
        ),
    ],
)
def test_stream_parts_and_usage(
    name: str, reasoning: str, text: str, tool: str, usage: Usage, wire: Any
) -> None:
    reasoning = getattr(wire, reasoning) if reasoning.isupper() else reasoning
    text = getattr(wire, text) if text.isupper() else text
    events = wire.fixture_events(name)
    assert all(e.name == e.obj["type"] for e in events if not e.comment)
    assert _block_text(events, REASONING) == reasoning
    assert _block_text(events, TEXT) == text
    assert _block_text(events, TOOL) == tool
    assert wire.stream_usage(D, events) == usage
    starts = [D.parts(e.obj)[0] for e in events if e.obj and e.obj["type"] == "content_block_start"]
    assert [(p.kind, p.index) for p in starts][:2] == [(REASONING, 0), (TEXT, 1)]
    sig = [e.obj for e in events if e.obj and e.obj.get("delta", {}).get("type") == "signature_delta"]
    assert [[p.kind for p in D.parts(o)] for o in sig] == [[OTHER]]
    assert USAGE in wire.kinds(wire.stream_parts(D, events))


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("anthropic.thinking.nonstream.json", [REASONING, TEXT, USAGE]),
        ("anthropic.redacted-thinking.nonstream.json", [REASONING, REASONING, TEXT, USAGE]),
    ],
)
def test_nonstream_body(name: str, kinds: list[str], wire: Any) -> None:
    body = wire.load_json(name)
    parts = D.parts(body)
    assert [p.kind for p in parts] == kinds
    assert parts[0].text == wire.REASONING_TEXT
    assert parts[-2].text == wire.ANSWER
    assert D.usage(body) == Usage(48, 96, None)


def test_usage_counts_cache_and_thinking_tokens() -> None:
    start = {
        "type": "message_start",
        "message": {
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}
        },
    }
    assert D.usage(start) == Usage(115, None, None)
    delta = {
        "type": "message_delta",
        "usage": {"output_tokens": 70, "output_tokens_details": {"thinking_tokens": 50}},
    }
    assert D.usage(delta) == Usage(None, 70, 50)
    assert D.usage({"type": "content_block_delta", "delta": {}}) is None


def test_tool_use_start_with_input() -> None:
    start = {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "input": {"a": 1}},
    }
    assert [(p.kind, p.text, p.index) for p in D.parts(start)] == [(TOOL, '{"a":1}', 2)]


# --------------------------------------------------------------------------- errors

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
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


@pytest.mark.parametrize(("status", "etype"), sorted(ERROR_TYPES.items()))
def test_error_body_types(status: int, etype: str) -> None:
    body = D.error_body(status, "c", "m", "dg-1")
    assert body == {
        "type": "error",
        "error": {"type": etype, "message": "m", "code": "c"},
        "request_id": "dg-1",
    }


def test_error_body_matches_fixture_shape(wire: Any) -> None:
    for example in wire.load_json("anthropic.error.nonstream.json")["examples"]:
        ours = D.error_body(example["status"], "x", "m", "r")
        assert set(example["body"]) <= set(ours)
        assert ours["error"]["type"] == example["body"]["error"]["type"]


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        ("rate_limited", "RateLimitError"),
        ("policy_blocked", "PermissionDeniedError"),
        ("body_too_large", "APIStatusError"),
    ],
)
def test_error_reply_is_parsed_by_anthropic_sdk(code: str, exc: str, wire: Any) -> None:
    import anthropic

    reply = D.error_reply(code, "no", "dg-1")
    assert reply.status == errors.STATUS[code]
    with anthropic.Anthropic(api_key="x", base_url="http://127.0.0.1:9") as client:
        err = client._make_status_error_from_response(
            wire.sdk_response(reply.status, wire.orjson.loads(reply.body))
        )
    assert isinstance(err, getattr(anthropic, exc))
    assert err.body["error"]["code"] == code  # type: ignore[index]


def test_stream_error_event(wire: Any) -> None:
    upstream = wire.fixture_events("anthropic.error.stream.sse")[-1]
    (ev,) = D.stream_error_events("upstream_timeout", "too slow", "dg-2", Exchange(dialect=D))
    assert ev.name == upstream.name == "error"
    assert ev.obj["type"] == "error" and ev.obj["error"]["type"] == "timeout_error"
    assert ev.obj["error"]["message"] == "too slow" and ev.obj["request_id"] == "dg-2"
    assert wire.framer_for("anthropic.error.stream.sse").encode(ev).startswith(b"event: error\ndata: ")
    assert [(p.kind, p.text) for p in D.parts(ev.obj)] == [(OTHER, "too slow")]
