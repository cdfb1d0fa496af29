"""Cost of streaming redaction on the framer + filter path, in process (no sockets).

For each API (Chat Completions in four reasoning flavours) a long stream is rendered by the fake upstream
(reasoning and answer, ``CHUNKS`` deltas each), then fed in 1 KiB reads (and again one event per read)
through the relay's own modes, as ``forward.Relay`` does: ``pass`` in plain mode (complete events relayed as
the bytes that came), a hiding mode in read mode (``RedactFilter.on_read`` on whole reads, framed when it
declines a read) or framed (the dialect's framer -> ``Chain.run_events`` -> ``framer.encode``); with
``--framed`` every mode, ``pass`` included, is framed (the cost of the redaction code alone). Modes
compared against ``pass`` (the same chain, redaction off for the tier) and a thin pass-through (no
filter). Prints events/s, the ratio to ``pass``, the per-event overhead in µs, the leak check cost per
10 KB answer, and the peak memory of one stream as the stream grows (bounded = does not grow with the
stream length).

Target: omit/seal >= 90 % of pass throughput (leak check off, the part the target is about; the leak
check's own cost is printed apart). Run: .venv/bin/python tests/benchmarks/bench_redact.py
[--rounds N] [--only chat,gemini] [--modes omit,seal] [--reads both|1k|event] [--framed]
[--streams-only | --leak-only] [--leak-baseline OLD_LEAK.py]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import random
import statistics
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
from proxy.redact import leak as leak_mod
from proxy.redact.seal import KeyRing, new_key_text, parse_keyring
from proxy.redact.spec import LeakSpec, RedactionSpec
from proxy.sse import SSEFramer

try:
    from proxy.forward import _merge_cut_usage
    from proxy.sse import EventCutter
except ImportError:  # an older tree (before/after runs): the same cuts, made by the bench
    EventCutter = None  # type: ignore[assignment,misc]
    _merge_cut_usage = None  # type: ignore[assignment]

CHUNKS = 400
READ = 1024
PROMPT = "Which is larger, 9.11 or 9.8? Explain the comparison of decimals carefully please."


class _Acct:
    id = "bench"
    tier = "standard"


def _stream(
    api: str, chunks: int = CHUNKS, *, split: bool = False, model: str = "deepseek-reasoner"
) -> tuple[str, Any, dict[str, Any]]:
    st, k = FakeState(), Knobs(chunks=chunks)
    if api == "openai_chat":
        body = {
            "model": model,
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


# Chat Completions in each reasoning flavour of the fake upstream: reasoning_content (DeepSeek), reasoning
# (vLLM), inline <think> with both tags (Qwen3) and without the opening tag (R1 templates).
STREAMS = (
    ("openai_chat", "deepseek-reasoner"),
    ("openai_chat", "vllm-qwen3"),
    ("openai_chat", "qwen3-think"),
    ("openai_chat", "think-noopen-r1"),
    ("openai_responses", ""),
    ("anthropic_messages", ""),
    ("gemini", ""),
)
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


class _Cutter:
    """``proxy.sse.EventCutter`` for a tree that predates it (``PYTHONPATH`` set to an older copy): the
    same cuts as that tree's relay made inline in plain mode."""

    def __init__(self, framer: Any) -> None:
        self.framer, self.held, self.sep, self.off = framer, b"", None, False

    def cut(self, chunk: bytes) -> bytes:
        if self.held:
            chunk, self.held = self.held + chunk, b""
        if self.sep is None:
            if b"\r\n\r\n" in chunk:
                self.sep = b"\r\n\r\n"
                self.framer.eol = b"\r\n"
            elif b"\r" in chunk:
                self.off = True
                return chunk
            elif b"\n\n" in chunk:
                self.sep = b"\n\n"
            else:
                self.held = chunk
                return b""
        elif b"\r" in chunk and self.sep == b"\n\n":
            self.off = True
            return chunk
        cut = chunk.rfind(self.sep)
        if cut < 0:
            self.held = chunk
            return b""
        cut += len(self.sep)
        if cut == len(chunk):
            return chunk
        self.held = chunk[cut:]
        return chunk[:cut]


def _usage(ex: Exchange, usage_of: Any, events: list[Any]) -> None:
    for ev in events:
        if b"usage" in ev.data:
            u = usage_of(ev.obj)
            if u is not None:
                ex.usage.merge(u)


