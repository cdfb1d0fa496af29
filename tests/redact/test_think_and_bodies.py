"""Inline <think> split at every character boundary; whole bodies in every mode; usage and logprobs."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.exchange import Event
from proxy.redact.chat_stream import ChatStream
from proxy.redact.spec import RedactionSpec

from .helpers import BODIES, HIDING, MODEL_R1, WIRE, body_fixtures, dialect_of, make_ctx, strings

REASON_A = "The user asks which is larger. Compare the tenths digit first."
REASON_B = "Double-check the hundredths place as well."
ANSWER = "9.8 is larger than 9.11. <b>Really</b>."
TWO_BLOCKS = f"<think>\n{REASON_A}\n</think>\n\nFirst part. <think>{REASON_B}</think>{ANSWER}"
VISIBLE_TWO = f"First part. {ANSWER}"
NO_OPEN = f"{REASON_A}\n</think>\n\n{ANSWER}"


def _chunk(delta: dict, finish: str | None = None, logprobs: object = None) -> Event:
    obj = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    }
    return Event(orjson.dumps(obj), raw=b"data: " + orjson.dumps(obj) + b"\n\n")


def _run(content: str, cuts: list[int], mode: str = "omit", model: str = "") -> tuple[str, list[dict]]:
    s = ChatStream(make_ctx("openai_chat", mode, model=model))
    events = [_chunk({"role": "assistant", "content": ""})]
    prev = 0
    for c in [*sorted(set(cuts)), len(content)]:
        if c > prev:
            events.append(_chunk({"content": content[prev:c]}))
        prev = max(prev, c)
    events.append(_chunk({"content": ""}, finish="stop"))
    events.append(Event(b"[DONE]", raw=b"data: [DONE]\n\n"))
    out = [o for ev in events for o in s.on_event(ev)] + s.on_end()
    objs = [o.obj for o in out if o.obj is not None]
    text = "".join(c["delta"].get("content") or "" for o in objs for c in o["choices"])
    return text, objs


@pytest.mark.parametrize(
    "content,visible,model",
    [
        (TWO_BLOCKS, VISIBLE_TWO, ""),
        (NO_OPEN, ANSWER, MODEL_R1),
    ],
)
def test_think_tags_split_at_every_boundary(content: str, visible: str, model: str) -> None:
    for i in range(len(content) + 1):
        text, objs = _run(content, [i], model=model)
        assert text == visible, i
        blob = "".join(strings(objs, []))
        assert REASON_A not in blob and "tenths" not in blob and "hundredths" not in blob
        assert objs[0]["choices"][0]["delta"]["role"] == "assistant"


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(0, len(TWO_BLOCKS)), max_size=30))
def test_think_tags_random_multi_splits(cuts: list[int]) -> None:
    text, objs = _run(TWO_BLOCKS, cuts)
    assert text == VISIBLE_TWO
    assert "tenths" not in "".join(strings(objs, []))


def test_think_holds_back_at_most_a_tag() -> None:
    s = ChatStream(make_ctx("openai_chat", "omit"))
    s.on_event(_chunk({"role": "assistant", "content": ""}))
    out = s.on_event(_chunk({"content": "Hello <thi"}))
    assert out[0].obj["choices"][0]["delta"]["content"] == "Hello "
    out = s.on_event(_chunk({"content": "s is html"}))
    assert out[0].obj["choices"][0]["delta"]["content"] == "<this is html"


def test_reasoning_only_chunks_dropped_and_placeholder_once() -> None:
    text, objs = _run(TWO_BLOCKS, list(range(0, len(TWO_BLOCKS), 3)), mode="placeholder")
    assert text == VISIBLE_TWO
    marks = [
        c["delta"]["reasoning_content"]
        for o in objs
        for c in o["choices"]
        if "reasoning_content" in c["delta"]
    ]
    assert marks == ["[reasoning hidden]"]


def test_logprobs_stripped_when_hiding() -> None:
    s = ChatStream(make_ctx("openai_chat", "omit"))
    lp = {"content": [{"token": "<think>", "logprob": -0.1}], "refusal": None}
    out = s.on_event(_chunk({"role": "assistant", "content": "hi"}, logprobs=lp))
    assert out[0].obj["choices"][0]["logprobs"] is None


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", body_fixtures())
def test_bodies_every_mode(name: str, mode: str) -> None:
    dialect = dialect_of(name)
    original = orjson.loads((WIRE / name).read_bytes())
    obj = copy.deepcopy(original)
    model = MODEL_R1 if "no-open" in name else ""
    assert BODIES[dialect](obj, make_ctx(dialect, mode, model=model))
    blob = "\x00".join(strings(obj, []))
    for needle in ("Compare the tenths", "I compare the tenths", "Planning the lookup", "The user asks"):
        assert needle not in blob, (name, mode, needle)
    # visible answer untouched
    assert "9.8 is larger than 9.11." in blob


@pytest.mark.parametrize(
    "name", ["anthropic.thinking.nonstream.json", "anthropic.redacted-thinking.nonstream.json"]
)
def test_anthropic_body_shapes(name: str) -> None:
    original = orjson.loads((WIRE / name).read_bytes())
    for mode in HIDING:
        obj = copy.deepcopy(original)
        BODIES["anthropic_messages"](obj, make_ctx("anthropic_messages", mode))
        kinds = [b["type"] for b in obj["content"]]
        if mode == "drop":
            assert kinds == ["text"]
            continue
        assert kinds == [b["type"] for b in original["content"]]
        th = obj["content"][0]
        assert th["thinking"] == ("[reasoning hidden]" if mode == "placeholder" else "")
        if mode == "seal":
            assert th["signature"].startswith("dgs1.")
        else:
            assert th["signature"] == original["content"][0]["signature"]
        if "redacted_thinking" in kinds:
            assert obj["content"][1] == original["content"][1]


def test_usage_reasoning_tokens_zeroed_when_configured() -> None:
    spec = RedactionSpec(usage_reasoning_tokens="zero")
    obj = orjson.loads((WIRE / "chat.deepseek-reasoning_content.nonstream.json").read_bytes())
    BODIES["openai_chat"](obj, make_ctx("openai_chat", "omit", spec=spec))
    assert obj["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert obj["usage"]["completion_tokens"] > 0
    obj = orjson.loads((WIRE / "chat.deepseek-reasoning_content.nonstream.json").read_bytes())
    BODIES["openai_chat"](obj, make_ctx("openai_chat", "omit"))
    assert obj["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    g = orjson.loads((WIRE / "gemini.thoughts.nonstream.json").read_bytes())
    BODIES["gemini"](g, make_ctx("gemini", "omit", spec=spec))
    assert g["usageMetadata"]["thoughtsTokenCount"] == 0


def test_seal_holds_bounded_reasoning_then_fails_closed() -> None:
    from proxy.redact.common import RedactionFailed

    s = ChatStream(make_ctx("openai_chat", "seal", spec=RedactionSpec(seal_max_bytes=1024)))
    s.on_event(_chunk({"role": "assistant", "content": None, "reasoning_content": ""}))
    with pytest.raises(RedactionFailed):
        for _ in range(100):
            s.on_event(_chunk({"content": None, "reasoning_content": "x" * 50}))


def test_unparsable_chunk_fails_closed() -> None:
    from proxy.redact.common import RedactionFailed

    s = ChatStream(make_ctx("openai_chat", "omit"))
    with pytest.raises(RedactionFailed):
        s.on_event(Event(b'{"choices":[{"delta":{"reasoning_content":"sec', raw=b"x"))
