"""The fused fast path (``proxy.shaping.fast``) against the general path.

Equivalence: two filters with the same limits, one with the fast path and one without, each on its own
memory backend and fake clock, run the same random sequences of requests, completions, clock moves and
throttles; every decision, reply, header, recorded state and metric must be identical. Fallbacks: the
general path decides whenever a condition of the fast path fails (rejected, queued, shadow, throttled,
paced, multiplier set, a scope value missing, a match failing, an expired lease, a full slot...)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from proxy.accounts import Account
from proxy.clock import FakeClock
from proxy.dialects import DIALECTS
from proxy.exchange import Event, Exchange
from proxy.filters.shape import ShapeFilter
from proxy.shaping.request import ShapeState
from proxy.shaping.spec import parse_limits
from proxy.state import MemoryBackend

RPM = {"name": "rpm", "scope": ["account"], "requests": {"rate": "60/m", "burst": 3}}
TPM = {"name": "tpm", "scope": ["account", "model"], "tokens": {"limit": 2000, "window": "1m", "count": "total"}}
PATHS = {"openai_chat": "/v1/chat/completions", "anthropic_messages": "/v1/messages",
         "openai_responses": "/v1/responses"}
CONC = {"name": "conc", "scope": ["account"], "concurrency": {"max": 2}}

CONFIGS: dict[str, list[dict[str, Any]]] = {
    "three": [RPM, TPM, CONC],
    "proxy-bench": [  # bench_proxy's phase 7: never reached
        {"name": "rpm", "scope": ["account"], "requests": {"rate": "100000000/m", "burst": 100000}},
        {"name": "tpm", "scope": ["account", "model"],
         "tokens": {"limit": 1000000000000, "window": "1m", "count": "total"}},
        {"name": "conc", "scope": ["account"], "concurrency": {"max": 100000}},
    ],
    "kinds": [
        {"name": "in", "scope": ["key"], "tokens": {"limit": 500, "window": "10s", "count": "input"}},
        {"name": "out", "scope": ["account"], "tokens": {"limit": 900, "window": "30s", "count": "output",
                                                          "reserve": 64}},
        {"name": "rsn", "scope": ["model"], "tokens": {"limit": 3000, "window": "1m", "count": "reasoning"}},
        {"name": "ip", "scope": ["ip_prefix"], "requests": {"rate": "2/s", "burst": 2}},
    ],
    "delays": [
        {**RPM, "delay": {"max": "3s", "queue": 4}},
        {**TPM, "delay": {"max": "5s", "queue": 4}},
        {**CONC, "concurrency": {"max": 1}, "delay": {"max": "2s", "queue": 2}},
    ],
    "match": [
        {**RPM, "match": {"tier": ["restricted"]}},
        {"name": "fp", "scope": ["feature:fp"], "requests": {"rate": "6/m", "burst": 2}},
        CONC,
    ],
    "only-concurrency": [{**CONC, "concurrency": {"max": 1, "ttl": "5s"}}],
}


class Side:
    """One filter with its own backend, clock and registry; sleeping moves its clock (no real waits)."""

    def __init__(self, limits: list[dict[str, Any]], fast: bool, max_keys: int) -> None:
        self.clock = FakeClock()
        self.registry = CollectorRegistry()
        self.backend = MemoryBackend(max_keys)
        self.filter = ShapeFilter(parse_limits(limits), self.backend, clock=self.clock, registry=self.registry,
                                  sleep=self.sleep, sweep_interval=0, fast_path=fast)
        self.fast_taken = 0

    async def sleep(self, dt: float) -> None:
        self.clock.advance(max(dt, 0.0))

    def state(self) -> list[tuple[str, Any]]:
        """The backend's dict in LRU order; leases with their earliest-expiry bound."""
        return [(k, (dict(v), v.first_exp) if isinstance(v, dict) else v) for k, v in self.backend._d.items()]

    def header_cache(self) -> dict[int, set[tuple[Any, ...]]]:
        """The keys of the formatted-headers caches (both paths share one per set of limits: the fast
        path must key its figures exactly as ``HeaderPlan.write`` does)."""
        plans = self.filter.shaper._header_plans
        return {mask: set(hp._cache) for mask, hp in plans.items() if hp is not None and hp._cache}

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for m in self.registry.collect():
            for s in m.samples:
                if s.name.startswith("distillguard_shape") and not s.name.endswith("_created"):
                    out[s.name, tuple(sorted(s.labels.items()))] = s.value
        return out


