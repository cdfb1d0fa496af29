"""The shipped rule pack on both stores: the same verdicts, request by request, for a template-spread
campaign (rules ``template-spread`` and ``template-spread-harvest``: 7-day windows, two distinct
counts of owners per template prefix, a ratio and counts) replayed through memory and Redis."""

from __future__ import annotations

from pathlib import Path

from test_rule_store import _summary  # the verdict as both stores must agree on it

from proxy.policy.engine import Engine
from proxy.policy.loader import load_ruleset
from proxy.policy.signals import RequestMeta, compute_features, view_from_record
from proxy.policy.store_redis import RedisRuleStore
from proxy.state.resp import RespClient

PACK = Path(__file__).resolve().parents[2] / "rules" / "default"
T0 = 1_767_225_600.0
SYSTEM = "You are a helpful assistant with strong analytical skills. Answer accurately."
PROMPT = ("Please help with the following task and explain how you arrive at the result. "
          "Task: find all integers x with x^2 - 5x + 6 = 0")


def _campaign() -> list[tuple[float, str, str, str, bool]]:
    """(time, account, tier, ip, reasoning): ten owners on unrelated networks each send the wrapper 20
    times, one every 30 minutes, an hour apart (as in rules/default/hydra.test.yaml); a bystander sends
    it without reasoning now and then; then the first owner comes back from a new address."""
    out = []
    t = T0
    for k in range(10):
        tier = "trusted" if k == 9 else "free"
        for _ in range(20):
            out.append((t, f"ls{k:02d}", tier, f"100.{65 + k}.{7 * k}.{11 + k}", True))
            if len(out) % 7 == 0:
                out.append((t + 60.0, "bystander", "standard", "100.120.5.5", False))
            t += 1800.0
        t += 3600.0
    out.append((t, "ls00", "free", "100.99.1.1", True))
    return out


async def test_template_spread_campaign_same_verdicts_on_both_stores(redis_url: str) -> None:
    rs = load_ruleset([PACK])
    mem = Engine(rs)
    red = Engine(rs)
    red.use_store(RedisRuleStore(RespClient(redis_url), rs, namespace="pack"))
    fired: set[str] = set()
    try:
        for t, account, tier, ip, reasoning in _campaign():
            req = {"model": "o3", "system": SYSTEM, "prompt": PROMPT, "reasoning": reasoning}
            meta = RequestMeta(account_id=account, tier=tier, ip=ip)
            vm = await mem.aevaluate(compute_features(view_from_record(req), meta, t, rs.matchers), t)
            vr = await red.aevaluate(compute_features(view_from_record(req), meta, t, rs.matchers), t)
            assert _summary(vm) == _summary(vr), (t - T0, account)
            fired.update(h.rule for h in vm.hits)
    finally:
        await red.close()
    assert {"template-spread", "template-spread-harvest"} <= fired  # the campaign is caught on both
