"""Rule metrics through the real proxy's /metrics: hits per rule and mode, actions by kind, errors,
evaluation time, reloads and loaded rules."""

from __future__ import annotations

import aiohttp
import pytest

from .conftest import GENAI_WARNING, openai_client

pytestmark = pytest.mark.filterwarnings(GENAI_WARNING)

MSG = [{"role": "user", "content": "Which is larger, 9.11 or 9.8?"}]

RULES = """
format: 1
rules:
  - id: every-request
    description: tags every request
    when: "true"
    key: account
    actions:
      - {do: tag, tag: seen}
      - {do: throttle, factor: 0.5}
  - id: logprobs-shadow
    mode: shadow
    when: "request.logprobs"
    key: account
    actions:
      - {do: block, for: 10m}
  - id: divides-by-zero
    description: errors at run time (reads as no match)
    when: "request.max_tokens / 0 > 1"
    key: template_cluster
  - id: disabled
    mode: "off"
    when: "true"
    key: account
"""


async def test_rule_metrics_on_the_metrics_endpoint(start_proxy, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    run = await start_proxy({"rules": {"paths": [str(path)]}})
    judge = next(f for f in run.proxy.filters if getattr(f, "name", "") == "judge")
    if judge.metric_families not in run.proxy.metrics.sources:  # until the app wires it itself
        run.proxy.metrics.add_source(judge.metric_families)
    async with openai_client(run) as c:
        for _ in range(3):
            await c.chat.completions.create(model="deepseek-reasoner", messages=MSG)
        await c.chat.completions.create(model="deepseek-reasoner", messages=MSG, logprobs=True)
    path.write_text("format: 1\nrules: [{id: broken}]\n")
    assert await judge.reload()  # problems returned, last good set kept
    async with aiohttp.ClientSession() as s, s.get(run.url + "/metrics") as r:
        text = await r.text()
    assert 'distillguard_rule_hits_total{mode="enforce",rule="every-request"} 4.0' in text
    assert 'distillguard_rule_hits_total{mode="shadow",rule="logprobs-shadow"} 1.0' in text
    assert 'distillguard_rule_actions_total{kind="tag",mode="enforce"} 4.0' in text
    assert 'distillguard_rule_actions_total{kind="throttle",mode="enforce"} 4.0' in text
    assert 'distillguard_rule_actions_total{kind="block",mode="shadow"} 1.0' in text
    assert 'distillguard_rule_errors_total{rule="divides-by-zero"} 4.0' in text
    assert "distillguard_rule_evaluation_failures_total 0.0" in text
    assert 'distillguard_rule_evaluation_seconds_bucket{le="+Inf"} 4.0' in text
    assert "distillguard_rule_evaluation_seconds_count 4.0" in text
    assert 'distillguard_rules_reloads_total{result="ok"} 0.0' in text
    assert 'distillguard_rules_reloads_total{result="failed"} 1.0' in text
    assert 'distillguard_rules_loaded{mode="enforce"} 2.0' in text
    assert 'distillguard_rules_loaded{mode="shadow"} 1.0' in text
    assert 'distillguard_rules_loaded{mode="off"} 1.0' in text
    assert "distillguard_templates_tracked 1.0" in text  # one prompt (a rule reads its cluster)
