"""GeminiDialect."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.dialects import DIALECTS, detect
from proxy.dialects.gemini import GeminiDialect
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Exchange, Usage
from proxy.sse import JSONArrayFramer, SSEFramer

D = GeminiDialect()
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
UNARY = "/v1beta/models/gemini-2.5-flash:generateContent"
THOUGHT = (
    "**Comparing decimals**\n\nThe user asks which is larger, 9.11 or 9.8. Compare the tenths digit: "
    "9.8 has 8 tenths, 9.11 has 1 tenth. So 9.8 is larger."
)


def test_registered() -> None:
    assert isinstance(DIALECTS["gemini"], GeminiDialect)
    assert D.auth_style == "x-goog-api-key"


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", UNARY, True),
        ("POST", STREAM, True),
        ("POST", "/v1/models/gemini-2.0-flash:generateContent", True),
        ("POST", "/v1alpha/models/gemini-3-pro:streamGenerateContent", True),
        ("POST", "/v1beta/tunedModels/my-model-123:generateContent", True),
        ("POST", "/google/v1beta/models/gemini-2.5-flash:generateContent", True),
        ("POST", STREAM + "?alt=sse", True),
        ("POST", "/v1beta/models/gemini-2.5-flash:countTokens", False),
        ("POST", "/v1beta/models/text-embedding-004:embedContent", False),
        ("GET", "/v1beta/models/gemini-2.5-flash", False),
        ("GET", UNARY, False),
        ("POST", "/v2/models/gemini:generateContent", False),
    ],
)
def test_match(method: str, path: str, ok: bool) -> None:
    assert D.match(method, path) is ok
    assert (detect(method, path) is DIALECTS["gemini"]) is ok


@pytest.mark.parametrize(
    ("case", "budget", "level"),
    [("gemini_2_5_budget", 1024, None), ("gemini_3_level", None, "high")],
)
def test_request_views_from_fixture(case: str, budget: Any, level: Any, wire: Any) -> None:
    body = wire.load_json("gemini.request.json")[case]
    view = D.parse_request(body, wire.make_ex(D, body, path=STREAM, query="alt=sse"))
    assert (view.model, view.stream) == ("gemini-2.5-flash", True)
    assert [(m.role, m.text) for m in view.messages] == [("user", "Which is larger, 9.11 or 9.8?")]
    assert (view.reasoning_budget, view.reasoning_effort, view.reasoning_display) == (
        budget,
        level,
        "summarized",
    )
    assert view.reasoning_enabled is (True if budget else None)


def test_request_view_fields(wire: Any) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {}}]},
            {
                "role": "model",
                "parts": [
                    {"text": "plan", "thought": True},
                    {"functionCall": {"name": "w", "args": {}}, "thoughtSignature": "c2ln"},
                ],
            },
            {"role": "user", "parts": [{"functionResponse": {"name": "w", "response": {}}}]},
            {"parts": [{"text": "Thanks"}]},
        ],
        "tools": [{"functionDeclarations": [{"name": "w"}, {"name": "v"}]}, {"googleSearch": {}}],
        "generation_config": {
            "max_output_tokens": 256,
            "candidateCount": 2,
            "responseLogprobs": True,
            "logprobs": 3,
            "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False},
        },
    }
    view = D.parse_request(body, wire.make_ex(D, body, path="/v1beta/tunedModels/t1:generateContent"))
    assert (view.model, view.stream, view.system) == ("tunedModels/t1", False, "Be brief.")
    assert [(m.role, m.text, m.has_reasoning, m.tool_calls) for m in view.messages] == [
        ("user", "Weather?", False, 0),
        ("assistant", "", True, 1),
        ("tool", "", False, 0),
        ("user", "Thanks", False, 0),
    ]
    assert (view.tools, view.max_tokens, view.n, view.logprobs, view.top_logprobs) == (3, 256, 2, True, 3)
    assert (view.reasoning_enabled, view.reasoning_budget, view.reasoning_display) == (False, None, "omitted")


def test_dynamic_budget(wire: Any) -> None:
    body = {"generationConfig": {"thinkingConfig": {"thinkingBudget": -1}}}
    view = D.parse_request(body, wire.make_ex(D, body, path=UNARY))
    assert (view.reasoning_enabled, view.reasoning_budget) == (True, None)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_json_never_raises(data: st.DataObject, wire: Any) -> None:
    keys = st.sampled_from(["contents", "systemInstruction", "tools", "generationConfig", "parts"])
    body = data.draw(st.dictionaries(keys, wire.json_values()))
    D.parse_request(body, wire.make_ex(D, body, path=UNARY))
    obj = data.draw(wire.json_values())
    D.parts(obj)
    D.usage(obj)
    D.parts({"candidates": [{"content": obj}]})


def test_stream_and_framer_choice(wire: Any) -> None:
    sse = wire.make_ex(D, {}, path=STREAM, query="alt=sse")
    noalt = wire.make_ex(D, {}, path=STREAM)
    unary = wire.make_ex(D, {}, path=UNARY)
    assert D.is_stream_request(sse) and D.is_stream_request(noalt) and not D.is_stream_request(unary)
    assert isinstance(D.framer(sse, "text/event-stream"), SSEFramer)
    assert isinstance(D.framer(noalt, "application/json; charset=UTF-8"), JSONArrayFramer)
    assert D.framer(unary, "application/json") is None


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    "name",
    ["gemini.thoughts.stream.sse", "gemini.thoughts.stream-noalt.json"],
)
def test_thought_streams(name: str, wire: Any) -> None:
    events = wire.fixture_events(name)
    parts = wire.stream_parts(D, events)
    assert wire.texts(parts, REASONING) == THOUGHT
    assert wire.texts(parts, TEXT) == wire.ANSWER
    assert USAGE in wire.kinds(parts)
    assert wire.stream_usage(D, events) == Usage(12, 74, 65)


def test_function_call_stream(wire: Any) -> None:
    events = wire.fixture_events("gemini.thoughts-function-call.stream.sse")
    parts = wire.stream_parts(D, events)
    assert wire.texts(parts, REASONING) == "**Planning the lookup**\n\nI need the weather for Paris."
    assert [(p.kind, p.text) for p in parts if p.kind == TOOL] == [(TOOL, "get_weather")]
    assert TEXT not in wire.kinds(parts)
    usage = wire.stream_usage(D, events)
    assert usage == Usage(51, 70, 55) and usage.total == 121


def test_nonstream_body(wire: Any) -> None:
    body = wire.load_json("gemini.thoughts.nonstream.json")
    parts = D.parts(body)
    assert [(p.kind, p.text) for p in parts] == [(REASONING, THOUGHT), (TEXT, wire.ANSWER), (USAGE, "")]
    assert D.usage(body) == Usage(12, 74, 65)
    assert D.usage(body).total == body["usageMetadata"]["totalTokenCount"]  # type: ignore[union-attr]


def test_other_parts_and_candidate_index() -> None:
    obj = {
        "candidates": [
            {
                "index": 1,
                "content": {"parts": [{"executableCode": {}}, {"text": "", "thoughtSignature": "c2ln"}]},
            }
        ]
    }
    assert [(p.kind, p.index) for p in D.parts(obj)] == [(OTHER, 1), (TEXT, 1)]


# --------------------------------------------------------------------------- errors

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@pytest.mark.parametrize(("status", "name"), sorted(STATUS_NAMES.items()))
def test_error_body_status(status: int, name: str) -> None:
    err = D.error_body(status, "c", "m", "dg-1")["error"]
    assert (err["code"], err["message"], err["status"]) == (status, "m", name)
    assert err["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "c",
            "domain": "distillguard",
            "metadata": {"request_id": "dg-1"},
        }
    ]


def test_retry_info(wire: Any) -> None:
    reply = D.error_reply("rate_limited", "slow", "dg-1", retry_after=17.0)
    body = wire.orjson.loads(reply.body)
    assert body["error"]["details"][1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "17s",
    }
    assert D.error_body(429, "c", "m", "r", retry_after=1.25)["error"]["details"][1]["retryDelay"] == "1.25s"
    fixture = wire.load_json("gemini.error.nonstream.json")["examples"][0]["body"]["error"]
    assert set(fixture) == set(body["error"])


@pytest.mark.parametrize(
    ("code", "exc"), [("rate_limited", "ClientError"), ("upstream_unavailable", "ServerError")]
)
def test_error_reply_is_parsed_by_genai(code: str, exc: str, wire: Any) -> None:
    from google.genai import errors as genai_errors

    reply = D.error_reply(code, "no", "dg-1")
    with pytest.raises(getattr(genai_errors, exc)) as info:
        genai_errors.APIError.raise_for_response(
            wire.sdk_response(reply.status, wire.orjson.loads(reply.body))
        )
    assert info.value.code == reply.status
    assert info.value.status == D.error_body(reply.status, code, "", "")["error"]["status"]


@pytest.mark.parametrize("name", ["gemini.thoughts.stream.sse", "gemini.thoughts.stream-noalt.json"])
def test_stream_error_event(name: str, wire: Any) -> None:
    (ev,) = D.stream_error_events("policy_blocked", "blocked", "dg-2", Exchange(dialect=D))
    assert ev.name is None and not ev.comment
    assert ev.data.startswith(b'{"error":')  # what google-genai looks for
    framer = wire.framer_for(name)
    events = wire.frame(framer, wire.load(name))
    out = wire.reencode(framer, [*events, ev])
    if isinstance(framer, JSONArrayFramer):
        assert wire.orjson.loads(out)[-1]["error"]["status"] == "PERMISSION_DENIED"
    else:
        assert out.endswith(b"\r\n\r\ndata: " + ev.data + b"\r\n\r\n")
        assert b"\n:" not in out
