"""The fast path's functions, written out for one set of limits (``proxy.shaping.fast``).

A loop over the limits costs, per limit and request, the unpacking of its entry, the tests of its kind
and the lists that collect what it did (the undo log, the plan, the header figures): about as much as
the GCRA arithmetic itself. So the fast path is compiled once per shaper into plain functions with the
loop unrolled and each limit's constants inlined (the way ``proxy.policy`` compiles rule conditions):
``admit(ex) -> bool`` and ``finish(st, ex)``, and the same two as the shape filter's synchronous steps,
``request_now(ex)`` and ``done_now(ex)``, which fall through to the general path themselves (every
Python call a request makes costs about as much as a dozen lines of arithmetic). ``FastPath.source``
holds their text.

``admit`` works in two passes. The first only reads the backend's dict: every limit must admit at once,
no key may have waiters, no new key may make the backend evict. Only then the second pass writes, in
the order of the limits, exactly what ``MemoryBackend.apply_now`` writes (the same values, the same
LRU order). When the first pass finds a reason to stop, nothing was written and ``ex`` is untouched:
the general path decides from the same state.
"""

from __future__ import annotations

from math import ceil, floor
from typing import TYPE_CHECKING, Any

from proxy.dialects.base import as_int
from proxy.exchange import Exchange
from proxy.shaping.reads import dialect_info
from proxy.shaping.request import FastShapeState, actual_usage
from proxy.shaping.scopes import CONCURRENCY, REQUESTS, TOKENS
from proxy.state.memory import MISSING, Leases

if TYPE_CHECKING:
    from proxy.shaping.fast import FastPath

# ``ex.model``, called as a plain function: reading the property costs a C-level frame more
_MODEL: Any = Exchange.__dict__["model"].fget
_EPS = 1e-6  # as in the memory backend: conforming a microsecond early absorbs float rounding
_ALMOST_ONE = 1.0 - 1e-9  # as in ``HeaderPlan``: the figures its cache key holds


