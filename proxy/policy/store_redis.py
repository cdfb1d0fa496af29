"""Rule state in Redis, shared by every replica: one EVALSHA of ``lua/rules.lua`` per request.

``fetch`` packs the request's window updates, score reads and target reads into one script call (one
round trip), together with the writes other requests decided since the last call (piggybacked, so
they reach Redis in order on the same connection). Writes left over when no request comes along are
sent by a background flush after ``flush_delay``. The queue is bounded (``max_pending`` ops); past it
new writes are dropped and counted. A request always sees its own writes at once (``RedisView``).
With limits in the same Redis, the request's limiter ops ride in the same call too (``fetch(...,
limits=)``, one script composed of this one and ``apply.lua``: ``proxy.state.joint``).

Keys (all under ``key_prefix(namespace)``, so one Redis Cluster hash tag per namespace, as for limits):

``rw SEP fingerprint SEP key``          string per (rule, key value): its aggregates' states (rings, ewma,
                                        gaps, last distinct count) as packed doubles; one MGET per request
``rw ... SEP <i> SEP <bucket>``         HyperLogLog of a distinct aggregate's bucket
``re SEP feature SEP value``            entity hash of a scope value: score ``v``/``t``, actions
                                        ``a SEP kind SEP rule`` -> "until json", ban history ``b`` ->
                                        "count last", alert cooldowns ``c SEP rule`` -> last alert time

Scores are decayed in Python from the stored (value, time) with the memory store's own ``decay``; writes
decay them in Lua with the same steps. Every key carries a TTL (window span, score fade-out, last action
end, ban and alert memory), so idle state vanishes by itself and there is nothing to sweep. Window state
is not capped by ``max_keys``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import struct
import zlib
from typing import TYPE_CHECKING, Any

import orjson

from proxy.policy.spec import SCOPES
from proxy.policy.store import ALERT_MEMORY, BAN_MEMORY, LN2, SCORE_KEYS, SEP, Active, Fetch, decay
from proxy.state.base import state_key
from proxy.state.redis import eval_script, key_prefix, load_script
from proxy.state.resp import Framed, RespClient, frame
from proxy.tasks import spawn

if TYPE_CHECKING:
    from proxy.policy.compiler import CompiledRule, CompiledRuleSet
    from proxy.policy.store_faults import RuleStateMetrics
    from proxy.state.joint import Joint, LimitsPart

log = logging.getLogger("distillguard.rules.state")
_LN2 = frame(repr(LN2))
# Arguments that are the same in every call, framed once (``proxy.state.resp.Framed``).
_W, _E, _F, _P, _V = (frame(op) for op in "WEFPV")
_SMALL = tuple(frame(str(i)) for i in range(64))  # counts (windows in a call, inputs of a window)


class RedisView:
    """One request's snapshot of the fetched state plus its own writes (queued on ``commit``)."""

    __slots__ = ("alerts", "bans", "now", "score_writes", "scores", "store", "targets", "values", "writes")

    def __init__(self, store: RedisRuleStore, now: float) -> None:
        self.store = store
        self.now = now
        self.values: list[list[float]] = []
        self.scores: dict[tuple[str, str], float | None] = {}
        self.targets: dict[str, dict[tuple[str, str], Active]] = {}
        self.bans: dict[str, tuple[int, float]] = {}
        self.alerts: dict[tuple[str, str], float] = {}
        self.writes: list[tuple[Any, ...]] = []
        self.score_writes = 0

    def fill_scores(self, ctx: dict[str, Any]) -> dict[str, float]:
        out = {}
        scores = self.scores
        for key, scope, feat in SCORE_KEYS:
            val = ctx.get(feat)
            s = scores.get((scope, str(val))) if val else None
            if s is None:
                ctx[key] = 0.0
                continue
            ctx[key] = s
            out[scope] = round(s, 3)
        return out

    def score(self, scope: str, value: str) -> float | None:
        return self.scores.get((scope, value))

    def add_score(self, scope: str, value: str, points: float) -> None:
        cur = self.scores.get((scope, value))
        self.scores[(scope, value)] = points if cur is None else cur + points
        self.score_writes += 1
        self.writes.append(("S", scope, value, points))

    def actions(self, target: str) -> dict[tuple[str, str], Active] | None:
        return self.targets.get(target)

    def has_actions(self) -> bool:
        return bool(self.targets)

    def set_action(self, target: str, key: tuple[str, str], act: Active) -> None:
        self.targets.setdefault(target, {})[key] = act
        self.writes.append(("A", target, act))

    def drop_action(self, target: str, key: tuple[str, str]) -> None:
        entries = self.targets.get(target)
        if entries is not None:
            entries.pop(key, None)  # expired: the store filters it on read, no write needed

    def ban(self, target: str) -> tuple[int, float] | None:
        return self.bans.get(target)

    def set_ban(self, target: str, count: int) -> None:
        self.bans[target] = (count, self.now)
        self.writes.append(("B", target, count))

    def alert_time(self, rule: str, target: str) -> float | None:
        return self.alerts.get((rule, target))

    def set_alerted(self, rule: str, target: str) -> None:
        self.alerts[(rule, target)] = self.now
        self.writes.append(("C", target, rule))

    def commit(self) -> None:
        if self.writes:
            self.store.enqueue(self.writes, self.now)


