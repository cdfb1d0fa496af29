"""OpenAIChatDialect and the inline ``<think>`` splitter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.dialects import DIALECTS, detect
from proxy.dialects.base import as_dict, as_int, as_list, as_str, content_text
from proxy.dialects.openai_chat import OpenAIChatDialect, _read_reasoning
from proxy.dialects.think import ThinkSplitter
from proxy.exchange import OTHER, REASONING, TEXT, TOOL, USAGE, Message, RequestView, Usage

D = OpenAIChatDialect()


def test_registered() -> None:
    assert isinstance(DIALECTS["openai_chat"], OpenAIChatDialect)
    assert D.auth_style == "bearer"


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("POST", "/v1/chat/completions", True),
        ("POST", "/openrouter/api/v1/chat/completions", True),
        ("POST", "/v1/chat/completions/", True),
        ("GET", "/v1/chat/completions", False),
        ("GET", "/v1/chat/completions/chatcmpl-1", False),
        ("POST", "/v1/chat/completions/chatcmpl-1", False),
        ("POST", "/v1/completions", False),
    ],
)
def test_match(method: str, path: str, ok: bool) -> None:
    assert D.match(method, path) is ok
    assert (detect(method, path) is DIALECTS["openai_chat"]) is ok


def test_request_view_from_fixture(wire: Any) -> None:
    body = wire.load_json("responses.request.json")["chat_completions_equivalent_knob"]
    view = D.parse_request(body, wire.make_ex(D, body))
    assert view.model == "o4-mini"
    assert view.stream is False
    assert [(m.role, m.text) for m in view.messages] == [("user", "Which is larger, 9.11 or 9.8?")]
    assert view.reasoning_effort == "medium" and view.reasoning_enabled is True
    assert view.last_user_text == "Which is larger, 9.11 or 9.8?"


def test_request_view_all_fields(wire: Any) -> None:
    body = {
        "model": "deepseek-reasoner",
        "stream": True,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "No lists."}]},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {}}],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "hidden",
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "assistant", "content": "ok", "reasoning_details": [{"type": "reasoning.encrypted"}]},
        ],
        "tools": [{"type": "function"}, {"type": "function"}],
        "functions": [{"name": "legacy"}],
        "max_tokens": 100,
        "max_completion_tokens": 200,
        "n": 3,
        "logprobs": True,
        "top_logprobs": 5,
        "logit_bias": {"50256": -100},
        "reasoning": {"effort": "High", "exclude": True},
        "chat_template_kwargs": {"enable_thinking": False},
    }
    view = D.parse_request(body, wire.make_ex(D, body))
    assert view.model == "deepseek-reasoner" and view.stream is True
    assert [m.role for m in view.messages] == ["system", "system", "user", "assistant", "tool", "assistant"]
    assert view.system == "Be brief.\nNo lists."
    assert view.messages[2].text == "Hi"
    assert [m.has_reasoning for m in view.messages] == [False, False, False, True, False, True]
    assert view.messages[3].tool_calls == 1
    assert view.tools == 3
    assert view.max_tokens == 200
    assert (view.n, view.logprobs, view.top_logprobs, view.logit_bias) == (3, True, 5, True)
    assert view.reasoning_effort == "high"
    assert view.reasoning_display == "omitted"
    assert view.reasoning_enabled is False  # the template switch comes last and wins


@pytest.mark.parametrize(
    ("extra", "enabled", "budget", "effort", "display"),
    [
        ({}, None, None, None, None),
        ({"reasoning_effort": "none"}, False, None, "none", None),
        ({"thinking": {"type": "disabled"}}, False, None, None, None),
        ({"thinking": {"type": "enabled"}}, True, None, None, None),
        ({"include_reasoning": False}, None, None, None, "omitted"),
        ({"include_reasoning": True}, True, None, None, None),
        ({"reasoning": {"max_tokens": 2000}}, True, 2000, None, None),
        ({"reasoning": {"enabled": False}}, False, None, None, None),
        ({"thinking_token_budget": 64}, None, 64, None, None),
        ({"chat_template_kwargs": {"thinking": True}}, True, None, None, None),
    ],
)
def test_reasoning_knobs(
    extra: dict[str, Any], enabled: Any, budget: Any, effort: Any, display: Any, wire: Any
) -> None:
    body = {"model": "m", "messages": [], **extra}
    view = D.parse_request(body, wire.make_ex(D, body))
    assert (view.reasoning_enabled, view.reasoning_budget, view.reasoning_effort, view.reasoning_display) == (
        enabled,
        budget,
        effort,
        display,
    )


def test_request_wrong_types_read_as_absent(wire: Any) -> None:
    body = {
        "model": 5,
        "stream": "yes",
        "messages": {"role": "user"},
        "tools": "many",
        "n": -1,
        "max_tokens": True,
        "top_logprobs": "3",
        "logit_bias": [],
        "reasoning": "high",
        "thinking": [],
    }
    view = D.parse_request(body, wire.make_ex(D, body))
    assert (view.model, view.stream, view.messages, view.tools, view.n) == ("", False, [], 0, 1)
    assert (view.max_tokens, view.top_logprobs, view.logit_bias, view.reasoning_enabled) == (
        None,
        0,
        False,
        None,
    )


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_json_never_raises(data: st.DataObject, wire: Any) -> None:
    body = data.draw(
        st.dictionaries(
            st.sampled_from(["model", "messages", "reasoning", "thinking", "tools"]), wire.json_values()
        )
    )
    D.parse_request(body, wire.make_ex(D, body))
    obj = data.draw(wire.json_values())
    D.parts(obj)
    D.usage(obj)


def _plain_view(body: dict[str, Any]) -> RequestView:
    """The request view read field by field with the tolerant readers, every knob looked at: what the
    dialect's single pass (fast paths for plain turns and bodies without reasoning knobs) must equal."""
    msgs = []
    for m in as_list(body.get("messages")):
        if isinstance(m, dict):
            role = as_str(m.get("role")) or "user"
            role = {"developer": "system", "function": "tool"}.get(role, role)
            msgs.append(Message(role, content_text(m.get("content")),
                                any(m.get(k) for k in ("reasoning_content", "reasoning", "reasoning_details")),
                                len(as_list(m.get("tool_calls"))) + (1 if m.get("function_call") else 0)))
    cap = as_int(body.get("max_completion_tokens"))
    n = as_int(body.get("n"))
    view = RequestView(
        as_str(body.get("model")), body.get("stream") is True, msgs,
        "\n".join(m.text for m in msgs if m.role == "system" and m.text),
        len(as_list(body.get("tools"))) + len(as_list(body.get("functions"))),
        cap if cap is not None else as_int(body.get("max_tokens")), n if n is not None and n > 0 else 1,
        body.get("logprobs") is True, as_int(body.get("top_logprobs")) or 0, bool(as_dict(body.get("logit_bias"))),
    )
    _read_reasoning(body, view)
    return view


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning", "reasoning_details", "tool_calls", "function_call",
                                 "name"])