def _ex(rng: random.Random, rid: str) -> Callable[[], Exchange]:
    """A request described by ``rng`` (drawn once), built afresh for each side."""
    dialect = rng.choice(["openai_chat", "openai_chat", "anthropic_messages", "openai_responses"])
    body: dict[str, Any] = {"model": rng.choice(["m1", "m2"]),
                            "messages": [{"role": "user", "content": "x" * rng.randrange(1, 4000)}]}
    if rng.random() < 0.8:
        body["max_tokens"] = rng.randrange(1, 700)
    if rng.random() < 0.2:  # the other dialects' fields, and values that are not an int (``as_int``)
        field = rng.choice(["max_completion_tokens", "max_output_tokens", "max_tokens"])
        body[field] = rng.choice([rng.randrange(1, 700), None, True, "12", 5.0])
    raw = orjson.dumps(body)
    account = rng.choice(["a", "b", "c", "d", "e", "f"]) if rng.random() < 0.95 else None
    tier = "restricted" if rng.random() < 0.8 else "standard"
    key = rng.choice(["k1", "k2"])
    ip = rng.choice(["10.0.0.1", "10.0.0.2", "10.0.1.1"])
    features = {"fp": rng.choice(["t1", "t2"])} if rng.random() < 0.8 else {}
    controls: dict[str, Any] = {}
    if rng.random() < 0.05:
        controls["throttle"] = 0.5
    if rng.random() < 0.03:
        controls["pace_tps"] = 50

    def make() -> Exchange:
        ex = Exchange(path=PATHS[dialect], body=raw, dialect=DIALECTS[dialect], client_ip=ip, request_id=rid)
        if account is not None:
            ex.account = Account(id=account, tier=tier)
        ex.key_id = key
        ex.features.update(features)
        ex.controls.update(controls)
        return ex

    return make


def _shape_view(st: ShapeState | None) -> tuple[Any, ...] | None:
    """What settling a request reads from its state (the plan serves the general path only: the fast
    path keeps none)."""
    if st is None:
        return None
    return ([(cl.spec.name, k, c, d) for cl, k, c, d in st.charges], [(cl.spec.name, k) for cl, k in st.leases],
            st.count_stream, st.input_estimate, st.budget, st.paced, st.done)


