"""Read mode in the real relay: a Chat stream in a hiding mode is redacted a whole upstream read at a time
(``RedactFilter.on_read``), with the same result as event by event, and usage still counted."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from proxy.fake import REASONING_MARKER, answer_for
from proxy.filters import redact as redact_filter
from proxy.sse import SSEFramer

PROMPT = "Which is larger, 9.11 or 9.8?"


async def _stream(run: Any, model: str) -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
            "stream_options": {"include_usage": True}}
    async with aiohttp.ClientSession() as s, s.post(
        run.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {run.key}"}
    ) as r:
        assert r.status == 200
        return await r.read()


def _answer(raw: bytes) -> str:
    fr = SSEFramer()
    out = []
    for ev in fr.feed(raw) + fr.close():
        obj = ev.obj
        for c in (obj or {}).get("choices") or ():
            out.append(c["delta"].get("content") or "")
    return "".join(out)


def _objs(raw: bytes) -> list[Any]:
    return [orjson.loads(e.data) for e in SSEFramer().feed(raw) if e.data.startswith(b"{")]


@pytest.mark.parametrize("mode", ["omit", "seal"])
@pytest.mark.parametrize("model", ["deepseek-reasoner", "qwen3-think"])
async def test_chat_stream_goes_through_read_mode(start_proxy, monkeypatch, mode: str, model: str) -> None:
    calls = {"reads": 0, "framed": 0}
    real = redact_filter._READS["openai_chat"]

    def counting(*a: Any) -> bytes | None:
        out: bytes | None = real(*a)
        calls["reads" if out is not None else "framed"] += 1
        return out

    monkeypatch.setitem(redact_filter._READS, "openai_chat", counting)
    run = await start_proxy(config={"redaction": {"tiers": {"standard": mode}, "leak": {"action": "off"}}})
    raw = await _stream(run, model)
    assert calls["reads"] > 0
    assert REASONING_MARKER.encode() not in raw
    assert _answer(raw) == answer_for(PROMPT)
    assert raw.endswith(b"data: [DONE]\n\n")
    usage = [e.obj["usage"] for e in SSEFramer().feed(raw) if e.obj and e.obj.get("usage")]
    assert usage and usage[-1]["completion_tokens"] > 0
    if mode == "seal":
        assert b"dgs1." in raw
    # the same stream event by event (no read hook): the same bytes but for the seal token's nonce
    monkeypatch.setitem(redact_filter._READS, "openai_chat", lambda *a: None)
    framed = await _stream(run, model)
    a, b = _objs(raw), _objs(framed)
    if mode == "seal":
        for x in (a, b):
            for o in x:
                for c in o.get("choices") or ():
                    c["delta"].pop("reasoning_content", None)
    for x in (a, b):
        for o in x:
            o.pop("id", None)
            o.pop("created", None)
    assert a == b