@pytest.mark.parametrize("value", [None, "", "x", [], [{"id": 1}], {}, {"name": "f"}, True, 0])
def test_each_message_field_alone_reads_as_the_plain_reading(key: str, value: Any, wire: Any) -> None:
    body = {"messages": [{"role": "assistant", "content": "a", key: value}, {key: value}]}
    assert D.parse_request(body, wire.make_ex(D, body)) == _plain_view(body)


@pytest.mark.parametrize("key", ["reasoning_effort", "include_reasoning", "reasoning", "thinking",
                                 "thinking_token_budget", "chat_template_kwargs", "max_completion_tokens",
                                 "max_tokens", "n", "top_logprobs", "logit_bias", "functions", "tools"])
@pytest.mark.parametrize("value", [None, "", "low", 5, 0, True, False, [1], {"type": "enabled", "effort": "high",
                                   "max_tokens": 9, "enabled": True, "thinking": True, "budget_tokens": 3}])
def test_each_body_field_alone_reads_as_the_plain_reading(key: str, value: Any, wire: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}], key: value}
    assert D.parse_request(body, wire.make_ex(D, body)) == _plain_view(body)


_KEYS = ["model", "stream", "messages", "tools", "functions", "max_completion_tokens", "max_tokens", "n", "logprobs",
         "top_logprobs", "logit_bias", "reasoning_effort", "include_reasoning", "reasoning", "thinking",
         "thinking_token_budget", "chat_template_kwargs", "temperature"]
_MSG_KEYS = ["role", "content", "reasoning_content", "reasoning", "reasoning_details", "tool_calls",
             "function_call", "name"]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_view_equals_the_plain_reading(data: st.DataObject, wire: Any) -> None:
    small = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["", "x", "high", "system",
                      "developer", "user", "enabled", "disabled"]), st.lists(st.integers(0, 1), max_size=2),
                      st.dictionaries(st.sampled_from(["type", "text", "effort", "max_tokens", "enabled",
                                                       "thinking", "budget_tokens"]), st.integers(0, 2), max_size=2))
    msg = st.one_of(small, st.dictionaries(st.sampled_from(_MSG_KEYS), small, max_size=3))
    messages = st.one_of(st.lists(msg, max_size=3), small)
    body = data.draw(st.fixed_dictionaries({}, optional={k: messages if k == "messages" else small for k in _KEYS}))
    assert D.parse_request(body, wire.make_ex(D, body)) == _plain_view(body)