async def _run(config: str, seed: int, steps: int, max_keys: int) -> tuple[int, int]:
    rng = random.Random(seed)
    fast, general = Side(CONFIGS[config], True, max_keys), Side(CONFIGS[config], False, max_keys)
    assert fast.filter.shaper.fast is not None and general.filter.shaper.fast is None
    inflight: list[tuple[Exchange, Exchange]] = []
    admitted = 0
    for step in range(steps):
        r = rng.random()
        if r < 0.45:
            make = _ex(rng, f"req-{step}")
            a, b = make(), make()
            ra, rb = await fast.filter.on_request(a), await general.filter.on_request(b)
            assert (ra is None) == (rb is None), step
            if ra is not None and rb is not None:
                assert (ra.status, ra.body, dict(ra.headers)) == (rb.status, rb.body, dict(rb.headers)), step
            else:
                admitted += 1
            assert a.reply_headers == b.reply_headers, step
            assert a.decisions == b.decisions, step
            assert _shape_view(a.state.get("shape")) == _shape_view(b.state.get("shape")), step
            fast.fast_taken += bool(getattr(a.state.get("shape"), "fast", False))
            assert not getattr(b.state.get("shape"), "fast", False)
            inflight.append((a, b))
        elif r < 0.75 and inflight:
            a, b = inflight.pop(rng.randrange(len(inflight)))
            status = rng.choice([200, 200, 200, 500, 0])
            usage = (rng.randrange(0, 3000), rng.randrange(0, 800)) if rng.random() < 0.7 else None
            streamed = rng.randrange(0, 300) if rng.random() < 0.3 else 0
            for ex in (a, b):
                ex.status = status
                if usage is not None:
                    ex.usage.input, ex.usage.output = usage
                st = ex.state.get("shape")
                if st is not None:
                    st.streamed = streamed
                await (fast if ex is a else general).filter.on_done(ex)
        elif r < 0.99:
            dt = rng.choice([0.0, 0.001, 0.05, 0.4, 1.0, 3.0, 20.0])
            fast.clock.advance(dt)
            general.clock.advance(dt)
        else:
            account, duration = rng.choice(["a", "b"]), rng.choice([1.0, 30.0])
            for side in (fast, general):
                await side.filter.throttle("account", account, 0.5, duration=duration)
        assert fast.clock.now() == general.clock.now(), step
        assert fast.state() == general.state(), step
        assert fast.metrics() == general.metrics(), step
        assert fast.header_cache() == general.header_cache(), step
        assert fast.backend.evictions == general.backend.evictions, step
    return admitted, fast.fast_taken


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_fast_and_general_paths_agree(config: str, seed: int) -> None:
    admitted, fast_taken = await _run(config, seed, 700, max_keys=1_000_000)
    assert fast_taken >= 15 and admitted > fast_taken  # both paths admit requests in these sequences


@pytest.mark.parametrize("config", ["three", "kinds", "match"])
async def test_fast_and_general_paths_agree_under_eviction(config: str) -> None:
    await _run(config, 7, 500, max_keys=5)


# -- the general path decides whenever a condition of the fast path fails ---------------------------------


def _filter(limits: list[dict[str, Any]], **kw: Any) -> tuple[ShapeFilter, FakeClock]:
    clock = FakeClock()
    return ShapeFilter(parse_limits(limits), clock=clock, registry=CollectorRegistry(), sweep_interval=0,
                       **kw), clock


async def _took_fast(f: ShapeFilter, ex: Exchange) -> tuple[bool, Any]:
    reply = await f.on_request(ex)
    st = ex.state["shape"]
    assert st.fast == (st.ops is None)  # the fast path plans nothing; the general path always does
    return st.fast, reply


async def test_fast_path_common_case_and_first_request(make_ex: Callable[..., Exchange]) -> None:
    f, _ = _filter(CONFIGS["three"])
    assert await _took_fast(f, make_ex()) == (False, None)  # the backend's first request sets its time base
    fast, reply = await _took_fast(f, ex := make_ex(max_tokens=10))
    assert fast and reply is None and ex.reply_headers["x-ratelimit-remaining-requests"] == "1"


