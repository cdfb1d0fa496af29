"""Every wire fixture through every mode, split at every byte boundary and at random multi-splits."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.exchange import TEXT
from proxy.redact import chat

from .helpers import (
    HIDING,
    RING,
    TOKEN,
    WIRE,
    assert_no_reasoning,
    reasoning_and_visible,
    run_stream,
    stream_fixtures,
    texts,
    upstream_events,
    visible_of,
)

FIXTURES = stream_fixtures()


def _norm(raw: bytes) -> bytes:
    return TOKEN.sub(b"<token>", raw)


def _check(name: str, mode: str, raw: bytes, events: list) -> None:
    pieces, visible = reasoning_and_visible(name, upstream_events(name))
    assert_no_reasoning(pieces, visible, events, raw)
    assert visible_of(name, events) == visible  # byte-identical visible text
    for ev in events:
        if not ev.comment and ev.data != b"[DONE]":
            assert ev.obj is not None, ev.data[:80]


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", FIXTURES)
def test_every_byte_boundary(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    whole, events = run_stream(name, data, mode, [])
    _check(name, mode, whole, events)
    ref = _norm(whole)
    for i in range(1, len(data)):
        raw, _ = run_stream(name, data, mode, [i])
        assert _norm(raw) == ref, f"split at {i}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_multi_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(FIXTURES))
    mode = data.draw(st.sampled_from(HIDING))
    blob = (WIRE / name).read_bytes()
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=40))
    raw, events = run_stream(name, blob, mode, cuts)
    _check(name, mode, raw, events)
    whole, _ = run_stream(name, blob, mode, [])
    assert _norm(raw) == _norm(whole)


# ---------------------------------------------------------------- structure the SDK helpers rely on


def _objs(events):
    return [e.obj for e in events if e.obj is not None]


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("anthropic")])
def test_anthropic_indexes_contiguous(name: str, mode: str) -> None:
    _, events = run_stream(name, (WIRE / name).read_bytes(), mode, [])
    started = []
    for o in _objs(events):
        if o["type"] == "content_block_start":
            assert o["index"] == len(started)
            started.append(o["content_block"]["type"])
        elif "index" in o:
            assert o["index"] < len(started)
    assert all(e.name for e in events if not e.comment)  # event: lines everywhere
    if mode == "drop":
        assert "thinking" not in started
    else:
        assert started[0] == "thinking"
        sigs = [
            o["delta"]["signature"]
            for o in _objs(events)
            if o["type"] == "content_block_delta" and o["delta"]["type"] == "signature_delta"
        ]
        assert len(sigs) == 1 and sigs[0]
        if mode == "seal":
            assert sigs[0].startswith("dgs1.")


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("responses")])
def test_responses_output_index_contiguous_and_completed_scrubbed(name: str, mode: str) -> None:
    _, events = run_stream(name, (WIRE / name).read_bytes(), mode, [])
    added = []
    seqs = []
    for o in _objs(events):
        seqs.append(o["sequence_number"])
        if o["type"] == "response.output_item.added":
            assert o["output_index"] == len(added)
            added.append(o["item"]["type"])
        elif "output_index" in o:
            assert o["output_index"] < len(added)
        if o["type"] == "response.completed":
            out = o["response"]["output"]
            assert [i["type"] for i in out] == added
            for item in out:
                if item["type"] == "reasoning":
                    assert item.get("content") in (None, [])
                    if mode == "placeholder":
                        assert item["summary"] == [{"type": "summary_text", "text": "[reasoning hidden]"}]
                    else:
                        assert item["summary"] == []
                    if mode == "seal":
                        assert item["encrypted_content"].startswith("dgs1.")
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert ("reasoning" in added) == (mode != "drop")


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("chat")])
def test_chat_role_chunk_kept_and_token_once(name: str, mode: str) -> None:
    _, events = run_stream(name, (WIRE / name).read_bytes(), mode, [])
    objs = [o for o in _objs(events) if o.get("choices")]
    assert objs[0]["choices"][0]["delta"].get("role") == "assistant"
    assert events[-1].data == b"[DONE]"
    tokens = [
        v
        for o in objs
        for c in o["choices"]
        for k, v in c["delta"].items()
        if isinstance(v, str) and v.startswith("dgs1.")
    ]
    tokens += [
        d["data"]
        for o in objs
        for c in o["choices"]
        for d in c["delta"].get("reasoning_details") or ()
        if str(d.get("data", "")).startswith("dgs1.")
    ]
    if mode != "seal":
        assert not tokens
        return
    assert len(tokens) == 1
    if "think" in name:  # the token puts the inline <think> stretches back where they were, byte-exact
        visible = visible_of(name, events)
        msg = {"role": "assistant", "content": visible, "reasoning_content": tokens[0]}
        chat.rewrite_request({"messages": [msg]}, None, RING, "openai_chat|alice", 1_700_000_000, False)
        assert msg == {"role": "assistant", "content": "".join(texts("openai_chat", upstream_events(name), TEXT))}


@pytest.mark.parametrize("mode", HIDING)
@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("gemini")])
def test_gemini_signatures_kept_byte_for_byte(name: str, mode: str) -> None:
    data = (WIRE / name).read_bytes()
    raw, _events = run_stream(name, data, mode, [])
    sigs = [
        p["thoughtSignature"]
        for ev in upstream_events(name)
        if isinstance(ev.obj, dict)
        for c in ev.obj.get("candidates") or ()
        for p in c["content"]["parts"]
        if "thoughtSignature" in p and not p.get("thought")
    ]
    for s in sigs:
        assert orjson.dumps(s) in raw
    assert b"\n: " not in raw and not raw.startswith(b":")  # never an SSE comment for google-genai