def _relay(ex: Exchange, chain: Chain, data: bytes | list[bytes], framed: bool = False) -> tuple[int, int]:
    """What Relay._relay_stream does per read, minus the socket. ``data``: the stream cut in ``READ``
    byte reads, or a list of reads (one event each, as a model streaming in real time delivers them).
    As the relay does: a stream no filter needs to see in plain mode (complete events relayed as the bytes
    that came, only events mentioning usage parsed), one whose only filter takes whole reads in read mode
    (``on_read``, framed when it declines a read), framed otherwise. ``framed=True``: every stream framed
    and every event through ``Chain.run_events`` (the per-event cost of redaction alone, ``pass`` included).
    Returns (events in, bytes out)."""
    assert ex.dialect is not None
    framer = ex.dialect.framer(ex, "text/event-stream")
    assert framer is not None
    n = out = 0
    usage_of = ex.dialect.usage
    hooks = bool(chain.event) if framed else chain.events_for(ex)
    read_for = getattr(chain, "read_hook_for", None)
    hook = read_for(ex) if hooks and not framed and read_for is not None else None
    cutter: Any = None
    if not framed and isinstance(framer, SSEFramer) and (hook is not None or not hooks):
        cutter = EventCutter(framer) if EventCutter is not None else _Cutter(framer)
    reads = data if isinstance(data, list) else (data[i : i + READ] for i in range(0, len(data), READ))
    for chunk in reads:
        if cutter is not None:
            cut = cutter.cut(chunk)
            if cutter.off:
                cutter, chunk = None, cut
            elif not cut:
                continue
            else:
                sent = cut if hook is None else hook(ex, cut, cutter.sep, framer)
                if sent is not None:
                    if hook is None and b"usage" in cut:  # (read mode: the hook reads usage itself)
                        if _merge_cut_usage is not None:
                            _merge_cut_usage(ex, usage_of, cut, cutter.sep, framer)
                        else:
                            _usage(ex, usage_of, framer.feed(cut))
                    if hook is None:  # (read mode: the hook counts the events it walks, in ex.events_in)
                        n += cut.count(cutter.sep)
                    out += len(sent)
                    continue
                chunk = cut
        events = framer.feed(chunk)
        if not events:
            continue
        n += len(events)
        _usage(ex, usage_of, events)
        if hooks:
            events = chain.run_events(ex, events)
        out += len(b"".join([framer.encode(e) for e in events]))
    held = cutter.held if cutter is not None else b""
    tail = (framer.feed(held) if held else []) + framer.close()
    if hooks:
        tail = chain.run_events(ex, tail) + chain.run_end(ex)
    out += len(b"".join([framer.encode(e) for e in tail]))
    return n + (ex.events_in if hook is not None else 0), out


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


def _label(mode: tuple[str, str]) -> str:
    return mode[0] + ("+leak" if mode[1] != "off" else "")


def _chain(mode: str | None, leak: str = "off") -> Chain:
    if mode is None:
        return Chain([])
    tiers = MappingProxyType({"trusted": "pass", "standard": mode, "restricted": mode})
    spec = RedactionSpec(default_mode=mode, tiers=tiers, leak=LeakSpec(action=leak))
    return Chain([RedactFilter(spec, keyring=RING)])


def bench_streams(
    rounds: int = 25,
    *,
    split: bool = False,
    only: tuple[str, ...] = (),
    modes: tuple[str, ...] = (),
    framed: bool = False,
) -> None:
    """Modes are timed interleaved (in a new random order each round) so machine noise hits all of them
    alike. ``vs pass`` is the median over rounds of pass time / mode time within the same round (paired,
    so slow drifts of the machine cancel); ``µs/event`` the median of the per-round differences; ``ev/s``
    the best round."""
    how = "one event per read" if split else f"{READ} B reads"
    print(f"-- {how}, {'every mode framed' if framed else 'as the relay (pass plain, hiding modes read/framed)'}")
    print(f"{'api':20s} {'mode':12s} {'events':>7s} {'ev/s':>10s} {'vs pass':>8s} {'µs/event':>9s}")
    rng = random.Random(7)
    for api, model in STREAMS:
        name = f"{api}:{model}" if model else api
        if only and not any(o in name for o in only):
            continue
        _, data, body = _stream(api, split=split, model=model or "deepseek-reasoner")
        picked = [m for m in MODES if m == ("pass", "off") or not modes or _label(m) in modes]
        chains = {None: _chain(None), **{m: _chain(*m) for m in picked}}
        times: dict[Any, list[float]] = {k: [] for k in chains}
        n = 0
        for _ in range(rounds):
            keys = list(chains)
            rng.shuffle(keys)
            for key in keys:
                chain = chains[key]
                ex = _exchange(api, body, chain)
                gc.collect()
                gc.disable()
                t = time.thread_time()  # CPU time of this thread: other load on the machine does not count
                n, _ = _relay(ex, chain, data, framed)
                times[key].append(time.thread_time() - t)
                gc.enable()
        base = times[("pass", "off")]
        name = {"deepseek-reasoner": "chat:reasoning_cont", "vllm-qwen3": "chat:reasoning"}.get(model, name)
        name = {"qwen3-think": "chat:<think>", "think-noopen-r1": "chat:</think> only"}.get(model, name)
        for m in (None, *picked):
            t = times[m]
            ratio = statistics.median(b / x for b, x in zip(base, t, strict=True))
            extra = statistics.median(x - b for b, x in zip(base, t, strict=True)) / n * 1e6
            label = "(no filter)" if m is None else _label(m)
            print(f"{name:20s} {label:12s} {n:7d} {n / min(t):10.0f} {ratio:8.1%} {extra:9.2f}")


