"""Cost of streaming redaction on the framer + filter path, in process (no sockets).

For each API a long stream is rendered by the fake upstream (reasoning and answer, ``CHUNKS`` deltas
each), then fed in 1 KiB reads through: the dialect's framer -> ``Chain.run_events`` -> ``framer.encode``
exactly as ``forward.Relay`` does. Modes compared against ``pass`` (the same chain, redaction off for the
tier) and a thin pass-through (no filter at all). Prints events/s, the ratio to ``pass``, the per-event
overhead in µs, the leak check cost per 10 KB answer, and the peak memory of one stream as the stream
grows (bounded = does not grow with the stream length).

Target: omit/seal >= 90 % of pass throughput (leak check off, the part the target is about; the leak
check's own cost is printed apart). Run: .venv/bin/python tests/benchmarks/bench_redact.py
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
import tracemalloc
from types import MappingProxyType
from typing import Any

import orjson

from proxy.dialects import DIALECTS
from proxy.exchange import Exchange
from proxy.fake import chat, gemini, messages, responses
from proxy.fake.state import FakeState, Knobs
from proxy.filters.redact import RedactFilter
from proxy.pipeline import Chain
from proxy.redact.leak import ReasoningIndex
from proxy.redact.seal import KeyRing, new_key_text, parse_keyring
from proxy.redact.spec import LeakSpec, RedactionSpec

CHUNKS = 400
READ = 1024
PROMPT = "Which is larger, 9.11 or 9.8? Explain the comparison of decimals carefully please."


class _Acct:
    id = "bench"
    tier = "standard"


def _stream(api: str, chunks: int = CHUNKS, *, split: bool = False) -> tuple[str, Any, dict[str, Any]]:
    st, k = FakeState(), Knobs(chunks=chunks)
    if api == "openai_chat":
        body = {
            "model": "deepseek-reasoner",
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
        }
        ev = chat.render(chat.parse(body, st, k), st)  # type: ignore[arg-type]
    elif api == "openai_responses":
        body = {"model": "o4-mini", "input": PROMPT, "stream": True, "reasoning": {"summary": "auto"}}
        ev = responses.render(responses.parse(body, st, k), st)  # type: ignore[arg-type]
    elif api == "anthropic_messages":
        body = {
            "model": "claude-x",
            "max_tokens": 8000,
            "messages": [{"role": "user", "content": PROMPT}],
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 4000},
        }
        ev = messages.render(messages.parse(body, st, k), st)  # type: ignore[arg-type]
    else:
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
        }
        ev = gemini.render(gemini.parse(body, st, k, "gemini-2.5-flash", True, True), st)  # type: ignore[arg-type]
    assert isinstance(ev, list)
    return api, (ev if split else b"".join(ev)), body


PATHS = {
    "openai_chat": "/v1/chat/completions",
    "openai_responses": "/v1/responses",
    "anthropic_messages": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
}


def _exchange(api: str, body: dict[str, Any], chain: Chain) -> Exchange:
    ex = Exchange(path=PATHS[api], body=orjson.dumps(body), dialect=DIALECTS[api])
    ex.account = _Acct()  # type: ignore[assignment]
    asyncio.run(chain.run_request(ex))
    return ex


def _relay(ex: Exchange, chain: Chain, data: bytes | list[bytes]) -> tuple[int, int]:
    """What Relay._relay_stream does per read, minus the socket. ``data``: the stream cut in ``READ``
    byte reads, or a list of reads (one event each, as a model streaming in real time delivers them).
    Returns (events in, bytes out)."""
    assert ex.dialect is not None
    framer = ex.dialect.framer(ex, "text/event-stream")
    assert framer is not None
    n = out = 0
    hooks = bool(chain.event)
    reads = data if isinstance(data, list) else (data[i : i + READ] for i in range(0, len(data), READ))
    for chunk in reads:
        events = framer.feed(chunk)
        if not events:
            continue
        n += len(events)
        if hooks:
            events = chain.run_events(ex, events)
        out += len(b"".join([framer.encode(e) for e in events]))
    tail = framer.close()
    if hooks:
        tail = chain.run_events(ex, tail) + chain.run_end(ex)
    out += len(b"".join([framer.encode(e) for e in tail]))
    return n, out


RING = KeyRing(parse_keyring(new_key_text("bench")))
MODES = (
    ("pass", "off"),
    ("omit", "off"),
    ("seal", "off"),
    ("drop", "off"),
    ("placeholder", "off"),
    ("omit", "flag"),
    ("seal", "flag"),
)


def _chain(mode: str | None, leak: str = "off") -> Chain:
    if mode is None:
        return Chain([])
    tiers = MappingProxyType({"trusted": "pass", "standard": mode, "restricted": mode})
    spec = RedactionSpec(default_mode=mode, tiers=tiers, leak=LeakSpec(action=leak))
    return Chain([RedactFilter(spec, keyring=RING)])


def bench_streams(rounds: int = 25, *, split: bool = False) -> None:
    """Modes are timed interleaved, best of ``rounds`` each, so machine noise hits all of them alike."""
    how = "one event per read" if split else f"{READ} B reads"
    print(f"-- {how}")
    print(f"{'api':20s} {'mode':12s} {'events':>7s} {'ev/s':>10s} {'vs pass':>8s} {'µs/event':>9s}")
    for api in PATHS:
        _, data, body = _stream(api, split=split)
        chains = {None: _chain(None), **{m: _chain(*m) for m in MODES}}
        best: dict[Any, float] = dict.fromkeys(chains, float("inf"))
        n = 0
        for _ in range(rounds):
            for key, chain in chains.items():
                ex = _exchange(api, body, chain)
                gc.collect()
                gc.disable()
                t = time.thread_time()  # CPU time of this thread: other load on the machine does not count
                n, _ = _relay(ex, chain, data)
                best[key] = min(best[key], time.thread_time() - t)
                gc.enable()
        base = best[("pass", "off")]
        print(f"{api:20s} {'(no filter)':12s} {n:7d} {n / best[None]:10.0f} {base / best[None]:8.1%}")
        for m in MODES:
            t = best[m]
            label = m[0] + ("+leak" if m[1] != "off" else "")
            print(f"{api:20s} {label:12s} {n:7d} {n / t:10.0f} {base / t:8.1%} {(t - base) / n * 1e6:9.2f}")


def bench_leak() -> None:
    idx = ReasoningIndex(10)
    idx.add(" ".join(f"reasoning word{i} about{i % 97} things" for i in range(2500)))
    answer = " ".join(f"answer{i} text{i % 13} more" for i in range(1000))[:10240]
    idx.check(answer)
    n = 300
    t = time.perf_counter()
    for _ in range(n):
        idx.check(answer)
    print(
        f"leak check: {(time.perf_counter() - t) / n * 1e3:.3f} ms per 10 KB answer "
        f"(index of {len(idx.hashes)} n-gram hashes)"
    )


def bench_memory() -> None:
    """Peak traced memory of one stream at 200 and 2000 deltas: flat = no whole-body buffering. (The
    Responses ``response.completed`` event carries the whole output, so that one event, and its parse,
    grows with the answer, as it does for any client.) seal holds a block's reasoning until the block
    ends (capped by ``seal.max_bytes``); the leak check's index is capped at ``max_ngrams`` hashes."""
    for mode, leak in (("omit", "off"), ("seal", "off"), ("seal", "flag")):
        for api in PATHS:
            peaks = []
            for chunks in (200, 2000):
                _, data, body = _stream(api, chunks)
                chain = _chain(mode, leak)
                ex = _exchange(api, body, chain)
                gc.collect()
                tracemalloc.start()
                _relay(ex, chain, data)
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
                del ex
            label = mode + ("+leak" if leak != "off" else "")
            print(
                f"memory {api:20s} {label:10s} peak {peaks[0] / 1024:7.1f} KiB at 200 deltas, "
                f"{peaks[1] / 1024:7.1f} KiB at 2000 deltas"
            )


def main() -> None:
    try:
        import uvloop  # noqa: F401 - the relay's own loop does not matter here (no I/O)
    except ImportError:
        pass
    print(f"python {sys.version.split()[0]}, {CHUNKS} reasoning + {CHUNKS} answer deltas per stream")
    bench_streams()
    bench_streams(split=True)
    bench_leak()
    bench_memory()


if __name__ == "__main__":
    main()