# --------------------------------------------------------------------------- responses


STREAM_CASES = {
    "chat.deepseek-reasoning_content.stream.sse": Usage(16, 58, 47),
    "chat.vllm-reasoning.stream.sse": Usage(18, 62, None),
    "chat.openrouter-reasoning_details.stream.sse": Usage(45, 71, 52),
}


@pytest.mark.parametrize("name", sorted(STREAM_CASES))
def test_stream_parts_and_usage(name: str, wire: Any) -> None:
    events = wire.fixture_events(name)
    parts = wire.stream_parts(D, events)
    assert wire.texts(parts, REASONING) == wire.REASONING_TEXT
    assert wire.texts(parts, TEXT).strip() == wire.ANSWER
    assert USAGE in wire.kinds(parts)
    assert wire.stream_usage(D, events) == STREAM_CASES[name]


NONSTREAM_CASES = {
    "chat.deepseek-reasoning_content.nonstream.json": Usage(16, 58, 47),
    "chat.vllm-reasoning.nonstream.json": Usage(18, 62, None),
    "chat.openrouter-reasoning_details.nonstream.json": Usage(45, 71, 52),
}


@pytest.mark.parametrize("name", sorted(NONSTREAM_CASES))
def test_nonstream_parts_and_usage(name: str, wire: Any) -> None:
    body = wire.load_json(name)
    parts = D.parts(body)
    assert wire.texts(parts, REASONING) == wire.REASONING_TEXT
    assert wire.texts(parts, TEXT).strip() == wire.ANSWER
    assert D.usage(body) == NONSTREAM_CASES[name]


def test_openrouter_signature_only_detail_is_reasoning(wire: Any) -> None:
    events = wire.fixture_events("chat.openrouter-reasoning_details.stream.sse")
    sig = [e for e in events if e.obj and b'"signature"' in e.data]
    assert sig and all(REASONING in wire.kinds(D.parts(e.obj)) for e in sig)
    assert events[0].comment  # the ": OPENROUTER PROCESSING" keepalive


@pytest.mark.parametrize("name", ["chat.think-tags-inline", "chat.think-no-open-tag"])
def test_inline_think_is_text_and_splits(name: str, wire: Any) -> None:
    events = wire.fixture_events(name + ".stream.sse")
    parts = wire.stream_parts(D, events)
    assert REASONING not in wire.kinds(parts)
    content = wire.texts(parts, TEXT)
    assert content == D.parts(wire.load_json(name + ".nonstream.json"))[0].text
    splitter = ThinkSplitter(None)
    out = []
    for p in parts:
        if p.kind == TEXT:
            out += splitter.feed(p.text)
    out += splitter.flush()
    assert "".join(t for k, t in out if k == REASONING).strip() == wire.REASONING_TEXT
    assert "".join(t for k, t in out if k == TEXT) == wire.ANSWER


