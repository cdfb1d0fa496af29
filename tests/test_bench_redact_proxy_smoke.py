"""The whole-proxy redaction benchmark still runs: ``bench_redact_proxy.py --quick`` prints every figure
(no speed is asserted)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks" / "bench_redact_proxy.py"
APIS = {"chat", "think", "responses", "anthropic", "gemini"}


@pytest.mark.slow  # ~25 s: a fake upstream, four proxy processes and a client process
def test_bench_redact_proxy_quick_runs_and_prints_its_figures() -> None:
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True,
                       timeout=240, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = orjson.loads(r.stdout.strip().splitlines()[-1])
    assert doc["quick"] is True
    figures = doc["figures"]
    cpu = [f for f in figures if "us_event" in f]
    assert {(f["api"], f["mode"]) for f in cpu} == {(a, m) for a in APIS for m in ("pass", "omit", "seal")}
    for f in cpu:
        assert f["us_stream"] > 0 and f["us_event"] > 0 and f["events"] > 0, f
        if f["mode"] != "pass":
            assert math.isfinite(f["ratio"]) and f["ratio"] > 0, f
            assert f["ratio_min"] <= f["ratio"] <= f["ratio_max"], f
            assert len(f["rounds"]) == doc["rounds"], f
            assert isinstance(f["ok"], bool), f
    mem = {f["mode"]: f["kb_per_stream"] for f in figures if "kb_per_stream" in f}
    assert set(mem) == {"pass", "omit", "seal"}
    framer = {f["api"] for f in figures if "framer_us_event" in f}
    assert framer == {"chat", "responses", "anthropic", "gemini"}
    for label in ("Chat reasoning_content", "Chat inline <think>", "Responses", "Anthropic", "Gemini",
                  "RSS per open stream", "framer.feed + encode"):
        assert label in r.stdout  # the table lists it
    assert r.stdout.count(">= 90 %") == 10  # one verdict per API and hiding mode
