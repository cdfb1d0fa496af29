"""`distillguard demo` runs on a fresh machine: fake model, proxy and SDKs on loopback, exit 0."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_shows_redaction_by_tier():
    r = subprocess.run([sys.executable, "-m", "proxy", "demo"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [line for line in r.stdout.splitlines() if "(trusted)" in line or "(standard)" in line]
    api_rows = [line for line in rows if " ok " in line]
    assert len(api_rows) == 16
    for line in api_rows:
        answer, reasoning = (int(x) for x in line.split()[-3:-1])
        assert answer > 0
        assert (reasoning > 0) if "(trusted)" in line else (reasoning == 0), line
    assert "AuthenticationError 401 unauthenticated" in r.stdout
