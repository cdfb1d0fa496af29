"""Rule evaluation with per-key state: windows, decaying scores, timed actions and escalating blocks.

``Engine.evaluate(features, now)`` runs the request-phase rules over one request's flat feature dict and
returns a ``Verdict``: rule hits, scores, the controls this request gets (its own hits plus every action
still active for its account, key, IP prefix, template, ...), and a block if one applies. It is
synchronous, never awaits and never does I/O; alerts are handed back for a background sender.

Scores (CRS-style anomaly scoring) add per scope (account, org, ip_prefix, template, ...) and decay with
a half-life, so old offences fade; rules reading ``score.*`` run after the others, on updated scores.
Blocks escalate like fail2ban's ``bantime.increment``. Shadow rules count and report what they would
have done without changing scores or actions. Everything runs on the event time passed in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from proxy.policy.cel import EvalError
from proxy.policy.compiler import CompiledRule, CompiledRuleSet
from proxy.policy.spec import REDACTION_MODES, SCOPES, ActionSpec

_LN2 = math.log(2)
SEP = "\x1f"  # cannot occur in a feature name; separates feature and value in target keys
ALERT_COOLDOWN = 600.0
_REDACT_RANK = {m: i for i, m in enumerate(REDACTION_MODES)}
_CONTROL = {
    "throttle": "throttle",
    "pace": "pace_tps",
    "redact": "redaction",
    "harden": "harden",
    "cut": "cut_tokens",
}
_SCORE_KEYS = tuple(("score." + s, f) for s, f in SCOPES.items())
_PARAM = {"throttle": "factor", "pace": "tps", "redact": "mode", "harden": "profile", "cut": "tokens"}


@dataclass(slots=True)
class Active:
    """An action in force on one target until ``until``."""

    kind: str
    value: Any
    until: float
    rule: str
    message: str = ""


@dataclass(slots=True)
class Hit:
    rule: str
    mode: str
    key: str
    values: dict[str, float]


@dataclass(slots=True)
class Verdict:
    hits: list[Hit] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # taken (or, shadow, would-be) this request
    controls: dict[str, Any] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    scores: dict[str, float] = field(default_factory=dict)
    block: Active | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    errors: int = 0

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


class Engine:
    """Holds the live rule set and all per-key state; ``swap`` replaces the rules and keeps the state."""

    def __init__(self, ruleset: CompiledRuleSet, *, shadow: bool = False) -> None:
        self.ruleset = ruleset
        self.shadow = shadow  # global dry-run: every rule behaves as mode: shadow
        self.windows: dict[str, dict[str, list[Any]]] = {r.fingerprint: {} for r in ruleset.rules}
        self.scores: dict[str, dict[str, list[float]]] = {s: {} for s in SCOPES}
        self.active: dict[str, dict[tuple[str, str], Active]] = {}
        self.bans: dict[str, list[float]] = {}  # target -> [prior blocks, time of the last one]
        self.alerted: dict[tuple[str, str], float] = {}
        self.hit_counts: dict[str, list[int]] = {}  # rule id -> [hits, shadow hits]
        self.errors: dict[str, int] = {}
        self._score_writes = 0

    # -- rule set -------------------------------------------------------------------------------

    def swap(self, new: CompiledRuleSet) -> None:
        """Install ``new`` atomically (call on the event loop). Window state of rules whose id, key,
        condition and aggregates are unchanged is kept; scores and active actions always are."""
        windows = {r.fingerprint: self.windows.get(r.fingerprint, {}) for r in new.rules}
        self.windows = windows
        self.ruleset = new

    # -- evaluation -----------------------------------------------------------------------------

    def evaluate(self, ctx: dict[str, Any], now: float) -> Verdict:
        """Run request-phase rules on ``ctx`` (mutated: agg.* and score.* keys are added)."""
        v = Verdict()
        rs = self.ruleset
        filled_at = -1
        for rule in rs.request_rules:
            if rule.uses_score and filled_at < 0:
                v.scores = self._fill_scores(ctx, now)
                filled_at = self._score_writes
            self._run(rule, ctx, now, v)
        self._collect(ctx, now, v)
        if filled_at != self._score_writes:  # scores changed after they were read (or never read)
            v.scores = self._fill_scores(ctx, now)
        return v

    def evaluate_response(self, ctx: dict[str, Any], now: float) -> Verdict:
        """Run response-phase rules once usage and status are known (``response.*`` set in ``ctx``)."""
        v = Verdict()
        if self.ruleset.response_rules:
            self._fill_scores(ctx, now)
            for rule in self.ruleset.response_rules:
                self._run(rule, ctx, now, v)
        return v

    def _run(self, rule: CompiledRule, ctx: dict[str, Any], now: float, v: Verdict) -> None:
        try:
            if not rule.when(ctx):
                return
            keyval = ctx[rule.key]
            if keyval == "" or keyval is None:
                return
            values: dict[str, float] = {}
            if rule.aggregates:
                per = self.windows[rule.fingerprint]
                states = per.get(keyval)
                if states is None:
                    if len(per) >= rule.spec.max_keys:
                        del per[next(iter(per))]  # bounded memory under high-cardinality keys
                    states = per[keyval] = [a.new() for a in rule.aggregates]
                for a, st in zip(rule.aggregates, states, strict=True):
                    values[a.name] = ctx["agg." + a.name] = a.add(st, now, ctx)
            if rule.threshold is not None and not rule.threshold(ctx):
                return
        except (EvalError, KeyError, TypeError, ValueError, ArithmeticError):
            # A runtime error (division by zero, a missing feature) reads as "no match", as in CEL.
            v.errors += 1
            self.errors[rule.id] = self.errors.get(rule.id, 0) + 1
            return
        shadow = self.shadow or rule.mode == "shadow"
        v.hits.append(Hit(rule.id, "shadow" if shadow else "enforce", str(keyval), values))
        hc = self.hit_counts.get(rule.id)
        if hc is None:
            hc = self.hit_counts[rule.id] = [0, 0]
        hc[1 if shadow else 0] += 1
        if rule.score is not None:
            for scope in rule.score.to:
                sval = ctx.get(SCOPES[scope])
                if sval:
                    if shadow:
                        v.actions.append(
                            {
                                "rule": rule.id,
                                "do": "score",
                                "on": scope,
                                "points": rule.score.points,
                                "shadow": True,
                            }
                        )
                    else:
                        self._add_score(scope, str(sval), rule.score.points, now)
        for act in rule.actions:
            self._apply(rule, act, str(keyval), ctx, now, v, shadow)

    # -- actions --------------------------------------------------------------------------------

    def _apply(
        self,
        rule: CompiledRule,
        act: ActionSpec,
        keyval: str,
        ctx: Mapping[str, Any],
        now: float,
        v: Verdict,
        shadow: bool,
    ) -> None:
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
                    self.active.setdefault(target, {})[("tag", rule.id)] = Active(
                        "tag", act.param("tag"), now + act.duration, rule.id
                    )
        elif kind == "alert":
            cooldown = act.duration or ALERT_COOLDOWN
            akey = (rule.id, target)
            last = self.alerted.get(akey)
            if last is not None and now - last < cooldown:
                return
            if not shadow:
                self.alerted[akey] = now
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
                entries = self.active.get(target)
                cur = entries.get(("block", rule.id)) if entries else None
                if cur is not None and cur.until > now:
                    return  # already serving this block: no new offence, no extension
                duration = self._ban_duration(target, act, now, commit=not shadow)
                rec["until"] = now + duration
                if not shadow:
                    self.active.setdefault(target, {})[("block", rule.id)] = Active(
                        "block", True, now + duration, rule.id, msg
                    )
        else:  # throttle, pace, redact, harden, cut
            value = act.param(_PARAM[kind])
            rec[_PARAM[kind]] = value
            if act.duration is not None:
                rec["until"] = now + act.duration
                if not shadow:
                    entries = self.active.setdefault(target, {})
                    cur = entries.get((kind, rule.id))
                    if cur is None or cur.until < now + act.duration:
                        entries[(kind, rule.id)] = Active(kind, value, now + act.duration, rule.id)
            elif not shadow:
                merge_control(v.controls, kind, value)
        v.actions.append(rec)

    def _ban_duration(self, target: str, act: ActionSpec, now: float, *, commit: bool) -> float:
        base = float(act.duration or 0.0)
        inc = act.increment
        prior = self.bans.get(target)
        if inc is None:
            if commit:
                self.bans[target] = [(prior[0] if prior else 0) + 1, now]
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
            self.bans[target] = [count + 1, now]
        return duration

    def _collect(self, ctx: Mapping[str, Any], now: float, v: Verdict) -> None:
        """Merge every action still in force on this request's targets into the verdict."""
        active = self.active
        if not active:
            return
        for feat in self.ruleset.action_keys:
            val = ctx.get(feat)
            if not val:
                continue
            target = feat + SEP + str(val)
            entries = active.get(target)
            if not entries:
                continue
            for k, a in list(entries.items()):
                if a.until <= now:
                    del entries[k]
                    continue
                if a.kind == "block":
                    if v.block is None or a.until > v.block.until:
                        v.block = a
                elif a.kind == "tag":
                    v.tags.add(a.value)
                else:
                    merge_control(v.controls, a.kind, a.value)
            if not entries:
                del active[target]

    # -- scores ---------------------------------------------------------------------------------

    def _add_score(self, scope: str, value: str, points: float, now: float) -> None:
        self._score_writes += 1
        table = self.scores[scope]
        cur = table.get(value)
        if cur is None:
            table[value] = [points, now]
            return
        hl = self.ruleset.half_life[scope]
        cur[0] = cur[0] * math.exp(-_LN2 * max(0.0, now - cur[1]) / hl) + points
        cur[1] = now

    def score(self, scope: str, value: str, now: float) -> float:
        cur = self.scores[scope].get(value)
        if cur is None:
            return 0.0
        return cur[0] * math.exp(-_LN2 * max(0.0, now - cur[1]) / self.ruleset.half_life[scope])

    def _fill_scores(self, ctx: dict[str, Any], now: float) -> dict[str, float]:
        """Set ``score.<scope>`` for this request in ``ctx``; returns the non-zero ones."""
        out = {}
        for scope, feat in _SCORE_KEYS:
            table = self.scores[scope[6:]]
            cur = table.get(ctx.get(feat)) if table else None  # type: ignore[arg-type]
            if cur is None:
                ctx[scope] = 0.0
                continue
            s = cur[0] * math.exp(-_LN2 * max(0.0, now - cur[1]) / self.ruleset.half_life[scope[6:]])
            ctx[scope] = s
            out[scope[6:]] = round(s, 3)
        return out

    # -- operations -----------------------------------------------------------------------------

    def pardon(self, scope: str, value: str) -> int:
        """Lift every action on ``scope``/``value``, forget its ban history and score; returns the count."""
        feat = SCOPES.get(scope, scope)
        target = feat + SEP + value
        n = len(self.active.pop(target, {}))
        self.bans.pop(target, None)
        if scope in self.scores:
            self.scores[scope].pop(value, None)
        return n

    def sweep(self, now: float) -> int:
        """Drop idle per-key state (windows past their span, faded scores, expired actions)."""
        dropped = 0
        for rule in self.ruleset.rules:
            if not rule.aggregates:
                continue
            span = max((a.window * (8 if a.kind == "ewma" else 1)) for a in rule.aggregates)
            per = self.windows.get(rule.fingerprint, {})
            for key in [
                k
                for k, sts in per.items()
                if max(a.last_seen(s) for a, s in zip(rule.aggregates, sts, strict=True)) < now - span
            ]:
                del per[key]
                dropped += 1
        for scope, table in self.scores.items():
            for key in [k for k in table if self.score(scope, k, now) < 0.01]:
                del table[key]
                dropped += 1
        for target in list(self.active):
            entries = self.active[target]
            for k in [k for k, a in entries.items() if a.until <= now]:
                del entries[k]
            if not entries:
                del self.active[target]
        for target in [t for t, (_, last) in self.bans.items() if now - last > 30 * 86400]:
            del self.bans[target]
        for k in [k for k, t in self.alerted.items() if now - t > 86400]:
            del self.alerted[k]
        return dropped

    def state_of(self, scope: str, value: str, now: float) -> dict[str, Any]:
        """Scores, active actions and window values for one scope value (admin API, explain)."""
        feat = SCOPES.get(scope, scope)
        target = feat + SEP + value
        windows: dict[str, dict[str, float]] = {}
        for rule in self.ruleset.rules:
            if rule.key == feat and rule.aggregates:
                sts = self.windows.get(rule.fingerprint, {}).get(value)
                if sts is not None:
                    windows[rule.id] = {
                        a.name: a.read(s, now) for a, s in zip(rule.aggregates, sts, strict=True)
                    }
        active = [
            {"do": a.kind, "value": a.value, "until": a.until, "rule": a.rule}
            for a in self.active.get(target, {}).values()
            if a.until > now
        ]
        ban = self.bans.get(target)
        return {
            "scope": scope,
            "value": value,
            "score": round(self.score(scope, value, now), 3) if scope in self.scores else None,
            "active": active,
            "prior_blocks": int(ban[0]) if ban else 0,
            "windows": windows,
        }
