"""What rules do once they fire: the verdict of one evaluation, and the actions (log, tag, alert, block
with escalation, throttle, pace, redact, harden, cut) taken on a target through the rule store's view.

Used by ``proxy.policy.engine``; works the same on every store (the view records what changed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from proxy.policy.spec import REDACTION_MODES, SCOPES, ActionSpec
from proxy.policy.store import SEP, Active, MemoryRuleStore, RuleView

if TYPE_CHECKING:
    from proxy.policy.compiler import CompiledRule

ALERT_COOLDOWN = 600.0
_REDACT_RANK = {m: i for i, m in enumerate(REDACTION_MODES)}
_CONTROL = {
    "throttle": "throttle",
    "pace": "pace_tps",
    "redact": "redaction",
    "harden": "harden",
    "cut": "cut_tokens",
}
_PARAM = {"throttle": "factor", "pace": "tps", "redact": "mode", "harden": "profile", "cut": "tokens"}


@dataclass(slots=True)
class Hit:
    rule: str
    mode: str
    key: str
    values: dict[str, float]


@dataclass(slots=True, init=False)
class Verdict:
    hits: list[Hit]
    actions: list[dict[str, Any]]  # taken (or, shadow, would-be) this request
    controls: dict[str, Any]
    tags: set[str]
    scores: dict[str, float]
    block: Active | None
    alerts: list[dict[str, Any]]
    errors: int

    def __init__(self) -> None:  # one per request: literals, not the dataclass's default factories
        self.hits = []
        self.actions = []
        self.controls = {}
        self.tags = set()
        self.scores = {}
        self.block = None
        self.alerts = []
        self.errors = 0

    @property
    def hit_ids(self) -> list[str]:
        return [h.rule for h in self.hits]


def merge_control(controls: dict[str, Any], kind: str, value: Any) -> None:
    """Combine controls from several rules: the strictest wins."""
    name = _CONTROL[kind]
    old = controls.get(name)
    if old is None:
        controls[name] = value
    elif kind == "redact":
        if _REDACT_RANK.get(value, 0) > _REDACT_RANK.get(old, 0):
            controls[name] = value
    elif kind in ("throttle", "pace", "cut"):
        controls[name] = min(old, value)


def apply_action(
    rule: CompiledRule,
    act: ActionSpec,
    keyval: str,
    ctx: Mapping[str, Any],
    now: float,
    v: Verdict,
    shadow: bool,
    view: RuleView,
) -> None:
    """Take one action of a rule that fired on ``keyval``: record it in the verdict and, for timed
    actions, bans and alert cooldowns, in the view (the store)."""
    feat = rule.key if act.on == "key" else SCOPES[act.on]
    tval = keyval if act.on == "key" else str(ctx.get(feat) or "")
    if not tval:
        return
    target = feat + SEP + tval
    rec: dict[str, Any] = {"rule": rule.id, "do": act.kind, "on": feat, "target": tval}
    if shadow:
        rec["shadow"] = True
    kind = act.kind
    if kind == "log":
        rec["message"] = act.param("message", "")
    elif kind == "tag":
        rec["tag"] = act.param("tag")
        if not shadow:
            v.tags.add(act.param("tag"))
            if act.duration is not None:
                rec["until"] = now + act.duration
                view.set_action(target, ("tag", rule.id), Active("tag", act.param("tag"), now + act.duration,
                                                                  rule.id))
    elif kind == "alert":
        cooldown = act.duration or ALERT_COOLDOWN
        last = view.alert_time(rule.id, target)
        if last is not None and now - last < cooldown:
            return
        if not shadow:
            view.set_alerted(rule.id, target)
            v.alerts.append(
                {
                    "ts": now,
                    "rule": rule.id,
                    "on": feat,
                    "target": tval,
                    "channel": act.param("channel", "default"),
                    "description": rule.description,
                }
            )
    elif kind == "block":
        msg = act.param("message") or f"blocked by policy rule '{rule.id}'"
        if act.duration is None:
            if not shadow:
                v.block = Active("block", True, now, rule.id, msg)
        else:
            entries = view.actions(target)
            cur = entries.get(("block", rule.id)) if entries else None
            if cur is not None and cur.until > now:
                return  # already serving this block: no new offence, no extension
            duration = ban_duration(target, act, now, view, commit=not shadow)
            rec["until"] = now + duration
            if not shadow:
                view.set_action(target, ("block", rule.id), Active("block", True, now + duration, rule.id, msg))
    else:  # throttle, pace, redact, harden, cut
        value = act.param(_PARAM[kind])
        rec[_PARAM[kind]] = value
        if act.duration is not None:
            rec["until"] = now + act.duration
            if not shadow:
                entries = view.actions(target)
                cur = entries.get((kind, rule.id)) if entries else None
                if cur is None or cur.until < now + act.duration:
                    view.set_action(target, (kind, rule.id), Active(kind, value, now + act.duration, rule.id))
        elif not shadow:
            merge_control(v.controls, kind, value)
    v.actions.append(rec)

def ban_duration(target: str, act: ActionSpec, now: float, view: RuleView, *, commit: bool) -> float:
    """A block's duration, escalated by the target's ban history (fail2ban ``bantime.increment``)."""
    base = float(act.duration or 0.0)
    inc = act.increment
    prior = view.ban(target)
    if inc is None:
        if commit:
            view.set_ban(target, (prior[0] if prior else 0) + 1)
        return base
    count = 0 if prior is None or now - prior[1] > inc.forget else int(prior[0])
    if inc.multipliers:
        duration = base * inc.multipliers[min(count, len(inc.multipliers) - 1)]
    else:
        duration = base * inc.factor ** min(count, 20)
    duration = min(duration, inc.max)
    if inc.jitter:
        # Deterministic jitter (replays and tests reproduce it); unknown to the client all the same.
        h = hashlib.blake2b(f"{target}{SEP}{count}".encode(), digest_size=4).digest()
        duration += inc.jitter * int.from_bytes(h, "big") / 0xFFFFFFFF
    if commit:
        view.set_ban(target, count + 1)
    return duration

def collect(action_keys: tuple[str, ...], ctx: Mapping[str, Any], now: float, v: Verdict, view: RuleView) -> None:
    """Merge every action still in force on this request's targets into the verdict."""
    if not view.has_actions():
        return
    for feat in action_keys:
        val = ctx.get(feat)
        if not val:
            continue
        target = f"{feat}{SEP}{val}"  # (``format`` with no spec is ``str``)
        entries = view.actions(target)
        if not entries:
            continue
        for k, a in list(entries.items()):
            if a.until <= now:
                view.drop_action(target, k)
                continue
            _in_force(a, v)


def _in_force(a: Active, v: Verdict) -> None:
    if a.kind == "block":
        if v.block is None or a.until > v.block.until:
            v.block = a
    elif a.kind == "tag":
        v.tags.add(a.value)
    else:
        merge_control(v.controls, a.kind, a.value)


def collect_local(action_keys: tuple[str, ...], ctx: Mapping[str, Any], now: float, v: Verdict,
                  store: MemoryRuleStore) -> None:
    """``collect`` on the memory store (every request), reading its table of actions directly: a target
    holding one action keeps it alone (``MemoryRuleStore.set_action``), with no dict to build."""
    active = store.active
    if not active:
        return
    for feat in action_keys:
        val = ctx.get(feat)
        if not val:
            continue
        target = f"{feat}{SEP}{val}"
        cur = active.get(target)
        if cur is None:
            continue
        if type(cur) is Active:
            if cur.until <= now:
                del active[target]  # ``drop_action``
            elif cur.kind in _CONTROL:
                merge_control(v.controls, cur.kind, cur.value)
            else:
                _in_force(cur, v)
            continue
        for k, a in list(cur.items()):  # type: ignore[union-attr]
            if a.until <= now:
                store.drop_action(target, k)
                continue
            _in_force(a, v)
