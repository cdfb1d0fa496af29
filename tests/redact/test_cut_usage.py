"""The relay's usage probe on reads cut at event boundaries (``forward._merge_cut_usage``): only the blocks
that hold the usage key are parsed, every block that carries usage is counted, whatever else mentions
"message" (the probe once looked for "sage", which every "message" holds)."""

from __future__ import annotations

from typing import Any

from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.forward import _merge_cut_usage, _merge_usage
from proxy.sse import SSEFramer, parse_block

ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":"assistant",'
    b'"content":[],"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta",'
    b'"text":"The message in this passage is a massage of the message."}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":40}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


class _Probe:
    """The dialect's usage reader, counting the events it is handed."""

    def __init__(self, usage_of: Any) -> None:
        self.usage_of = usage_of
        self.seen: list[str] = []

    def __call__(self, obj: Any) -> Any:
        self.seen.append(obj.get("type", ""))
        return self.usage_of(obj)


def _ex() -> Exchange:
    return Exchange(path="/v1/messages", body=b"{}", dialect=DIALECTS["anthropic_messages"])


def test_only_blocks_with_the_usage_key_are_parsed() -> None:
    ex = _ex()
    probe = _Probe(DIALECTS["anthropic_messages"].usage)
    _merge_cut_usage(ex, probe, ANTHROPIC, b"\n\n", SSEFramer())
    assert probe.seen == ["message_start", "message_delta"]  # not the text delta, not message_stop
    assert ex.usage.input == 12
    assert ex.usage.output == 40


def test_framed_events_probe_the_same_blocks() -> None:
    ex = _ex()
    probe = _Probe(DIALECTS["anthropic_messages"].usage)
    events = [parse_block(b, b + b"\n\n") for b in ANTHROPIC.split(b"\n\n") if b]
    _merge_usage(ex, probe, events)
    assert probe.seen == ["message_start", "message_delta"]
    assert (ex.usage.input, ex.usage.output) == (12, 40)