def parse_entity(view: RedisView, target: str, flat: list[bytes]) -> tuple[float, float] | None:
    """Fill ``view`` from an entity hash's HGETALL reply; returns its raw score (value, time), if any."""
    entries: dict[tuple[str, str], Active] = {}
    v = t = None
    for i in range(0, len(flat), 2):
        f = flat[i]
        raw = flat[i + 1]
        c = f[:1]
        if c == b"a":
            _, kind, rule = f.decode().split(SEP, 2)
            until, _, payload = raw.partition(b" ")
            value, message = orjson.loads(payload)
            entries[(kind, rule)] = Active(kind, value, float(until), rule, message)
        elif c == b"c":
            view.alerts[(f.decode().split(SEP, 1)[1], target)] = float(raw)
        elif f == b"b":
            count, last = raw.split()
            view.bans[target] = (int(count), float(last))
        elif f == b"v":
            v = float(raw)
        elif f == b"t":
            t = float(raw)
    if entries:
        view.targets[target] = entries
    return (v, t) if v is not None and t is not None else None


class RedisRuleStore:
    """Rule state in Redis through a ``RespClient``. ``round_trips`` counts script calls made on behalf
    of requests (``fetch``), ``flushes`` the background write batches, ``reloads`` NOSCRIPT reloads."""

    remote = True

    def __init__(
        self,
        client: RespClient,
        ruleset: CompiledRuleSet,
        *,
        namespace: str = "distillguard",
        flush_delay: float = 0.002,
        max_pending: int = 10_000,
        timeout: float = 0.25,
    ) -> None:
        self.client = client
        self.ruleset = ruleset
        self.prefix = key_prefix(namespace)
        self.script = load_script("rules.lua")
        self.sha = hashlib.sha1(self.script.encode()).hexdigest()
        self.flush_delay = flush_delay
        self.max_pending = max_pending
        self.timeout = timeout
        self.metrics: RuleStateMetrics | None = None
        self.writes_allowed = lambda: True  # the fault layer closes this while the store is down
        self.round_trips = 0
        self.flushes = 0
        self.reloads = 0
        self._wbase: dict[str, str] = {}  # rule fingerprint -> window key prefix
        self._specs: dict[str, tuple[Framed, ...]] = {}  # rule fingerprint -> static_fields
        self._pk: list[str] = []  # pending writes, packed
        self._pa: list[Any] = []
        self._pn = 0
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._acts: tuple[Any, frozenset[str]] = (None, frozenset())

    def swap(self, new: CompiledRuleSet) -> None:
        self.ruleset = new

    def _action_feats(self) -> frozenset[str]:
        rs = self.ruleset
        if self._acts[0] is not rs:
            self._acts = (rs, frozenset(rs.action_keys))
        return self._acts[1]

    # -- keys -----------------------------------------------------------------------------------

    def window_key(self, rule: CompiledRule, keyval: Any) -> str:
        base = self._wbase.get(rule.fingerprint)
        if base is None:
            base = self._wbase[rule.fingerprint] = self.prefix + state_key("rw", rule.fingerprint) + SEP
        v = str(keyval)
        return base + (v.replace(SEP, "") if SEP in v else v)  # as state_key does

    def _static(self, rule: CompiledRule) -> tuple[Framed, ...]:
        spec = self._specs.get(rule.fingerprint)
        if spec is None:
            spec = self._specs[rule.fingerprint] = static_fields(rule)
        return spec

    def entity_key(self, target: str) -> str:
        """The hash of one scope value (``feature SEP value``): its score, actions, bans, alert times."""
        # target is feature SEP value; a SEP inside the value is dropped, as state_key does
        feat, _, value = target.partition(SEP)
        return self.prefix + "re" + SEP + feat + SEP + (value.replace(SEP, "") if SEP in value else value)

    # -- calls ----------------------------------------------------------------------------------

    async def _eval(self, keys: list[str], args: list[Any], joint: Joint | None = None) -> Any:
        sha, script = (self.sha, self.script) if joint is None else (joint.sha, joint.script)
        out, reloaded = await eval_script(self.client, sha, script, keys, args)
        if reloaded:
            self.reloads += 1
        return out

    def _take_writes(self, keys: list[str], args: list[Any]) -> int:
        n = self._pn
        if n:
            keys += self._pk
            args += self._pa
            self._pk, self._pa, self._pn = [], [], 0
        return n

    def _failed_writes(self, n: int, e: BaseException) -> None:
        if n:
            if self.metrics is not None:
                self.metrics.writes.labels("failed").inc(n)
            log.warning("rule state: %d write(s) lost: %s: %s", n, type(e).__name__, e)

    def _sent_writes(self, n: int) -> None:
        if n and self.metrics is not None:
            self.metrics.writes.labels("sent").inc(n)

    async def fetch(self, req: Fetch, now: float, limits: LimitsPart | None = None) -> RedisView:
        """Window updates, score and action reads of one request (and the writes queued before it) in one
        script call; with ``limits``, the request's limiter ops too, in the same call (``proxy.state.joint``)."""
        keys: list[str] = []
        args: list[Any] = [repr(now), _LN2]
        nw = self._take_writes(keys, args)
        if req.updates:
            nu = len(req.updates)
            args += (_W, _SMALL[nu] if nu < 64 else nu)
            for rule, keyval, xs in req.updates:
                keys.append(self.window_key(rule, keyval))
                _pack_update(args, rule, xs, now, self._static(rule))
        # Entities: the action targets and the scope values whose scores are read, each read once.
        entities = dict.fromkeys(req.targets)
        for scope, value in req.scores:
            entities.setdefault(SCOPES[scope] + SEP + value)
        if limits is None:
            for target in entities:
                keys.append(self.entity_key(target))
                args.append(_E)
        else:  # the action targets' entities also tell the limits part what is in force (F)
            acts = self._action_feats()
            for target in entities:
                keys.append(self.entity_key(target))
                args.append(_F if target.partition(SEP)[0] in acts else _E)
        self.round_trips += 1
        if self.metrics is not None:
            self.metrics.calls.labels("fetch").inc()
        try:
            if limits is None:
                out = await self._eval(keys, args)
            else:
                joint = limits.joint
                keys, args = joint.pack(limits, keys, args)
                out = joint.unpack(limits, await self._eval(keys, args, joint))
        except BaseException as e:
            self._failed_writes(nw, e)
            raise
        self._sent_writes(nw)
        view = RedisView(self, now)
        n = len(req.updates)
        view.values = [list(_doubles(b)) for b in out[:n]]
        raw = {}
        for target, flat in zip(entities, out[n:], strict=True):
            if flat:
                sc = parse_entity(view, target, flat)
                if sc is not None:
                    raw[target] = sc
        hl = self.ruleset.half_life
        for scope, value in req.scores:
            sc = raw.get(SCOPES[scope] + SEP + value)
            view.scores[(scope, value)] = None if sc is None else decay(sc[0], sc[1], now, hl[scope])
        return view

    # -- writes ---------------------------------------------------------------------------------

    def enqueue(self, writes: list[tuple[Any, ...]], now: float) -> None:
        """Queue a decided request's writes; sent with the next fetch or by the background flush."""
        if not self.writes_allowed() or self._pn + len(writes) > self.max_pending:
            if self.metrics is not None:
                self.metrics.writes.labels("dropped").inc(len(writes))
            return
        keys, args, t = self._pk, self._pa, repr(now)
        hl = self.ruleset.half_life
        for w in writes:
            kind = w[0]
            if kind == "S":
                keys.append(self.entity_key(SCOPES[w[1]] + SEP + w[2]))
                args += ("S", t, repr(w[3]), repr(hl[w[1]]))
            elif kind == "A":
                act: Active = w[2]
                keys.append(self.entity_key(w[1]))
                field = state_key("a", act.kind, act.rule)
                payload = orjson.dumps([act.value, act.message]).decode()
                longest = "0" if act.kind in ("block", "tag") else "1"
                args += ("A", t, field, repr(act.until), payload, longest, repr(max(act.until - now, 0.001)))
            elif kind == "B":
                keys.append(self.entity_key(w[1]))
                args += ("B", t, str(w[2]), repr(BAN_MEMORY))
            else:  # "C"
                keys.append(self.entity_key(w[1]))
                args += ("C", t, state_key("c", w[2]), repr(ALERT_MEMORY))
        self._pn += len(writes)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.flush_delay, self._kick)

    def _kick(self) -> None:
        self._timer = None
        if self._pn and self._flushing is None:
            self._flushing = spawn(self._flush_task(), "rule-state-flush")

    async def _flush_task(self) -> None:
        try:
            await self.flush()
        finally:
            self._flushing = None
            if self._pn and self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.flush_delay, self._kick)

    async def flush(self) -> None:
        """Send every queued write now (tests, shutdown; normally the background flush does it)."""
        keys: list[str] = []
        args: list[Any] = ["0", _LN2]
        n = self._take_writes(keys, args)
        if not n:
            return
        self.flushes += 1
        if self.metrics is not None:
            self.metrics.calls.labels("flush").inc()
        try:
            async with asyncio.timeout(self.timeout):
                await self._eval(keys, args)
        except Exception as e:
            self._failed_writes(n, e)
        else:
            self._sent_writes(n)

    # -- operations -----------------------------------------------------------------------------

    async def pardon(self, scope: str, target: str, value: str, now: float) -> int:
        keys: list[str] = []
        args: list[Any] = [repr(now), _LN2]
        self._take_writes(keys, args)
        keys.append(self.entity_key(target))
        args.append(_P)
        out = await self._eval(keys, args)
        return int(out[-1])

    async def state(self, scope: str, feat: str, value: str, now: float) -> dict[str, Any]:
        keys: list[str] = []
        args: list[Any] = [repr(now), _LN2]
        self._take_writes(keys, args)
        rules = [r for r in self.ruleset.rules if r.key == feat and r.aggregates]
        for rule in rules:
            keys.append(self.window_key(rule, value))
            args.append(_V)
            _pack_read(args, rule, now, self._static(rule))
        target = feat + SEP + value
        keys.append(self.entity_key(target))
        args.append(_E)
        out = await self._eval(keys, args)
        windows = {
            r.id: {a.name: x for a, x in zip(r.aggregates, _doubles(blob), strict=True)}
            for r, blob in zip(rules, out, strict=False)
            if blob
        }
        view = RedisView(self, now)
        sc = parse_entity(view, target, out[-1])
        score = None
        if scope in self.ruleset.half_life:
            score = 0.0 if sc is None else round(decay(sc[0], sc[1], now, self.ruleset.half_life[scope]), 3)
        ban = view.bans.get(target)
        return {
            "scope": scope,
            "value": value,
            "score": score,
            "active": [
                {"do": a.kind, "value": a.value, "until": a.until, "rule": a.rule}
                for a in view.targets.get(target, {}).values()
                if a.until > now
            ],
            "prior_blocks": ban[0] if ban else 0,
            "windows": windows,
        }

    def sweep_now(self, now: float) -> int:
        return 0  # every key expires by itself

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            await self.flush()
        finally:
            await self.client.aclose()


