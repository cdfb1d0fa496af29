"""The proxy benchmark still runs: ``bench_proxy.py --quick`` prints every figure (no speed is asserted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parent / "benchmarks" / "bench_proxy.py"


@pytest.mark.slow  # ~30 s: it starts a dozen server and client processes
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)")
def test_bench_proxy_quick_runs_and_prints_its_figures() -> None:
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True,
                       timeout=240, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = orjson.loads(r.stdout.strip().splitlines()[-1])
    assert doc["quick"] is True
    figures = doc["figures"]
    assert {f["phase"] for f in figures} == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    for f in figures:
        assert isinstance(f["value"], int | float), f
    judged = [f["name"] for f in figures if f["ok"] is not None]
    assert len(judged) == 9, judged  # one verdict per target
    for name in judged:
        assert name in r.stdout  # the table lists it