@pytest.mark.parametrize("read", ["parsed", "unparsed", "view"])
async def test_fast_path_reserves_max_tokens_however_the_body_was_read(
    make_ex: Callable[..., Exchange], read: str
) -> None:
    """The fast path reads the cap from the parsed body directly, or through ``ex.max_tokens`` when the
    body is not parsed yet or a view was built: the same reservation each way."""
    f, _ = _filter(CONFIGS["three"])
    await _took_fast(f, make_ex())  # (the first request sets the backend's time base)
    ex = make_ex(max_tokens=77, prompt="x" * 40)
    if read == "parsed":
        assert isinstance(ex.json, dict)
    elif read == "view":
        assert ex.view.max_tokens == 77
    fast, _ = await _took_fast(f, ex)
    st = ex.state["shape"]
    assert fast and [c[2] for c in st.charges] == [float(len(ex.body) // 4 + 77)]  # estimate + max tokens


async def test_rejected_and_full_slots_take_the_general_path(make_ex: Callable[..., Exchange]) -> None:
    f, _ = _filter(CONFIGS["three"])
    exs = [make_ex(max_tokens=1) for _ in range(2)]
    for ex in exs:
        assert (await f.on_request(ex)) is None
    # the concurrency limit (2) is full: nothing was taken by the fast path's partial pass
    before = dict(f.backend._d)  # type: ignore[attr-defined]
    fast, reply = await _took_fast(f, make_ex(max_tokens=1))
    assert not fast and reply is not None and reply.status == 429 and b"conc" in reply.body
    assert {k: v for k, v in f.backend._d.items() if not isinstance(v, dict)} == {  # type: ignore[attr-defined]
        k: v for k, v in before.items() if not isinstance(v, dict)}
    for ex in exs:
        await f.on_done(ex)
    assert await _took_fast(f, make_ex(max_tokens=1)) == (True, None)
    fast, reply = await _took_fast(f, make_ex(max_tokens=1))  # the 4th in the burst of 3: rpm says no
    assert not fast and reply is not None and b"rpm" in reply.body


async def test_tokens_over_the_limit_take_the_general_path(make_ex: Callable[..., Exchange]) -> None:
    f, _ = _filter([TPM])
    await f.on_request(make_ex(max_tokens=1))
    fast, reply = await _took_fast(f, make_ex(max_tokens=1999))
    assert not fast and reply is not None and reply.status == 429


async def test_controls_and_multipliers_take_the_general_path(make_ex: Callable[..., Exchange]) -> None:
    f, _ = _filter(CONFIGS["three"])
    await f.on_request(make_ex())
    for controls in ({"throttle": 0.5}, {"pace_tps": 10}, {"cut_tokens": 100}):
        assert (await _took_fast(f, make_ex(account=str(controls), controls=controls)))[0] is False
    await f.throttle("account", "slow", 0.5, duration=60)
    await f.throttle("key", "slow-key", 0.5, duration=60)
    assert (await _took_fast(f, make_ex(account="slow")))[0] is False
    assert (await _took_fast(f, make_ex(account="other", key="slow-key")))[0] is False
    assert (await _took_fast(f, make_ex(account="other", key="k")))[0] is True  # no multiplier for these


async def test_missing_scope_values_and_failed_matches_take_the_general_path(
        make_ex: Callable[..., Exchange]) -> None:
    f, _ = _filter(CONFIGS["match"])
    await f.on_request(make_ex(tier="restricted", features={"fp": "t"}))
    assert (await _took_fast(f, make_ex(tier="restricted", features={"fp": "t"})))[0] is True
    assert (await _took_fast(f, make_ex(tier="standard", features={"fp": "t"})))[0] is False  # match fails
    assert (await _took_fast(f, make_ex(tier="restricted")))[0] is False  # no cluster key: limit skipped
    assert (await _took_fast(f, make_ex(account=None, tier="restricted", features={"fp": "t"})))[0] is False


async def test_expired_lease_takes_the_general_path(make_ex: Callable[..., Exchange]) -> None:
    f, clock = _filter(CONFIGS["only-concurrency"])
    await f.on_request(make_ex(account="warm"))
    lost = make_ex()  # never finished: its lease expires after the ttl (5 s)
    assert (await _took_fast(f, lost)) == (True, None)
    assert (await _took_fast(f, make_ex()))[0] is False  # the slot is held: rejected by the general path
    clock.advance(6)
    fast, reply = await _took_fast(f, make_ex())  # the expired lease is purged by the backend's own code
    assert not fast and reply is None


async def test_queued_key_takes_the_general_path(make_ex: Callable[..., Exchange], timer: Any,
                                                  clock: FakeClock) -> None:
    f = ShapeFilter(parse_limits([{**RPM, "delay": {"max": "10s", "queue": 4}}]), clock=clock,
                    registry=CollectorRegistry(), sleep=timer.sleep, sweep_interval=0)
    for _ in range(3):
        await f.on_request(make_ex())
    waiting = asyncio.ensure_future(f.on_request(w := make_ex()))
    await timer.settle()
    assert f.shaper.limits[0].queues.depth == 1  # type: ignore[union-attr]
    other = make_ex(account="other")
    assert (await _took_fast(f, other)) == (True, None)  # another key: no waiters
    newcomer = asyncio.ensure_future(f.on_request(n := make_ex()))  # behind the waiter, on the general path
    await timer.settle()
    assert not newcomer.done() and not n.state["shape"].fast
    await timer.advance(3)
    assert (await waiting) is None and (await newcomer) is None
    assert not w.state["shape"].fast


@pytest.mark.parametrize("limits", [
    [{**RPM, "mode": "shadow"}, CONC],
    [RPM, {"name": "pace", "scope": ["account"], "pace": {"tokens_per_second": 20}}],
    [{**TPM, "tokens": {"limit": 2000, "window": "1m", "count": "total", "cut_stream": True}}],
    [],
])
def test_limits_the_fast_path_does_not_serve(limits: list[dict[str, Any]]) -> None:
    assert _filter(limits)[0].shaper.fast is None


def test_fast_path_only_on_the_memory_backend() -> None:
    class Other(MemoryBackend):
        pass

    assert _filter([RPM], backend=Other())[0].shaper.fast is None
    assert _filter([RPM], fast_path=False)[0].shaper.fast is None
    assert _filter([RPM])[0].shaper.fast is not None


async def test_a_new_key_that_would_evict_takes_the_general_path(make_ex: Callable[..., Exchange]) -> None:
    f = ShapeFilter(parse_limits([RPM]), MemoryBackend(max_keys=3), clock=FakeClock(), registry=CollectorRegistry(),
                    sweep_interval=0)
    await f.on_request(make_ex(account="a0"))  # the backend's first request sets its time base
    assert [(await _took_fast(f, make_ex(account=f"a{i}")))[0] for i in (1, 2)] == [True, True]
    fast, reply = await _took_fast(f, make_ex(account="a3"))  # a 4th key: the backend evicts the oldest
    assert not fast and reply is None
    assert f.backend.evictions == 1 and list(f.backend._d) == [  # type: ignore[attr-defined]
        "lim\x1frpm\x1fa1", "lim\x1frpm\x1fa2", "lim\x1frpm\x1fa3"]
    assert (await _took_fast(f, make_ex(account="a1")))[0] is True  # a known key: nothing to evict


async def test_a_stream_admitted_on_the_fast_path_is_counted_and_reconciled(
        make_ex: Callable[..., Exchange]) -> None:
    limits = [CONC, {**TPM, "tokens": {"limit": 1000, "window": "1m", "count": "output"}}]
    delta = orjson.dumps({"choices": [{"index": 0, "delta": {"content": "abcdefgh"}}]})
    seen = []
    for fast in (True, False):
        f = _filter(limits, fast_path=fast)[0]
        await f.on_request(first := make_ex(max_tokens=1))  # sets the backend's time base
        await f.on_done(first)
        ex = make_ex(max_tokens=800, stream=True)
        assert await f.on_request(ex) is None and f.wants_events(ex)
        assert ex.state["shape"].fast is fast
        for _ in range(10):  # 20 tokens streamed, then the client goes away
            event = Event(delta)
            assert f.on_event(ex, event) == [event]
        ex.client_gone = True
        await f.on_done(ex)
        await f.on_done(ex)  # settled once
        probe = make_ex(max_tokens=300)
        assert await f.on_request(probe) is None
        state = f.backend._d.items()  # type: ignore[attr-defined]
        seen.append((probe.reply_headers, [(k, v if isinstance(v, float) else list(v.values())) for k, v in state]))
    assert seen[0] == seen[1]
    assert seen[0][0]["x-ratelimit-remaining-tokens"] == str(1000 - 20 - 300)  # 800 reserved, 20 used