def compile_fast(fp: FastPath) -> tuple[str, dict[str, Any]]:
    """The source of ``admit``, ``request_now``, ``finish`` and ``done_now`` for ``fp``'s limits, and the
    namespace to run it in (``slow`` and ``slow_done``, the general steps, are bound later: ``FastPath.bind``).
    An admitted request's state (a ``FastShapeState``) is stored in ``ex.state["shape"]``."""
    shaper = fp.shaper
    limits = shaper.limits
    ns: dict[str, Any] = {
        "backend": fp.backend, "now_fn": fp._now, "has_multiplier": fp._has_multiplier,
        "key_cache": fp._keys, "build_keys": fp._build_keys, "actual_usage": actual_usage, "Leases": Leases,
        "MISSING": MISSING, "ceil": ceil, "floor": floor, "EPS": _EPS, "ALMOST": _ALMOST_ONE, "dinfo": fp._dialects,
        "dialect_info": dialect_info, "as_int": as_int, "miss": fp._headers, "MODEL": _MODEL,
        "slow": None, "slow_done": None,
    }
    n = len(limits)
    gcra = [i for i, cl in enumerate(limits) if cl.kind is not CONCURRENCY]
    conc = [i for i, cl in enumerate(limits) if cl.kind is CONCURRENCY]
    tokens = [i for i, cl in enumerate(limits) if cl.kind is TOKENS]
    for i, cl in enumerate(limits):
        ns[f"CL{i}"] = cl
        ns[f"I{i}"] = cl.interval
        ns[f"S{i}"] = cl.capacity * cl.interval  # the span, computed as the backend computes it
        ns[f"CAP{i}"] = cl.capacity
        ns[f"RES{i}"] = cl.reserve
        ns[f"MAX{i}"] = cl.max_inflight
        ns[f"TTL{i}"] = cl.lease_ttl
        ns[f"Q{i}"] = cl.queues
    a: list[str] = []

    def w(line: str, depth: int = 1) -> None:
        a.append("    " * depth + line)

    # ``FAIL``: the general path decides (nothing was written); ``DONE``: admitted, headers written. The
    # body is written once and emitted twice: ``admit(ex) -> bool`` and ``request_now(ex)``, the shape
    # filter's ``on_request_now`` (None, or the general path's awaitable).
    w("state = ex.state")
    w('if "shape" in state:  # the judge applied this request\'s limits with its rules (a shared store)')
    w("FAIL", 2)
    w("base = backend._base")
    w("if ex.controls or base is None:  # rule controls; or the backend's first request sets its base")
    w("FAIL", 2)
    w("d = backend._d")
    w("if backend.may_have_multipliers and has_multiplier(ex, d):")
    w("FAIL", 2)
    for i, cl in enumerate(limits):
        if cl.match:
            w(f"if not CL{i}.matches(ex):")
            w("FAIL", 2)
    # what the dialect means for this request (``proxy.shaping.reads``), looked up once per dialect
    w("dialect = ex.dialect")
    w("info = dinfo.get(dialect)")
    w("if info is None:")
    w("info = dinfo[dialect] = dialect_info(dialect)", 2)
    w("anthropic, plain, f1, f2 = info")
    if fp._by_account == 2 or any(limits[i].count != "input" for i in tokens):
        # the parsed body, read directly while no view was built (what ``ex.model``/``ex.max_tokens`` read)
        w("j = ex._json")
        w("fresh = j.__class__ is dict and ex._view is None")
    # the values of the scope fields the limits use: what the state keys are a function of
    if fp._by_account:
        w("acc = ex.account")
        if fp._by_account == 2:
            w("if fresh and plain and ex._model is None:")
            w('m = j.get("model")', 2)
            w("model = m if m.__class__ is str else MODEL(ex)", 2)
            w("else:")
            w("model = MODEL(ex)  # (the property's function: no descriptor)", 2)
            w("values = (acc.id if acc is not None else None, model)")
        else:
            w("values = acc.id if acc is not None else None")
    else:
        for j, get in enumerate(fp._fields):
            ns[f"G{j}"] = get
        if len(fp._fields) == 1:
            w("values = G0(ex)")
        else:
            w("values = (" + ", ".join(f"G{j}(ex)" for j in range(len(fp._fields))) + ")")
    w("keys = key_cache.get(values, MISSING)")
    w("if keys is MISSING:")
    w("keys = build_keys(ex, values)", 2)
    w("if keys is None:  # a limit without its scope value: skipped (a different set of limits)")
    w("FAIL", 2)
    w(", ".join(f"k{i}" for i in range(n)) + (", = keys" if n == 1 else " = keys"))
    for i, cl in enumerate(limits):
        if cl.queues is not None:
            w(f"if Q{i}.queued(k{i}):")
            w("FAIL", 2)
    w("now_abs = now_fn()")
    w("now = now_abs - base")
    if conc:
        w("rid = ex.request_id")
    if tokens:
        w("est = len(ex.body) // 4 or 1")
        if any(limits[i].count != "input" for i in tokens):
            # ``ex.max_tokens``: the dialect's fields read here, else its ``max_tokens_of`` (``reads``)
            w("if fresh and f1 is not None:")
            w("mt = j.get(f1)", 2)
            w("if mt.__class__ is not int:  # (absent, or not an int: the dialect's ``as_int``)", 2)
            w("mt = None if mt is None else as_int(mt)", 3)
            w("if mt is None and f2 is not None:", 3)
            w("mt = j.get(f2)", 4)
            w("if mt.__class__ is not int and mt is not None:", 4)
            w("mt = as_int(mt)", 5)
            w("elif fresh and dialect is not None:")
            w("mt = dialect.max_tokens_of(j, ex)", 2)
            w("else:")
            w("mt = ex.max_tokens", 2)
    # first pass: read only
    for i, cl in enumerate(limits):
        if cl.kind is CONCURRENCY:
            w(f"h{i} = d.get(k{i})")
            if cl.max_inflight < 1:
                w(f"if h{i} is None:")
                w("FAIL", 2)
                w(f"if h{i}.first_exp <= now or rid in h{i} or len(h{i}) >= MAX{i}:")
            else:
                w(f"if h{i} is not None and (h{i}.first_exp <= now or rid in h{i} or len(h{i}) >= MAX{i}):")
            w("FAIL  # a full slot, an expired lease to purge, a lease held again: the backend's code", 2)
            continue
        if cl.kind is REQUESTS:
            cost = f"I{i}"  # (a cost of 1.0 times the interval)
        else:
            out = f"(mt or RES{i})"
            raw = {"input": "float(est)", "total": f"float(est + {out})", "output": f"float({out})"}.get(
                cl.count, f"float(ex.view.reasoning_budget or {out})")
            w(f"raw{i} = {raw}")
            w(f"c{i} = raw{i} if raw{i} < CAP{i} else CAP{i}")
            cost = f"c{i} * I{i}"
        w(f"o{i} = d.get(k{i})")
        w(f"n{i} = (now if o{i} is None or o{i} < now else o{i}) + {cost}")
        w(f"if n{i} - S{i} - now > EPS:  # over the limit (an enforced limit waits for nothing)")
        w("FAIL", 2)
    fresh = " + ".join([f"(o{i} is None)" for i in gcra] + [f"(h{i} is None)" for i in conc])
    w(f"if len(d) + {n} > backend.max_keys and len(d) + {fresh} > backend.max_keys:")
    w("FAIL  # a new key would make the backend evict: its own code does", 2)
    # second pass: write, in the order of the limits (the backend's LRU order)
    for i, cl in enumerate(limits):
        if cl.kind is CONCURRENCY:
            w(f"exp = now + TTL{i}")
            w(f"if h{i} is None:")
            w(f"d[k{i}] = h{i} = Leases()", 2)
            w(f"h{i}.first_exp = exp", 2)
            w("else:")
            w(f"del d[k{i}]  # re-inserted at the end: the LRU order", 2)
            w(f"d[k{i}] = h{i}", 2)
            w(f"if exp < h{i}.first_exp:", 2)
            w(f"h{i}.first_exp = exp", 3)
            w(f"h{i}[rid] = exp")
        else:
            w(f"if o{i} is not None:")
            w(f"del d[k{i}]", 2)
            w(f"d[k{i}] = n{i}")
    # the request's state: its keys (the cached tuple) and token charges; the rest is the class's
    w("st = State()")
    w("st.keys = keys")
    for i in tokens:
        w(f"st.c{i} = c{i}")
    if tokens:
        w("st.input_estimate = est")
    w('state["shape"] = st')
    if fp._mask:
        ns["ADMITS"] = fp.admits
        w("ADMITS[0] += 1")
    hp = fp.hp
    if hp is not None:  # requests and tokens limits are all shown (none is in shadow mode)
        ns["cache"] = hp._cache
        tats = "(" + "".join(f"n{i}, " for i in gcra) + ")"
        if hp.cacheable:
            # the header cache key (``HeaderPlan.write``'s); the wait of an admitted request is 0
            for i in gcra:
                w(f"r{i} = n{i} - now")
                w(f"m{i} = (now + S{i} - n{i}) / I{i}")
                w(f"if m{i} >= ALMOST:")
                w(f"a{i} = floor(m{i} + 1e-9)", 2)  # (int() of a positive float: a type call more)
                w(f"b{i} = ceil(r{i} - 1e-9)", 2)
                w("else:")
                w(f"a{i} = b{i} = 0", 2)
            figs = {flag: ", ".join(f"a{i}, b{i}, " + (f"ceil(now_abs + r{i})" if flag else f"ceil(r{i} * 1000)")
                                    for i in gcra) for flag in (True, False)}
            w("if anthropic:")
            w(f"key = (True, {figs[True]})", 2)
            w("else:")
            w(f"key = (False, {figs[False]})", 2)
            w("cached = cache.get(key)")
            w("if cached is None:")
            w(f"cached = miss(key, {tats}, now, now_abs, anthropic)", 2)
        else:
            w(f"cached = miss(None, {tats}, now, now_abs, anthropic)")
        # a copy of the cached block (cheaper than adding its fields one by one) unless a filter before
        # this one already added headers
        w("rh = ex.reply_headers")
        w("if rh:")
        w("rh.update(cached)", 2)
        w("else:")
        w("ex.reply_headers = cached.copy()", 2)
    w("DONE")
    body = "\n".join(a)
    admit = "def admit(ex):\n" + body.replace("FAIL", "return False").replace("DONE", "return True")
    request_now = "def request_now(ex):\n" + body.replace("FAIL", "return slow(ex)").replace("DONE", "return None")
    ns["State"] = _state_class(fp, conc, tokens)
    return "\n\n\n".join([admit, request_now, *_finish(limits, conc, tokens)]) + "\n", ns