def _doubles(blob: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(blob) // 8}d", blob)


def static_spec(rule: CompiledRule) -> tuple[bytes, tuple[bytes, ...]]:
    """A window's static fields, compactly: "ttl,nagg" and one token per aggregate (kind letter and
    parameters, comma-separated); ``static_fields`` sends them to the script as separate fields."""
    toks = []
    for a in rule.aggregates:
        k = a.kind
        if k == "rate":
            t = f"r{a.n},{a.per!r},{a.window!r}"
        elif k == "distinct":
            t = f"d{a.n},{a.window + a.width!r},{a.max_values}"
        elif k == "ewma":
            t = f"e{a.alpha_k!r}"
        elif k == "interarrival":
            t = f"i{a.samples},{a.stat}"
        else:
            t = f"{ {'count': 'c', 'sum': 's', 'ratio': 'q'}[k]}{a.n}"
        toks.append(t.encode())
    span = max(a.window * (8 if a.kind == "ewma" else 1) + a.width for a in rule.aggregates)
    return f"{max(span, 1.0)!r},{len(toks)}".encode(), tuple(toks)


def static_fields(rule: CompiledRule) -> tuple[Framed, ...]:
    """The static fields of a rule's windows for the script (``specs`` there), framed once: ttl (ms), nagg,
    the number of fields that follow, then per aggregate its kind letter and parameters (the tokens of
    ``static_spec`` split at their commas; a distinct count's sketch ttl in ms)."""
    head, toks = static_spec(rule)
    ttl, nagg = head.split(b",")
    fields: list[bytes] = []
    for t in toks:
        params = t[1:].split(b",") if len(t) > 1 else []
        if t[:1] == b"d":
            params[1] = _ms(params[1])
        fields += (t[:1], *params)
    return tuple(frame(f) for f in (_ms(ttl), nagg, b"%d" % len(fields), *fields))


def _ms(seconds: bytes) -> bytes:
    return b"%d" % math.ceil(float(seconds) * 1000)


def _pack_update(args: list[Any], rule: CompiledRule, xs: list[Any], now: float, static: Any) -> None:
    """One window of a W op (see ``specs`` in the script): its static fields, then this event's."""
    nadd = len(xs)
    args += static
    args.append(_SMALL[nadd] if nadd < 64 else nadd)
    for i, a in enumerate(rule.aggregates):
        k = a.kind
        if k == "ewma":
            if i < nadd:
                args.append(repr(xs[i]))
        elif k != "interarrival":
            args.append(int(now // a.width))
            if i < nadd:
                if k == "sum":
                    args.append(repr(xs[i]))
                elif k == "ratio":
                    args.append("1" if xs[i] else "0")
                elif k == "distinct":
                    v = str(xs[i])
                    args += (v, zlib.crc32(v.encode()))  # the script skips PFADD for the same value again


def _pack_read(args: list[Any], rule: CompiledRule, now: float, static: Any) -> None:
    _pack_update(args, rule, [], now, static)
