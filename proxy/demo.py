"""``distillguard demo``: a fake reasoning model, the proxy in front of it, and the official SDKs as clients.

Everything runs on loopback in one process; nothing outside the machine is contacted. The summary shows,
per API and per account tier, what reached the client: the answer, how much reasoning, and how the
proxy answered bad input.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.keys import digest, new_key

PROMPT = "Which is larger, 9.11 or 9.8?"

# The demo's accounts: one per tier.
DEMO_ACCOUNTS = (("tina", "trusted", "acme"), ("alice", "standard", "acme"), ("rex", "restricted", None))


@dataclass
class Row:
    scene: str
    account: str
    outcome: str
    answer_chars: int = 0
    reasoning_chars: int = 0
    ms: float = 0.0


def demo_config(upstream_url: str, accounts_path: Path) -> dict[str, Any]:
    """The example configuration the demo runs with (printed by ``--verbose``)."""
    return {
        "server": {"listen": "127.0.0.1:0", "drain_timeout": "5s"},
        "upstreams": [{"name": "fake-model", "url": upstream_url, "api_key": "upstream-secret"}],
        "accounts_file": str(accounts_path),
        "logging": {"access_log": "off"},
    }


def _write_accounts(path: Path) -> dict[str, str]:
    keys = {}
    lines = ["accounts:"]
    for aid, tier, org in DEMO_ACCOUNTS:
        keys[aid] = new_key()
        lines += [f"  - id: {aid}", f"    tier: {tier}"]
        if org:
            lines.append(f"    org: {org}")
        lines.append(f'    keys: ["{digest(keys[aid])}"]')
    path.write_text("\n".join(lines) + "\n")
    return keys


def _readable(text: str | None) -> int:
    """Characters of reasoning a client can read: a sealed token (``dgs1.``) is opaque, so it counts 0."""
    if not text:
        return 0
    from proxy.redact.seal import is_token

    return 0 if is_token(text) else len(text)


async def _chat(url: str, key: str, stream: bool) -> tuple[int, int]:
    import openai

    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as c:
        msgs: Any = [{"role": "user", "content": PROMPT}]
        if not stream:
            r = await c.chat.completions.create(model="deepseek-reasoner", messages=msgs)
            m = r.choices[0].message
            return len(m.content or ""), _readable((m.model_extra or {}).get("reasoning_content"))
        answer = 0
        reasoning = ""
        s = await c.chat.completions.create(model="deepseek-reasoner", messages=msgs, stream=True)
        async for ch in s:
            if ch.choices:
                d = ch.choices[0].delta
                answer += len(d.content or "")
                reasoning += (d.model_extra or {}).get("reasoning_content") or ""
        return answer, _readable(reasoning)


async def _responses(url: str, key: str, stream: bool) -> tuple[int, int]:
    import openai

    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as c:
        kw: Any = {"model": "o4-mini", "input": PROMPT, "reasoning": {"effort": "low", "summary": "auto"}}
        if stream:
            async with c.responses.stream(**kw) as s:
                r = await s.get_final_response()
        else:
            r = await c.responses.create(**kw)
        reasoning = sum(len(p.text) for item in r.output if item.type == "reasoning" for p in item.summary)
        return len(r.output_text), reasoning


async def _anthropic(url: str, key: str, stream: bool) -> tuple[int, int]:
    import anthropic

    async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as c:
        kw: Any = {"model": "claude-demo", "max_tokens": 4096,
                   "thinking": {"type": "enabled", "budget_tokens": 2048},
                   "messages": [{"role": "user", "content": PROMPT}]}
        if stream:
            async with c.messages.stream(**kw) as s:
                m = await s.get_final_message()
        else:
            m = await c.messages.create(**kw)
        answer = sum(len(b.text) for b in m.content if b.type == "text")
        reasoning = sum(len(b.thinking) for b in m.content if b.type == "thinking")
        return answer, reasoning


async def _gemini(url: str, key: str, stream: bool) -> tuple[int, int]:
    from google import genai
    from google.genai import types as gt

    client = genai.Client(api_key=key, http_options=gt.HttpOptions(base_url=url))
    cfg = gt.GenerateContentConfig(thinking_config=gt.ThinkingConfig(include_thoughts=True))
    answer = reasoning = 0
    try:
        if stream:
            chunks = [c async for c in await client.aio.models.generate_content_stream(
                model="gemini-2.5-flash", contents=PROMPT, config=cfg)]
        else:
            chunks = [await client.aio.models.generate_content(model="gemini-2.5-flash", contents=PROMPT,
                                                               config=cfg)]
        for ch in chunks:
            for cand in ch.candidates or []:
                for p in (cand.content.parts if cand.content else None) or []:
                    if p.thought:
                        reasoning += len(p.text or "")
                    else:
                        answer += len(p.text or "")
    finally:
        await client.aio.aclose()
        client.close()
    return answer, reasoning


API_SCENES = (
    ("OpenAI Chat (DeepSeek-style)", _chat),
    ("OpenAI Responses", _responses),
    ("Anthropic Messages", _anthropic),
    ("Gemini", _gemini),
)


async def _bad_input(url: str, key: str) -> list[Row]:
    import anthropic
    import openai

    rows = []
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="dg-not-a-real-key", max_retries=0) as c:
        try:
            await c.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": "hi"}])
            rows.append(Row("wrong key (OpenAI SDK)", "-", "accepted?!"))
        except openai.AuthenticationError as e:
            rows.append(Row("wrong key (OpenAI SDK)", "-", f"{type(e).__name__} {e.status_code} {e.code}"))
    async with anthropic.AsyncAnthropic(base_url=url, api_key=key, max_retries=0) as c:
        try:
            await c.messages.create(model="claude-demo", max_tokens=10,
                                    messages=[{"role": "user", "content": "x" * 11_000_000}])
            rows.append(Row("11 MB body (Anthropic SDK)", "alice", "accepted?!"))
        except anthropic.APIStatusError as e:
            rows.append(Row("11 MB body (Anthropic SDK)", "alice", f"{type(e).__name__} {e.status_code}"))
    return rows


async def run_scenes(url: str, keys: dict[str, str]) -> list[Row]:
    rows: list[Row] = []
    for title, fn in API_SCENES:
        for stream in (False, True):
            for account in ("tina", "alice"):
                t0 = time.perf_counter()
                try:
                    answer, reasoning = await fn(url, keys[account], stream)
                    outcome = "ok"
                except Exception as e:  # the demo reports, it does not stop
                    answer = reasoning = 0
                    outcome = f"{type(e).__name__}: {e}"[:60]
                ms = (time.perf_counter() - t0) * 1000
                rows.append(Row(f"{title}{' stream' if stream else ''}", account, outcome, answer, reasoning, ms))
    rows.extend(await _bad_input(url, keys["alice"]))
    return rows


def format_rows(rows: list[Row], tiers: dict[str, str]) -> str:
    head = f"{'scene':<36} {'account':<18} {'outcome':<38} {'answer':>7} {'reasoning':>9} {'ms':>7}"
    out = [head, "-" * len(head)]
    for r in rows:
        who = f"{r.account} ({tiers[r.account]})" if r.account in tiers else r.account
        out.append(f"{r.scene:<36} {who:<18} {r.outcome:<38} {r.answer_chars:>7} {r.reasoning_chars:>9} "
                   f"{r.ms:>7.1f}")
    return "\n".join(out)


async def _demo(verbose: bool) -> int:
    from proxy.accounts import AccountsWatcher
    from proxy.app import ProxyApp, Server
    from proxy.config import config_from_dict
    from proxy.fake.upstream import start_fake_upstream

    fake = await start_fake_upstream()
    with tempfile.TemporaryDirectory(prefix="distillguard-demo-") as tmp:
        accounts_path = Path(tmp) / "accounts.yaml"
        keys = _write_accounts(accounts_path)
        cfg = config_from_dict(demo_config(fake.url, accounts_path), source="<demo>")
        proxy = ProxyApp(cfg, accounts=AccountsWatcher(accounts_path))
        server = Server(proxy, port=0)
        await server.start()
        print(f"fake reasoning model on {fake.url}; distillguard on {server.url}\n")
        try:
            rows = await run_scenes(server.url, keys)
        finally:
            await server.stop(drain_timeout=2)
            await fake.close()
    tiers = {a: t for a, t, _ in DEMO_ACCOUNTS}
    print(format_rows(rows, tiers))
    print("\nanswer / reasoning: characters of answer and of reasoning the client received. The trusted")
    print("account (tina) sees the model's reasoning; the standard account (alice) gets the same answer with")
    print("the reasoning redacted in each API's own shape. The proxy's own errors come in each API's shape.")
    from proxy.sim.demo_scene import hydra_scene

    scene_rc = await hydra_scene()
    api_titles = tuple(t for t, _ in API_SCENES)
    failures = [r for r in rows if r.outcome.endswith("?!") or (r.scene.startswith(api_titles) and r.outcome != "ok")]
    return 1 if failures or scene_rc else 0


def run_demo(verbose: bool = False) -> int:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        import uvloop

        return uvloop.run(_demo(verbose))
    except ImportError:  # pragma: no cover
        return asyncio.run(_demo(verbose))