def _leak_figures(mod: Any, text: str, answer: str) -> tuple[float, float, float]:
    """CPU seconds of (indexing ``text`` fed in 64-char pieces, checking ``answer`` whole, checking it as
    a stream in 40-char pieces) with the leak module ``mod``."""
    t = time.thread_time()
    idx = mod.ReasoningIndex(10)
    for i in range(0, len(text), 64):  # as a stream delivers it
        idx.add(text[i : i + 64])
    idx.flush()
    build = time.thread_time() - t
    t = time.thread_time()
    for _ in range(20):
        idx.check(answer)
    check = (time.thread_time() - t) / 20
    t = time.thread_time()
    chk = mod.StreamLeakCheck(idx)
    for i in range(0, len(answer), 40):
        chk.feed(answer[i : i + 40])
    chk.close()
    return build, check, time.thread_time() - t


def bench_leak(baseline: str = "") -> None:
    """One 10 KB answer against an indexed reasoning (CPU time, best of 7): whole, and as a stream; and
    the cost of indexing the reasoning. ``baseline``: another leak.py (e.g. ``git show
    HEAD:proxy/redact/leak.py > /tmp/leak_head.py``) timed interleaved with the current one."""
    text = " ".join(f"reasoning word{i} about{i % 97} things" for i in range(2500))
    answer = " ".join(f"answer{i} text{i % 13} more" for i in range(1000))[:10240]
    mods: dict[str, Any] = {"current": leak_mod}
    if baseline:
        spec = importlib.util.spec_from_file_location("leak_baseline", baseline)
        assert spec is not None and spec.loader is not None
        mods["baseline"] = importlib.util.module_from_spec(spec)
        sys.modules["leak_baseline"] = mods["baseline"]
        spec.loader.exec_module(mods["baseline"])
    best: dict[str, list[float]] = {k: [float("inf")] * 3 for k in mods}
    for _ in range(7):
        for k, mod in mods.items():
            best[k] = [min(a, b) for a, b in zip(best[k], _leak_figures(mod, text, answer), strict=True)]
    for k, (build, check, stream) in best.items():
        print(
            f"leak check ({k}): {check * 1e3:.3f} ms per 10 KB answer, {stream * 1e3:.3f} ms as a stream; "
            f"indexing {build / len(text) * 1024 * 1e3:.3f} ms per KB of reasoning"
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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=25, help="interleaved rounds per stream (best of)")
    ap.add_argument("--only", default="", help="comma-separated substrings of api:model, e.g. chat,gemini")
    ap.add_argument("--modes", default="", help="comma-separated modes besides pass, e.g. omit,seal,omit+leak")
    ap.add_argument("--streams-only", action="store_true", help="skip the leak and memory figures")
    ap.add_argument(
        "--reads", choices=("both", "1k", "event"), default="both", help="1 KiB reads, one event per read, or both"
    )
    ap.add_argument("--framed", action="store_true",
                    help="frame every mode, pass included (redaction's per-event cost alone; before read mode)")
    ap.add_argument("--leak-only", action="store_true", help="only the leak check figures")
    ap.add_argument("--leak-baseline", default="", help="another leak.py to time against the current one")
    args = ap.parse_args()
    only = tuple(o for o in args.only.split(",") if o)
    modes = tuple(m for m in args.modes.split(",") if m)
    print(f"python {sys.version.split()[0]}, {CHUNKS} reasoning + {CHUNKS} answer deltas per stream")
    if not args.leak_only:
        if args.reads != "event":
            bench_streams(args.rounds, only=only, modes=modes, framed=args.framed)
        if args.reads != "1k":
            bench_streams(args.rounds, split=True, only=only, modes=modes, framed=args.framed)
    if not args.streams_only:
        bench_leak(args.leak_baseline)
    if not (args.streams_only or args.leak_only):
        bench_memory()


if __name__ == "__main__":
    main()
