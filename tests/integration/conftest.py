"""Integration harness: the real proxy on a loopback port in front of the built-in fake upstream."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from proxy.accounts import AccountsWatcher
from proxy.app import ProxyApp, Server
from proxy.config import config_from_dict
from proxy.fake.upstream import FakeUpstream, start_fake_upstream
from proxy.keys import digest, new_key

UPSTREAM_KEY = "upstream-secret-key-123"
DEFAULT_ACCOUNTS = (("alice", "standard", "acme"), ("tina", "trusted", "acme"), ("rex", "restricted", None))


@dataclass
class Running:
    server: Server
    proxy: ProxyApp
    keys: dict[str, str]
    accounts_path: Path
    access_log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def key(self) -> str:
        return self.keys["alice"]


def write_accounts(path: Path, accounts: Any) -> dict[str, str]:
    keys: dict[str, str] = {}
    lines = ["accounts:"]
    for aid, tier, org in accounts:
        k = new_key()
        keys[aid] = k
        lines += [f"  - id: {aid}", f"    tier: {tier}"]
        if org:
            lines.append(f"    org: {org}")
        lines.append(f'    keys: ["{digest(k)}"]')
    path.write_text("\n".join(lines) + "\n")
    return keys


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


StartProxy = Callable[..., Awaitable[Running]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    f = await start_fake_upstream()
    try:
        yield f
    finally:
        await f.close()


@pytest.fixture
async def start_proxy(tmp_path: Path, fake: FakeUpstream) -> AsyncIterator[StartProxy]:
    started: list[Server] = []

    async def _start(
        config: dict[str, Any] | None = None,
        *,
        accounts: Any = DEFAULT_ACCOUNTS,
        upstream_url: str | None = None,
        filters: list[Any] | None = None,
    ) -> Running:
        n = len(started)
        accounts_path = tmp_path / f"accounts{n}.yaml"
        keys = write_accounts(accounts_path, accounts)
        access = tmp_path / f"access{n}.jsonl"
        base = {
            "server": {"listen": "127.0.0.1:0", "drain_timeout": "5s"},
            "upstreams": [
                {
                    "name": "fake",
                    "url": upstream_url or fake.url,
                    "api_key": UPSTREAM_KEY,
                    "timeouts": {"connect": "2s", "first_byte": "5s", "idle": "5s"},
                }
            ],
            "accounts_file": str(accounts_path),
            "logging": {"access_log": str(access)},
        }
        cfg = config_from_dict(_merge(base, config or {}), source="<test>")
        # tune_gc=False: freezing the collector's generations suits a server process, not a test run.
        proxy = ProxyApp(cfg, accounts=AccountsWatcher(accounts_path), filters=filters, tune_gc=False)
        server = Server(proxy, port=0)
        await server.start()
        started.append(server)
        return Running(server, proxy, keys, accounts_path, access)

    try:
        yield _start
    finally:
        for s in started:
            await s.stop(drain_timeout=1.0)


# ---------------------------------------------------------------- SDK clients pointed at the proxy

GENAI_WARNING = "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"


def openai_client(run: Running, key: str | None = None, **kw: Any) -> Any:
    import openai

    kw.setdefault("max_retries", 0)
    return openai.AsyncOpenAI(base_url=run.url + "/v1", api_key=key or run.key, **kw)


def anthropic_client(run: Running, key: str | None = None, **kw: Any) -> Any:
    import anthropic

    kw.setdefault("max_retries", 0)
    return anthropic.AsyncAnthropic(base_url=run.url, api_key=key or run.key, **kw)


class GenaiClient:
    """google-genai's async client with a clean close (it opens aiohttp sessions of its own)."""

    def __init__(self, run: Running, key: str | None = None) -> None:
        from google import genai
        from google.genai import types as gt

        self._client = genai.Client(api_key=key or run.key, http_options=gt.HttpOptions(base_url=run.url))
        self.aio = self._client.aio

    async def __aenter__(self) -> Any:
        return self.aio

    async def __aexit__(self, *exc: object) -> None:
        await self.aio.aclose()
        self._client.close()
