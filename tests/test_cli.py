"""The command line: --version/--help everywhere, check-config exit codes, keys new, serve with signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from proxy import __version__
from proxy.cli import main
from proxy.keys import digest

ROOT = Path(__file__).resolve().parent.parent


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"distillguard {__version__}"


@pytest.mark.parametrize("argv", [[], ["serve"], ["check-config"], ["keys"], ["keys", "new"], ["demo"]])
def test_help_on_every_command(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: distillguard" in capsys.readouterr().out


def test_check_config_ok_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("GEMINI_API_KEY", "x")
    assert main(["check-config", str(ROOT / "config.example.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("server:\n  listn: x\nupstreams: []\nmetrics: {enabled: yes}\n")
    assert main(["check-config", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:2:3: server.listn: unknown key; did you mean 'listen'?" in out
    assert f"{bad}:4:20: metrics.enabled" in out
    assert main(["check-config", str(bad), "--json"]) == 1
    import orjson

    problems = orjson.loads(capsys.readouterr().out)
    assert {p["field"] for p in problems} >= {"server.listn", "metrics.enabled"}


def test_check_config_validates_accounts_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    acc = tmp_path / "a.yaml"
    cfg.write_text("upstreams: [{name: u, url: 'http://127.0.0.1:1'}]\naccounts_file: a.yaml\n")
    acc.write_text("accounts:\n  - id: x\n    tier: gold\n")
    assert main(["check-config", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert f"{acc}:3:11: account 'x': tier: expected one of trusted, standard, restricted, got 'gold'" in out


def test_keys_new_prints_key_once_and_digest_line(capsys):
    assert main(["keys", "new", "--account", "acme-research"]) == 0
    out = capsys.readouterr().out
    key = next(tok for tok in out.split() if tok.startswith("dg-"))
    assert f'"{digest(key)}"' in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _wait_http(url: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            try:
                async with s.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(url)
            await asyncio.sleep(0.05)


async def test_serve_with_flags_only_then_sighup_and_sigterm(tmp_path, fake_upstream_url):
    from proxy.keys import new_key

    key, key2 = new_key(), new_key()
    acc = tmp_path / "accounts.yaml"
    acc.write_text(f'accounts:\n  - id: a\n    keys: ["{digest(key)}"]\n')
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "proxy", "serve", "--upstream", fake_upstream_url, "--listen", f"127.0.0.1:{port}",
         "--accounts", str(acc)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await _wait_http(url + "/healthz")
        body = {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "hi"}]}
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v1/chat/completions", json=body,
                              headers={"Authorization": f"Bearer {key}"}) as r:
                assert r.status == 200
            acc.write_text(f'accounts:\n  - id: b\n    keys: ["{digest(key2)}"]\n')
            proc.send_signal(signal.SIGHUP)
            for _ in range(100):
                async with s.post(url + "/v1/chat/completions", json=body,
                                  headers={"Authorization": f"Bearer {key2}"}) as r:
                    if r.status == 200:
                        break
                await asyncio.sleep(0.05)
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"uvloop" in err and b"stopped" in err
    assert key.encode() not in out + err and key2.encode() not in out + err  # keys are never logged
    assert out.count(b'"request_id"') >= 2  # access log lines


def test_serve_refuses_bad_config(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("upstreams: [{name: u, url: 'ftp://x'}]\n")
    r = subprocess.run([sys.executable, "-m", "proxy", "serve", "--config", str(bad)], capture_output=True,
                       timeout=30)
    assert r.returncode == 1
    assert f"{bad}:1:" in r.stderr.decode() and "upstreams[0].url" in r.stderr.decode()


@pytest.fixture
async def fake_upstream_url():
    from proxy.fake.upstream import start_fake_upstream

    f = await start_fake_upstream()
    try:
        yield f.url
    finally:
        await f.close()