def _state_class(fp: FastPath, conc: list[int], tokens: list[int]) -> type[FastShapeState]:
    """The class of the states this fast path admits: what is the same for every request (the shaper,
    whether streams are counted) is a class attribute; a request sets only its keys (the cached tuple),
    its token charges, its input estimate and ``done``. ``leases`` and ``charges`` are read from those
    (by tests and by code written for the general path's states)."""
    limits = fp.shaper.limits

    def leases(st: Any) -> list[tuple[Any, str]]:
        return [(limits[i], st.keys[i]) for i in conc]

    def charges(st: Any) -> list[tuple[Any, str, float, float]]:
        return [(limits[i], st.keys[i], getattr(st, f"c{i}"), 1.0) for i in tokens]

    attrs: dict[str, Any] = {"shaper": fp.shaper, "count_stream": bool(tokens), "leases": property(leases),
                             "charges": property(charges), "__module__": __name__}
    return type("FastState", (FastShapeState,), attrs)


def _finish(limits: list[Any], conc: list[int], tokens: list[int]) -> list[str]:
    """``finish(st, ex)`` and ``done_now(ex)`` (the shape filter's ``on_done_now``): release the leases,
    then reconcile the token reservations with the real usage (the backend's RELEASE and ADJUST, in that
    order), then tell the queues of freed slots."""
    f: list[str] = []

    def w(line: str, depth: int = 1) -> None:
        f.append("    " * depth + line)

    w("if st.done:")
    w("return", 2)
    w("st.done = True")
    if conc or tokens:
        w("d = backend._d")
        w(", ".join(f"k{i}" if i in conc or i in tokens else "_" for i in range(len(limits)))
          + (", = st.keys" if len(limits) == 1 else " = st.keys"))
    if conc:
        w("rid = ex.request_id")
        for i in conc:
            w(f"h = d.get(k{i})")
            w("if h is not None:")
            w("h.pop(rid, None)", 2)
            w("if not h:", 2)
            w(f"del d[k{i}]", 3)
    if tokens:
        w("u = ex.usage")
        if len(tokens) > 1:  # the clock is read once, by the first limit that adjusts
            w("now = None")
        for i in tokens:
            count = limits[i].count
            if count == "total":
                w("ui, uo = u.input, u.output")
                w('used = ui + uo if ui is not None and uo is not None else actual_usage(ex, st, "total")')
            else:
                w(f"used = actual_usage(ex, st, {count!r})")
            w(f"units = used - st.c{i}  # (tokens per unit: 1.0 on the fast path)")
            w("if units > 1e-9 or units < -1e-9:")
            if len(tokens) > 1:
                w("if now is None:", 2)
                w("now = now_fn() - backend._base", 3)
            else:
                w("now = now_fn() - backend._base", 2)
            w(f"tat = d.pop(k{i}, MISSING)", 2)
            w("if tat is MISSING or tat < now:", 2)
            w("tat = now", 3)
            w(f"tat += units * I{i}", 2)
            w("if tat > now:", 2)
            w(f"d[k{i}] = tat", 3)
            w("if len(d) > backend.max_keys:", 3)
            w(f"backend._evict(k{i})", 4)
    for i in conc:
        if limits[i].queues is not None:
            w(f"Q{i}.notify(k{i})")
    body = "\n".join(f)
    done_now = ("def done_now(ex):\n"
                '    st = ex.state.get("shape")\n'
                "    if st is None:\n"
                "        return None\n"
                "    if type(st) is not State:  # admitted on the general path\n"
                "        return slow_done(ex, st)\n"
                + body.replace("return\n", "return None\n") + "\n    return None")
    return ["def finish(st, ex):\n" + body, done_now]