def test_tool_calls_and_error_chunk(wire: Any) -> None:
    chunk = {
        "choices": [
            {"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}},
            {"delta": {"content": [{"type": "text", "text": "x"}], "refusal": "no"}},
            "junk",
        ]
    }
    parts = D.parts(chunk)
    assert [(p.kind, p.text, p.index) for p in parts] == [(TOOL, '{"a"', 1), (TEXT, "x", 1), (TEXT, "no", 1)]
    err = wire.fixture_events("chat.error.stream.sse")[-1]
    assert [(p.kind, p.text) for p in D.parts(err.obj)] == [
        (OTHER, "The stream was terminated by the gateway policy.")
    ]
    assert D.usage({"usage": None}) is None and D.usage([]) is None


# --------------------------------------------------------------------------- errors


def test_error_reply_is_parsed_by_openai_sdk(wire: Any) -> None:
    import openai

    reply = D.error_reply("rate_limited", "slow down", "dg-1")
    assert reply.status == 429 and reply.headers["x-request-id"] == "dg-1"
    with openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9") as client:
        response = wire.sdk_response(reply.status, wire.orjson.loads(reply.body))
        err = client._make_status_error_from_response(response)
    assert isinstance(err, openai.RateLimitError)
    assert (err.code, err.type) == ("rate_limited", "rate_limit_error")
    assert err.message.endswith("slow down")
    body = wire.orjson.loads(D.error_reply("policy_blocked", "no", "dg-2").body)
    assert body == {
        "error": {"message": "no", "type": "permission_error", "param": None, "code": "policy_blocked"}
    }


def test_stream_error_event(wire: Any) -> None:
    from proxy.exchange import Exchange

    (ev,) = D.stream_error_events("redaction_failed", "stopped", "dg-3", Exchange(dialect=D))
    assert ev.name is None
    assert ev.obj == {
        "error": {"message": "stopped", "type": "server_error", "param": None, "code": "redaction_failed"}
    }
    framer = wire.framer_for("chat.error.stream.sse")
    assert framer.encode(ev).startswith(b'data: {"error":')


# --------------------------------------------------------------------------- ThinkSplitter


def _split(s: ThinkSplitter, pieces: list[str]) -> tuple[str, str]:
    out: list[tuple[str, str]] = []
    for piece in pieces:
        out += s.feed(piece)
    out += s.flush()
    return "".join(t for k, t in out if k == REASONING), "".join(t for k, t in out if k == TEXT)


INLINE = "<think>\nR1 R2\n</think>\n\nAnswer."


@pytest.mark.parametrize("start", [None, False])
def test_think_both_tags_split_everywhere(start: bool | None) -> None:
    for i in range(len(INLINE) + 1):
        for j in range(i, len(INLINE) + 1):
            r, t = _split(ThinkSplitter(start), [INLINE[:i], INLINE[i:j], INLINE[j:]])
            assert (r, t) == ("\nR1 R2\n", "Answer."), (i, j)


@pytest.mark.parametrize("start", [None, True])
def test_think_missing_open_tag(start: bool | None) -> None:
    text = "R1 R2\n</think>\n\nAnswer."
    for i in range(len(text) + 1):
        assert _split(ThinkSplitter(start), [text[:i], text[i:]]) == ("R1 R2\n", "Answer."), i


def test_think_several_blocks_and_unclosed_end() -> None:
    text = "<think>a</think>\n\nb<think>c</think>d<think>e"
    assert _split(ThinkSplitter(False), list(text)) == ("ace", "bd")


def test_think_only_two_newlines_dropped() -> None:
    assert _split(ThinkSplitter(True), ["r</think>", "\n", "\n", "\nx"]) == ("r", "\nx")
    assert _split(ThinkSplitter(True), ["r</think>\n", "x"]) == ("r", "x")


def test_think_unknown_without_tags() -> None:
    s = ThinkSplitter(None, release_after=10)
    assert s.feed("Hello ") == [] and s.in_reasoning is None
    assert s.feed("  world and more <thi") == [(TEXT, "Hello   world and more ")]
    assert s.in_reasoning is False and s.held == len("<thi")
    assert s.feed("nk>x") == [(REASONING, "x")]
    assert ThinkSplitter(None).feed("short") == []
    assert _split(ThinkSplitter(None), ["short answer"]) == ("", "short answer")


def test_think_holds_at_most_a_tag_once_known() -> None:
    s = ThinkSplitter(True)
    for piece in ["long reasoning ", "goes on </", "thin"]:
        s.feed(piece)
        assert s.held < len("</think>")
    s = ThinkSplitter(False)
    assert s.feed("text <") == [(TEXT, "text ")] and s.held == 1
    assert s.feed("b>") == [(TEXT, "<b>")]


_TOKENS = st.sampled_from(["<think>", "</think>", "<", "</", "think", ">", "a", " ", "\n", "\n\n", "x<y"])


@settings(max_examples=300, deadline=None)
@given(
    tokens=st.lists(_TOKENS, max_size=20),
    cuts=st.lists(st.integers(0, 200), max_size=6),
    start=st.sampled_from([None, True, False]),
)
def test_think_split_invariance(tokens: list[str], cuts: list[int], start: bool | None) -> None:
    text = "".join(tokens)
    # While the state is unknown the threshold depends on chunking by nature: keep it out of reach here.
    whole = _split(ThinkSplitter(start, release_after=10_000), [text])
    bounds = sorted({c for c in cuts if c <= len(text)})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)], strict=True)]
    assert _split(ThinkSplitter(start, release_after=10_000), pieces) == whole
    # Nothing is lost but the tags and the dropped newlines after a closing tag.
    r, t = whole
    assert len(r) + len(t) <= len(text)
