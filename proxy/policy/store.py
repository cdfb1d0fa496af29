"""Where rule state lives: windows, decaying scores, active actions, ban history and alert cooldowns.

The engine evaluates a request in phases so a remote store costs one round trip on the hot path:

1. each rule's ``when`` and its aggregates' inputs are computed locally (pure functions of features);
2. the store gets one ``Fetch``: the window updates of the matched rules, and reads of the scores of
   the request's scope values and of the state of its action targets;
3. ``fetch`` applies the updates atomically and returns a ``RuleView`` with the new window values, the
   scores and the targets' actions, bans and alert cooldowns;
4. thresholds, hits and actions are decided locally on that view; the view records what changed
   (``add_score``, ``set_action``, ``set_ban``, ``set_alerted``) and shows it to later rules of the same
   request at once;
5. ``view.commit()`` hands the writes to the store (memory: already done; Redis: a background batch).

``MemoryRuleStore`` is the embedded default and its view is the store itself (writes are immediate),
which is exactly the engine's single-process behaviour. Its window states sit in one row per key value
and key feature, shared by every rule keyed by that feature (``row_layout``: an account's windows cost
one dict entry and one tuple, not one of each per rule); ``windows`` still shows each rule's states as a
table of its own. ``proxy.policy.store_redis`` keeps the same state in Redis for many replicas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from proxy.policy.spec import SCOPES

if TYPE_CHECKING:
    from proxy.policy.compiler import CompiledRule, CompiledRuleSet

LN2 = math.log(2)
SEP = "\x1f"  # cannot occur in a feature name; separates feature and value in target keys
SCORE_KEYS = tuple(("score." + s, s, f) for s, f in SCOPES.items())  # (ctx key, scope, feature)
NO_SCORES = {key: 0.0 for key, _, _ in SCORE_KEYS}  # ``score.*`` of a request whose scope values have none
BAN_MEMORY = 30 * 86400.0  # ban history kept this long after the last block
ALERT_MEMORY = 86400.0  # alert cooldown records kept this long


@dataclass(slots=True)
class Active:
    """An action in force on one target until ``until``."""

    kind: str
    value: Any
    until: float
    rule: str
    message: str = ""


# One matched rule's event: (rule, key value, args) where ``args[i]`` is what aggregate ``i`` adds
# (``Aggregate.arg``). When an aggregate's input failed to evaluate, ``args`` holds the inputs before it
# (those are still added). A plain tuple: one is built per matched rule per request.
WindowUpdate = tuple["CompiledRule", Any, list[Any]]


@dataclass(slots=True)
class Fetch:
    """What one evaluation step needs from the store."""

    updates: list[WindowUpdate] = field(default_factory=list)
    scores: list[tuple[str, str]] = field(default_factory=list)  # (scope, value) to read
    targets: list[str] = field(default_factory=list)  # feature + SEP + value


class RuleView(Protocol):
    """One request's window of the state, after ``fetch``. Reads see this request's own writes."""

    now: float
    values: list[list[float]]  # new values of each update's aggregates, in ``Fetch.updates`` order
    score_writes: int  # bumped by add_score

    def fill_scores(self, ctx: dict[str, Any]) -> dict[str, float]:
        """Set ``score.<scope>`` in ``ctx`` for the request's scope values (0.0 when unknown); returns
        the known ones, rounded."""
        ...

    def score(self, scope: str, value: str) -> float | None: ...

    def add_score(self, scope: str, value: str, points: float) -> None: ...

    def actions(self, target: str) -> dict[tuple[str, str], Active] | None: ...

    def has_actions(self) -> bool: ...

    def set_action(self, target: str, key: tuple[str, str], act: Active) -> None: ...

    def drop_action(self, target: str, key: tuple[str, str]) -> None: ...

    def ban(self, target: str) -> tuple[int, float] | None: ...

    def set_ban(self, target: str, count: int) -> None: ...

    def alert_time(self, rule: str, target: str) -> float | None: ...

    def set_alerted(self, rule: str, target: str) -> None: ...

    def commit(self) -> None: ...


def decay(value: float, since: float, now: float, half_life: float) -> float:
    """A score ``value`` set at ``since``, decayed to ``now`` (the Lua script computes the same)."""
    return value * math.exp(-LN2 * max(0.0, now - since) / half_life)


# Where a rule's window states sit: (key feature, offset in a row of that feature's table).
Slot = tuple[str, int]
# One key value's window states of every rule keyed by one feature (None: that rule has none for it yet).
# A tuple (one allocation, no spare capacity), replaced when a rule's states are created or dropped.
Row = tuple[Any, ...]


def row_layout(rules: Iterable[CompiledRule]) -> tuple[dict[str, Slot], dict[str, int]]:
    """Rows of window state, one per key value and key feature, shared by every rule keyed by that feature:
    each rule with aggregates gets ``len(aggregates)`` consecutive slots, in rule order. Returns
    (fingerprint -> (feature, offset), feature -> row width). A pure function of the rules, so the engine's
    generated code and the store agree on it."""
    slots: dict[str, Slot] = {}
    width: dict[str, int] = {}
    for r in rules:
        if r.aggregates and r.fingerprint not in slots:
            off = width.get(r.key, 0)
            slots[r.fingerprint] = (r.key, off)
            width[r.key] = off + len(r.aggregates)
    return slots, width


def _score_filler(half_life: Mapping[str, float]) -> Callable[[dict[str, Any], float, Any], dict[str, float]]:
    """``fill_scores`` unrolled over the scopes (every request): ``fill(ctx, now, scores)`` sets every
    ``score.<scope>`` in ``ctx`` (0.0 unless the request's value of that scope has a score; most scopes'
    tables are empty, which costs one test each) and returns the known ones, rounded."""
    ns: dict[str, Any] = {"__builtins__": {}, "_NO": NO_SCORES, "_decay": decay, "_round": round}
    src = ["def fill(ctx, now, scores):", "    ctx.update(_NO)", "    out = {}"]
    for i, (key, scope, feat) in enumerate(SCORE_KEYS):
        ns[f"_h{i}"] = half_life[scope]
        src += [f"    t = scores[{scope!r}]", "    if t:", f"        cur = t.get(ctx.get({feat!r}))",
                "        if cur is not None:",
                f"            s = ctx[{key!r}] = _decay(cur.real, cur.imag, now, _h{i})",
                f"            out[{scope!r}] = _round(s, 3)"]
    src.append("    return out")
    exec(compile("\n".join(src), "<scores>", "exec"), ns)  # built from the fixed scope names above
    fill: Callable[[dict[str, Any], float, Any], dict[str, float]] = ns["fill"]
    return fill


def _fresh_states(aggs: tuple[Any, ...]) -> Callable[[], tuple[Any, ...]]:
    """A function making one rule's empty window states as a tuple (one per new key: no loop for up to
    four aggregates)."""
    makers = tuple(a.fresh for a in aggs)
    if len(makers) == 1:
        f0 = makers[0]
        return lambda: (f0(),)
    if len(makers) == 2:
        f0, f1 = makers
        return lambda: (f0(), f1())
    if len(makers) == 3:
        f0, f1, f2 = makers
        return lambda: (f0(), f1(), f2())
    if len(makers) == 4:  # (the default pack's template-spread rules)
        f0, f1, f2, f3 = makers
        return lambda: (f0(), f1(), f2(), f3())
    return lambda: tuple([f() for f in makers])


class RuleTable(Mapping[Any, tuple[Any, ...]]):
    """One rule's window states by key value (a tuple, as if the rule had a table of its own), read
    through the shared rows: tools, tests, explain. Built anew for each layout (``MemoryRuleStore.swap``)."""

    def __init__(self, store: MemoryRuleStore, rows: dict[Any, Row], fingerprint: str, off: int,
                 size: int) -> None:
        self.store, self.rows, self.fp, self.off, self.end = store, rows, fingerprint, off, off + size

    def get(self, key: Any, default: Any = None) -> Any:
        row = self.rows.get(key)
        return default if row is None or row[self.off] is None else tuple(row[self.off : self.end])

    def __getitem__(self, key: Any) -> tuple[Any, ...]:
        out = self.get(key)
        if out is None:
            raise KeyError(key)
        return out

    def __iter__(self) -> Iterator[Any]:
        off = self.off
        return iter([k for k, row in self.rows.items() if row[off] is not None])

    def __len__(self) -> int:
        return self.store.counts[self.fp]


class MemoryRuleStore:
    """Per-process rule state (the ``memory://`` default). Synchronous; ``fetch_now`` is its hot path."""

    remote = False

    def __init__(self, ruleset: CompiledRuleSet) -> None:
        self.ruleset = ruleset
        # Window state: key feature -> key value -> its row, one tuple holding the states of every rule keyed
        # by that feature (``row_layout``; a rule's slots are None until it first updates that key). One
        # row per account rather than a dict entry and a tuple per rule and account: ~400 B an account.
        self.slots, self.widths = row_layout(ruleset.rules)
        self.rows: dict[str, dict[Any, Row]] = {f: {} for f in self.widths}
        self.counts: dict[str, int] = dict.fromkeys(self.slots, 0)  # keys per rule (``max_keys``)
        self.rules_by_fp = {r.fingerprint: r for r in ruleset.rules}
        self.windows: dict[str, Any] = {}  # fingerprint -> RuleTable (typed loosely: read as per-rule dicts)
        self._tables()
        # scope -> value -> points + 1j * the time they were set: one complex, replaced on each addition (32 B,
        # no GC header; a (points, time) tuple with its float took 80). Typed loosely: ``Engine.scores``
        # still annotates the values as (points, time) tuples.
        self.scores: dict[str, dict[str, Any]] = {s: {} for s in SCOPES}
        # target -> its one action (the usual case: no dict per target) or {(kind, rule): action}
        self.active: dict[str, Active | dict[tuple[str, str], Active]] = {}
        self.bans: dict[str, list[float]] = {}  # target -> [prior blocks, time of the last one]
        self.alerted: dict[tuple[str, str], float] = {}
        self.now = 0.0  # time of the view being decided (the store is its own view)
        self.values: list[list[float]] = []
        self.score_writes = 0

    def swap(self, new: CompiledRuleSet) -> None:
        """Take ``new``'s layout, keeping the states of rules whose fingerprint is unchanged. A feature's
        table is kept as is when its layout did not change, else its rows are rebuilt once."""
        slots, widths = row_layout(new.rules)
        rows: dict[str, dict[Any, Row]] = {}
        counts: dict[str, int] = {}
        for feat, width in widths.items():
            mine = {fp: off for fp, (f, off) in slots.items() if f == feat}
            old = {fp: off for fp, (f, off) in self.slots.items() if f == feat}
            if mine == old and self.widths.get(feat) == width:
                rows[feat] = self.rows[feat]
                counts.update((fp, self.counts[fp]) for fp in mine)
                continue
            moves = [(old[fp], off, len(self.rules_by_fp[fp].aggregates)) for fp, off in mine.items() if fp in old]
            table: dict[Any, Row] = {}
            for key, row in self.rows.get(feat, {}).items():
                out: list[Any] = [None] * width
                for o, n, size in moves:
                    out[n : n + size] = row[o : o + size]
                if any(x is not None for x in out):
                    table[key] = tuple(out)
            rows[feat] = table
            for fp, off in mine.items():
                counts[fp] = sum(1 for row in table.values() if row[off] is not None)
        self.slots, self.widths, self.rows, self.counts = slots, widths, rows, counts
        self.rules_by_fp = {r.fingerprint: r for r in new.rules}
        self.ruleset = new
        self._tables()

    def _tables(self) -> None:
        self._fill = _score_filler(self.ruleset.half_life)
        # Per rule with windows: what ``row`` needs to give it its states in a row (a new key's row whole).
        self.makers: dict[str, tuple[str, int, int, Callable[[], tuple[Any, ...]], Row, Row]] = {}
        for fp, (feat, off) in self.slots.items():
            end = off + len(self.rules_by_fp[fp].aggregates)
            self.makers[fp] = (feat, off, end, _fresh_states(self.rules_by_fp[fp].aggregates), (None,) * off,
                               (None,) * (self.widths[feat] - end))
        self.windows = {
            fp: RuleTable(self, self.rows[feat], fp, off, len(self.rules_by_fp[fp].aggregates))
            for fp, (feat, off) in self.slots.items()
        }

    # -- fetch ----------------------------------------------------------------------------------

    def fetch_now(self, req: Fetch, now: float) -> MemoryRuleStore:
        self.now = now
        updates = req.updates
        self.values = [self.update(u, now) for u in updates] if updates else []
        return self

    async def fetch(self, req: Fetch, now: float) -> MemoryRuleStore:
        return self.fetch_now(req, now)

    def update(self, u: WindowUpdate, now: float) -> list[float]:
        rule, keyval, args = u
        row = self.row(rule, keyval)
        off = self.slots[rule.fingerprint][1]
        return [a.push(row[off + j], now, x) for j, (a, x) in enumerate(zip(rule.aggregates, args, strict=False))]

    def row(self, rule: CompiledRule, keyval: Any) -> Row:
        """The row of ``keyval`` in ``rule``'s key feature table, with ``rule``'s states created when new
        (they start at ``slots[rule.fingerprint][1]``)."""
        fp = rule.fingerprint
        feat, off, end, fresh, before, after = self.makers[fp]
        table = self.rows[feat]
        row = table.get(keyval)
        if row is None or row[off] is None:
            if self.counts[fp] >= rule.spec.max_keys:
                self._evict(rule, table, off)  # bounded memory under high-cardinality keys
                row = table.get(keyval)
            if row is None:  # a new key: the other rules' slots empty
                row = table[keyval] = before + fresh() + after
            else:
                row = table[keyval] = row[:off] + fresh() + row[end:]
            self.counts[fp] += 1
        return row

    def states(self, rule: CompiledRule, keyval: Any) -> tuple[Any, ...]:
        """The window states of ``rule`` for ``keyval`` (created empty when new)."""
        row = self.row(rule, keyval)
        off = self.slots[rule.fingerprint][1]
        return tuple(row[off : off + len(rule.aggregates)])

    def _evict(self, rule: CompiledRule, table: dict[Any, Row], off: int) -> None:
        """Drop ``rule``'s states of its oldest keys (in row order: the order its key values first got a
        row), a sixteenth of ``max_keys`` at once, so the scan from the front of the table (over rows
        deleted before, which a dict keeps until it resizes, and rows of other rules) is paid once per
        ``max_keys / 16`` new keys rather than per key. Rows left with no state go."""
        todo = max(1, rule.spec.max_keys >> 4)
        gone = []
        size = len(rule.aggregates)
        for key, row in table.items():
            if row[off] is None:
                continue
            row = table[key] = row[:off] + (None,) * size + row[off + size :]
            if all(x is None for x in row):
                gone.append(key)
            todo -= 1
            if not todo:
                break
        self.counts[rule.fingerprint] -= max(1, rule.spec.max_keys >> 4) - todo
        for key in gone:
            del table[key]

    # -- the view -------------------------------------------------------------------------------

    def score(self, scope: str, value: str) -> float | None:
        cur = self.scores[scope].get(value)
        if cur is None:
            return None
        return decay(cur.real, cur.imag, self.now, self.ruleset.half_life[scope])

    def fill_scores(self, ctx: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = self._fill(ctx, self.now, self.scores)
        return out

    def add_score(self, scope: str, value: str, points: float) -> None:
        self.score_writes += 1
        table = self.scores[scope]
        cur = table.get(value)
        now = self.now
        if cur is None:
            table[value] = complex(points, now)
        else:
            table[value] = complex(decay(cur.real, cur.imag, now, self.ruleset.half_life[scope]) + points, now)

    def actions(self, target: str) -> dict[tuple[str, str], Active] | None:
        cur = self.active.get(target)
        if cur is None or isinstance(cur, dict):
            return cur
        return {(cur.kind, cur.rule): cur}

    def has_actions(self) -> bool:
        return bool(self.active)

    def set_action(self, target: str, key: tuple[str, str], act: Active) -> None:
        active = self.active
        cur = active.get(target)
        if isinstance(cur, dict):
            cur[key] = act
        elif (cur is None or (cur.kind, cur.rule) == key) and key == (act.kind, act.rule):
            active[target] = act
        else:
            entries: dict[tuple[str, str], Active] = {} if cur is None else {(cur.kind, cur.rule): cur}
            entries[key] = act
            active[target] = entries

    def drop_action(self, target: str, key: tuple[str, str]) -> None:
        cur = self.active.get(target)
        if isinstance(cur, dict):
            cur.pop(key, None)
            if not cur:
                del self.active[target]
        elif cur is not None and (cur.kind, cur.rule) == key:
            del self.active[target]

    def _entries(self, target: str) -> dict[tuple[str, str], Active]:
        return self.actions(target) or {}

    def ban(self, target: str) -> tuple[int, float] | None:
        b = self.bans.get(target)
        return (int(b[0]), b[1]) if b is not None else None

    def set_ban(self, target: str, count: int) -> None:
        self.bans[target] = [count, self.now]

    def alert_time(self, rule: str, target: str) -> float | None:
        return self.alerted.get((rule, target))

    def set_alerted(self, rule: str, target: str) -> None:
        self.alerted[(rule, target)] = self.now

    def commit(self) -> None:
        pass

    # -- operations -----------------------------------------------------------------------------

    def score_at(self, scope: str, value: str, now: float) -> float:
        cur = self.scores[scope].get(value)
        return 0.0 if cur is None else decay(cur.real, cur.imag, now, self.ruleset.half_life[scope])

    def pardon_now(self, scope: str, target: str, value: str) -> int:
        n = len(self._entries(target))
        self.active.pop(target, None)
        self.bans.pop(target, None)
        if scope in self.scores:
            self.scores[scope].pop(value, None)
        return n

    def state_now(self, scope: str, feat: str, value: str, now: float) -> dict[str, Any]:
        target = feat + SEP + value
        windows: dict[str, dict[str, float]] = {}
        for rule in self.ruleset.rules:
            if rule.key == feat and rule.aggregates:
                sts = self.windows[rule.fingerprint].get(value)
                if sts is not None:
                    windows[rule.id] = {
                        a.name: a.read(s, now) for a, s in zip(rule.aggregates, sts, strict=True)
                    }
        active = [
            {"do": a.kind, "value": a.value, "until": a.until, "rule": a.rule}
            for a in self._entries(target).values()
            if a.until > now
        ]
        ban = self.bans.get(target)
        return {
            "scope": scope,
            "value": value,
            "score": round(self.score_at(scope, value, now), 3) if scope in self.scores else None,
            "active": active,
            "prior_blocks": int(ban[0]) if ban else 0,
            "windows": windows,
        }

    def sweep_now(self, now: float) -> int:
        """Drop idle per-key state (windows past their span, faded scores, expired actions)."""
        dropped = 0
        for feat, table in self.rows.items():
            rules = []
            for fp, (f, off) in self.slots.items():
                if f == feat:
                    rule = self.rules_by_fp[fp]
                    span = max((a.window * (8 if a.kind == "ewma" else 1)) for a in rule.aggregates)
                    rules.append((rule, off, now - span))
            gone = []
            for key, row in table.items():
                for rule, off, cutoff in rules:
                    aggs = rule.aggregates
                    if row[off] is not None and max(
                        a.last_seen(row[off + j], now) for j, a in enumerate(aggs)
                    ) < cutoff:
                        row = table[key] = row[:off] + (None,) * len(aggs) + row[off + len(aggs) :]
                        self.counts[rule.fingerprint] -= 1
                        dropped += 1
                if all(x is None for x in row):
                    gone.append(key)
            for key in gone:
                del table[key]
        for scope, table in self.scores.items():
            for key in [k for k in table if self.score_at(scope, k, now) < 0.01]:
                del table[key]
                dropped += 1
        for target in list(self.active):
            for k, a in list(self._entries(target).items()):
                if a.until <= now:
                    self.drop_action(target, k)
        for target in [t for t, (_, last) in self.bans.items() if now - last > BAN_MEMORY]:
            del self.bans[target]
        for k in [k for k, t in self.alerted.items() if now - t > ALERT_MEMORY]:
            del self.alerted[k]
        return dropped

    async def pardon(self, scope: str, target: str, value: str, now: float) -> int:
        return self.pardon_now(scope, target, value)

    async def state(self, scope: str, feat: str, value: str, now: float) -> dict[str, Any]:
        return self.state_now(scope, feat, value, now)

    async def close(self) -> None:
        pass
