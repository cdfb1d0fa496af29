"""OpenAIResponsesDialect."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.dialects import DIALECTS, detect
from proxy.dialects.openai_responses import OpenAIResponsesDialect
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Exchange, Usage

D = OpenAIResponsesDialect()
SUMMARY = (
    "**Comparing decimals**\n\nI compare the tenths digits of 9.11 and 9.8.**Concluding**\n\n9.8 is larger."
)


def test_registered() -> None:
    assert isinstance(DIALECTS["openai_responses"], OpenAIResponsesDialect)
    assert D.auth_style == "bearer"


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", "/v1/responses", True),
        ("POST", "/openai/v1/responses", True),
        ("GET", "/v1/responses/resp_1", False),
        ("POST", "/v1/responses/resp_1/cancel", False),
        ("GET", "/v1/responses/resp_1/input_items", False),
        ("DELETE", "/v1/responses/resp_1", False),
        ("POST", "/v1/responses/input_tokens", False),
    ],
)
def test_match(method: str, path: str, ok: bool) -> None:
    assert D.match(method, path) is ok
    assert (detect(method, path) is DIALECTS["openai_responses"]) is ok


def test_request_view_from_fixture(wire: Any) -> None:
    body = wire.load_json("responses.request.json")["reasoning_summary_encrypted"]
    view = D.parse_request(body, wire.make_ex(D, body))
    assert (view.model, view.stream) == ("o4-mini", True)
    assert [(m.role, m.text) for m in view.messages] == [("user", "Which is larger, 9.11 or 9.8?")]
    assert (view.reasoning_effort, view.reasoning_display, view.reasoning_enabled) == ("medium", "auto", True)


def test_request_view_items(wire: Any) -> None:
    body = {
        "model": "o3",
        "instructions": "Be brief.",
        "input": [
            {"role": "developer", "content": "No lists."},
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Weather?"}, {"type": "input_image"}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "reasoning", "id": "rs_2", "summary": []},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
            {"type": "reasoning", "id": "rs_3", "summary": []},
            "junk",
        ],
        "tools": [{"type": "function"}, {"type": "web_search"}],
        "max_output_tokens": 500,
        "top_logprobs": 2,
        "reasoning": {"effort": "none", "generate_summary": "concise"},
    }
    view = D.parse_request(body, wire.make_ex(D, body))
    assert [(m.role, m.text, m.has_reasoning, m.tool_calls) for m in view.messages] == [
        ("system", "No lists.", False, 0),
        ("user", "Weather?", False, 0),
        ("assistant", "", True, 2),
        ("tool", "sunny", False, 0),
        ("assistant", "Sunny.", True, 0),
        ("assistant", "", True, 0),
    ]
    assert view.system == "Be brief.\nNo lists."
    assert (view.tools, view.max_tokens, view.top_logprobs, view.logprobs) == (2, 500, 2, True)
    assert (view.reasoning_effort, view.reasoning_enabled, view.reasoning_display) == (
        "none",
        False,
        "concise",
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_json_never_raises(data: st.DataObject, wire: Any) -> None:
    keys = st.sampled_from(["model", "input", "instructions", "reasoning", "tools", "include"])
    body = data.draw(st.dictionaries(keys, wire.json_values()))
    D.parse_request(body, wire.make_ex(D, body))
    obj = data.draw(wire.json_values())
    D.parts(obj)
    D.usage(obj)
    for kind in ("response.output_item.done", "response.completed", "response.content_part.added", "error"):
        if isinstance(obj, dict):
            D.parts({**obj, "type": kind})
            D.usage({**obj, "type": kind})


# --------------------------------------------------------------------------- responses

USAGE_ALL = Usage(14, 210, 192)


def _delta_text(parts: list[Any], kind: str, events: list[Any]) -> str:
    return "".join(
        p.text
        for e in events
        if e.obj is not None and str(e.obj.get("type", "")).endswith(".delta")
        for p in D.parts(e.obj)
        if p.kind == kind
    )


def test_summary_stream(wire: Any) -> None:
    events = wire.fixture_events("responses.reasoning-summary.stream.sse")
    assert all(e.name == e.obj["type"] for e in events if not e.comment)
    parts = wire.stream_parts(D, events)
    assert _delta_text(parts, REASONING, events) == SUMMARY
    assert _delta_text(parts, TEXT, events) == wire.ANSWER
    assert wire.stream_usage(D, events) == USAGE_ALL
    by_type = {e.obj["type"]: {p.kind for p in D.parts(e.obj)} for e in events if e.obj}
    assert by_type["response.reasoning_summary_part.added"] == {REASONING}
    assert by_type["response.reasoning_summary_text.done"] == {REASONING}
    assert by_type["response.output_item.done"] == {TEXT}  # the last one is the message
    assert by_type["response.completed"] == {REASONING, TEXT, USAGE}
    assert by_type["response.created"] == set()
    added = [e.obj for e in events if e.obj and e.obj["type"] == "response.output_item.added"]
    assert [p.kind for p in D.parts(added[0])] == [REASONING]
    assert [(p.kind, p.index) for p in D.parts(added[1])] == []  # an empty message item


def test_reasoning_text_stream(wire: Any) -> None:
    events = wire.fixture_events("responses.reasoning-text.stream.sse")
    parts = wire.stream_parts(D, events)
    assert _delta_text(parts, REASONING, events) == wire.REASONING_TEXT
    assert _delta_text(parts, TEXT, events) == wire.ANSWER
    first_part = next(e.obj for e in events if e.obj and e.obj["type"] == "response.content_part.added")
    assert [(p.kind, p.index) for p in D.parts(first_part)] == [(REASONING, 0)]
    completed = events[-1].obj
    assert completed["type"] == "response.completed"
    kinds = [(p.kind, p.text) for p in D.parts(completed)]
    assert (REASONING, wire.REASONING_TEXT) in kinds and (TEXT, wire.ANSWER) in kinds
    assert wire.stream_usage(D, events) == USAGE_ALL


def test_nonstream_body(wire: Any) -> None:
    body = wire.load_json("responses.reasoning-summary.nonstream.json")
    parts = D.parts(body)
    assert [(p.kind, p.index) for p in parts] == [(REASONING, 0), (TEXT, 1), (USAGE, 0)]
    assert parts[0].text == SUMMARY and parts[1].text == wire.ANSWER
    assert D.usage(body) == USAGE_ALL


def test_function_call_events() -> None:
    item = {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "w", "arguments": '{"a":1}'}
    assert [
        (p.kind, p.text, p.index)
        for p in D.parts({"type": "response.output_item.done", "output_index": 2, "item": item})
    ] == [(TOOL, '{"a":1}', 2)]
    delta = {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '{"a'}
    assert [(p.kind, p.text) for p in D.parts(delta)] == [(TOOL, '{"a')]
    web = {"type": "response.output_item.added", "item": {"type": "web_search_call"}}
    assert [p.kind for p in D.parts(web)] == [TOOL]
    refusal = {"type": "response.content_part.done", "part": {"type": "refusal", "refusal": "no"}}
    assert [(p.kind, p.text) for p in D.parts(refusal)] == [(TEXT, "no")]


def test_incomplete_and_failed_events() -> None:
    incomplete = {
        "type": "response.incomplete",
        "response": {"output": [], "usage": {"input_tokens": 3, "output_tokens": 9}},
    }
    assert D.usage(incomplete) == Usage(3, 9, None)
    failed = {
        "type": "response.failed",
        "response": {"output": [], "error": {"code": "x", "message": "boom"}},
    }
    assert [(p.kind, p.text) for p in D.parts(failed)] == [(OTHER, "boom")]
    assert D.usage({"type": "response.created", "response": {"usage": None}}) is None


# --------------------------------------------------------------------------- errors


def test_error_reply_is_parsed_by_openai_sdk(wire: Any) -> None:
    import openai

    reply = D.error_reply("unauthenticated", "bad key", "dg-1")
    assert reply.status == 401
    with openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9") as client:
        err = client._make_status_error_from_response(wire.sdk_response(401, wire.orjson.loads(reply.body)))
    assert isinstance(err, openai.AuthenticationError)
    assert (err.code, err.type) == ("unauthenticated", "authentication_error")


def test_stream_error_event_matches_fixture_shape(wire: Any) -> None:
    events = wire.fixture_events("responses.error.stream.sse")
    upstream = events[-1]
    ex = Exchange(dialect=D)
    ex.events_in = 6
    (ev,) = D.stream_error_events("policy_blocked", "blocked", "dg-2", ex)
    assert ev.name == upstream.name == "error"
    assert set(ev.obj) == set(upstream.obj)
    assert ev.obj == {
        "type": "error",
        "code": "policy_blocked",
        "message": "blocked",
        "param": None,
        "sequence_number": 6,
    }
    ex.state["openai_responses"] = {"last_sequence": 41}
    assert D.stream_error_events("x", "y", "z", ex)[0].obj["sequence_number"] == 42
    framer = wire.framer_for("responses.error.stream.sse")
    framer.feed(wire.load("responses.error.stream.sse"))
    assert framer.encode(ev).startswith(b"event: error\ndata: {")
