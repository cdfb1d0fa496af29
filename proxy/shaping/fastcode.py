"""The fast path's two functions, written out for one set of limits (``proxy.shaping.fast``).

A loop over the limits costs, per limit and request, the unpacking of its entry, the tests of its kind
and the lists that collect what it did (the undo log, the plan, the header figures): about as much as
the GCRA arithmetic itself. So the fast path is compiled once per shaper into two plain functions with
the loop unrolled and each limit's constants inlined (the way ``proxy.policy`` compiles rule
conditions): ``admit(ex, st) -> bool`` and ``finish(st, ex)``. ``FastPath.source`` holds their text.

``admit`` works in two passes. The first only reads the backend's dict: every limit must admit at once,
no key may have waiters, no new key may make the backend evict. Only then the second pass writes, in
the order of the limits, exactly what ``MemoryBackend.apply_now`` writes (the same values, the same
LRU order). When the first pass finds a reason to stop, nothing was written and ``st`` is untouched:
the general path decides from the same state.
"""

from __future__ import annotations

from math import ceil
from typing import TYPE_CHECKING, Any

from proxy.exchange import Exchange
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
    """The source of ``admit(ex) -> bool`` and ``finish(st, ex)`` for ``fp``'s limits, and the namespace
    to run it in. An admitted request's state (a ``FastShapeState``) is stored in ``ex.state["shape"]``."""
    shaper = fp.shaper
    limits = shaper.limits
    ns: dict[str, Any] = {
        "backend": fp.backend, "now_fn": fp._now, "has_multiplier": fp._has_multiplier,
        "key_cache": fp._keys, "build_keys": fp._build_keys, "actual_usage": actual_usage, "Leases": Leases,
        "MISSING": MISSING, "ceil": ceil, "EPS": _EPS, "ALMOST": _ALMOST_ONE, "admits": shaper._admits,
        "anth": fp._anthropic, "miss": fp._headers, "State": FastShapeState, "SHAPER": shaper,
        "MODEL": _MODEL,
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
    a: list[str] = ["def admit(ex):"]

    def w(line: str, depth: int = 1) -> None:
        a.append("    " * depth + line)

    w("base = backend._base")
    w("if ex.controls or base is None:  # rule controls; or the backend's first request sets its base")
    w("return False", 2)
    w("d = backend._d")
    w("if backend.may_have_multipliers and has_multiplier(ex, d):")
    w("return False", 2)
    for i, cl in enumerate(limits):
        if cl.match:
            w(f"if not CL{i}.matches(ex):")
            w("return False", 2)
    # the values of the scope fields the limits use: what the state keys are a function of
    if fp._by_account:
        w("acc = ex.account")
        if fp._by_account == 2:
            w("values = (acc.id if acc is not None else None, MODEL(ex))  # (the property's function: no descriptor)")
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
    w("return False", 2)
    w(", ".join(f"k{i}" for i in range(n)) + (", = keys" if n == 1 else " = keys"))
    for i, cl in enumerate(limits):
        if cl.queues is not None:
            w(f"if Q{i}.queued(k{i}):")
            w("return False", 2)
    w("now_abs = now_fn()")
    w("now = now_abs - base")
    if conc:
        w("rid = ex.request_id")
    if tokens:
        w("est = len(ex.body) // 4 or 1")
        if any(limits[i].count != "input" for i in tokens):
            # ``ex.max_tokens`` without the property's frame when the body is parsed and no view was built
            w("j = ex._json")
            w("if ex._view is None and j.__class__ is dict and ex.dialect is not None:")
            w("mt = ex.dialect.max_tokens_of(j, ex)", 2)
            w("else:")
            w("mt = ex.max_tokens", 2)
    # first pass: read only
    for i, cl in enumerate(limits):
        if cl.kind is CONCURRENCY:
            w(f"h{i} = d.get(k{i})")
            if cl.max_inflight < 1:
                w(f"if h{i} is None:")
                w("return False", 2)
                w(f"if h{i}.first_exp <= now or rid in h{i} or len(h{i}) >= MAX{i}:")
            else:
                w(f"if h{i} is not None and (h{i}.first_exp <= now or rid in h{i} or len(h{i}) >= MAX{i}):")
            w("return False  # a full slot, an expired lease to purge, a lease held again: the backend's code", 2)
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
        w("return False", 2)
    fresh = " + ".join([f"(o{i} is None)" for i in gcra] + [f"(h{i} is None)" for i in conc])
    w(f"if len(d) + {n} > backend.max_keys and len(d) + {fresh} > backend.max_keys:")
    w("return False  # a new key would make the backend evict: its own code does", 2)
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
    w("st = State()")
    w("st.shaper = SHAPER")
    if conc:
        w("st.leases = [" + ", ".join(f"(CL{i}, k{i})" for i in conc) + "]")
    if tokens:
        w("st.charges = [" + ", ".join(f"(CL{i}, k{i}, c{i}, 1.0)" for i in tokens) + "]")
        w("st.count_stream = True")
        w("st.input_estimate = est")
    w('ex.state["shape"] = st')
    if fp._mask:
        ns["MASK"] = fp._mask
        w("admits[MASK] = admits.get(MASK, 0) + 1")
    hp = fp.hp
    if hp is not None:  # requests and tokens limits are all shown (none is in shadow mode)
        ns["cache"] = hp._cache
        w("dialect = ex.dialect")
        w("anthropic = anth.get(dialect)")
        w("if anthropic is None:")
        w('anthropic = anth[dialect] = dialect is not None and dialect.name.startswith("anthropic")', 2)
        tats = "(" + "".join(f"n{i}, " for i in gcra) + ")"
        if hp.cacheable:
            for i in gcra:
                w(f"r{i} = n{i} - now")
                w(f"m{i} = (now + S{i} - n{i}) / I{i}")
            # the header cache key (``HeaderPlan.write``'s); the wait of an admitted request is 0
            figs = {
                flag: ", ".join(
                    f"int(m{i} + 1e-9) if m{i} >= ALMOST else 0, ceil(r{i} - 1e-9) if m{i} >= ALMOST else 0, "
                    + (f"ceil(now_abs + r{i})" if flag else f"ceil(r{i} * 1000)") for i in gcra)
                for flag in (True, False)
            }
            w("if anthropic:")
            w(f"key = (True, {figs[True]})", 2)
            w("else:")
            w(f"key = (False, {figs[False]})", 2)
            w("cached = cache.get(key)")
            w("if cached is None:")
            w(f"cached = miss(key, {tats}, now, now_abs, anthropic)", 2)
            w("ex.reply_headers.update(cached)")
        else:
            w(f"ex.reply_headers.update(miss(None, {tats}, now, now_abs, anthropic))")
    w("return True")
    return "\n".join(a + _finish(limits, conc, tokens)) + "\n", ns


def _finish(limits: list[Any], conc: list[int], tokens: list[int]) -> list[str]:
    """``finish(st, ex)``: release the leases, then reconcile the token reservations with the real
    usage (the backend's RELEASE and ADJUST, in that order), then tell the queues of freed slots."""
    f = ["", "", "def finish(st, ex):", "    if st.done:", "        return", "    st.done = True"]

    def w(line: str, depth: int = 1) -> None:
        f.append("    " * depth + line)

    if conc or tokens:
        w("d = backend._d")
    if conc:
        w("rid = ex.request_id")
        w(", ".join(f"(_, k{i})" for i in conc) + (", = st.leases" if len(conc) == 1 else " = st.leases"))
        for i in conc:
            w(f"h = d.get(k{i})")
            w("if h is not None:")
            w("h.pop(rid, None)", 2)
            w("if not h:", 2)
            w(f"del d[k{i}]", 3)
    if tokens:
        w(", ".join(f"(_, k{i}, c{i}, _)" for i in tokens) + (", = st.charges" if len(tokens) == 1
                                                               else " = st.charges"))
        w("u = ex.usage")
        w("now = None")
        for i in tokens:
            count = limits[i].count
            if count == "total":
                w("ui, uo = u.input, u.output")
                w('used = ui + uo if ui is not None and uo is not None else actual_usage(ex, st, "total")')
            else:
                w(f"used = actual_usage(ex, st, {count!r})")
            w(f"units = used - c{i}  # (tokens per unit: 1.0 on the fast path)")
            w("if units > 1e-9 or units < -1e-9:")
            w("if now is None:", 2)
            w("now = now_fn() - backend._base", 3)
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
    return f
