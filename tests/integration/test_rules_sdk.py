"""Rules through the real proxy: a block is a 403 the SDKs do not retry; throttle and pace reach shaping;
the audit log and the admin API see the same decisions."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import orjson
import pytest

from .conftest import GENAI_WARNING, anthropic_client, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

MSG = [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}]

RULES = """
format: 1
rules:
  - id: too-many
    description: blocks an account after two requests in a minute
    when: "true"
    key: account
    aggregates:
      n: {kind: count, window: 1m}
    threshold: "agg.n > 2"
    actions:
      - {do: block, for: 10m, message: "Blocked by policy."}
  - id: logprobs-shadow
    mode: shadow
    when: "request.logprobs"
    key: account
    actions:
      - {do: block, for: 10m}
"""


async def _with_rules(start_proxy, tmp_path, text=RULES, extra=None):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    cfg = {"rules": {"paths": [str(path)], "audit": {"path": str(tmp_path / "audit.jsonl")}}}
    cfg.update(extra or {})
    return await start_proxy(cfg)


async def test_block_is_403_and_sdks_do_not_retry(start_proxy, fake, tmp_path):
    run = await _with_rules(start_proxy, tmp_path)
    async with openai_client(run, max_retries=3) as c:
        for _ in range(2):
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
        with pytest.raises(openai.PermissionDeniedError) as e:
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
    assert e.value.status_code == 403 and e.value.code == "policy_blocked"
    assert e.value.response.headers["x-should-retry"] == "false"
    async with anthropic_client(run, max_retries=3) as c:
        with pytest.raises(anthropic.PermissionDeniedError):
            await c.messages.create(model="claude-test-model", max_tokens=10, messages=MSG)
    assert len(fake.requests) == 2  # no retry, nothing blocked reached the upstream
    # The block holds for the account, whichever API it calls, and not for others.
    async with openai_client(run, key=run.keys["tina"]) as c:
        assert (await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)).choices


async def test_shadow_rule_changes_nothing_but_is_audited(start_proxy, fake, tmp_path):
    run = await _with_rules(start_proxy, tmp_path)
    async with openai_client(run, key=run.keys["tina"]) as c:
        r = await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, logprobs=True)
    assert r.choices
    await run.server.stop(drain_timeout=1)
    lines = [orjson.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    rec = lines[-1]
    assert rec["account"]["id"] == "tina"
    blob = orjson.dumps(rec).decode()
    assert "logprobs-shadow" in blob
    assert "9.11" not in blob  # prompt text is not in the audit log unless configured


async def test_admin_api_needs_its_token(start_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("DG_ADMIN_TOKEN", "s3cret-admin")
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    run = await start_proxy({"rules": {"paths": [str(path)], "admin": {"token_env": "DG_ADMIN_TOKEN"}}})
    async with aiohttp.ClientSession() as s:
        async with s.get(run.url + "/admin/rules") as r:
            assert r.status == 401
        async with s.get(run.url + "/admin/rules", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        async with s.get(run.url + "/admin/rules", headers={"Authorization": "Bearer s3cret-admin"}) as r:
            assert r.status == 200
            body = await r.json()
    assert "too-many" in orjson.dumps(body).decode()


async def test_throttle_action_reaches_shaping(start_proxy, fake, tmp_path):
    rules = """
format: 1
rules:
  - id: slow-everyone
    when: "true"
    key: account
    actions:
      - {do: throttle, factor: 0.1}
"""
    limits = {"limits": [{"name": "rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 10}}]}
    run = await _with_rules(start_proxy, tmp_path, rules, limits)
    async with openai_client(run) as c:
        await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
        # burst 10 at a 0.1 factor admits about one request at once.
        with pytest.raises(openai.RateLimitError):
            for _ in range(3):
                await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
