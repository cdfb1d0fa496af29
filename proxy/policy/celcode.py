"""Type-check a CEL AST and compile it to one Python function.

The checked tree is turned into the source of a single ``lambda c: ...`` expression and compiled once at
load; evaluation is then one call instead of a tree of closures (the default pack's conditions cost
about a fifth as much this way). Nothing from the rule text reaches that source as code: feature names,
string literals, lists and regexes are bound as constants (``_k0``, ``_k1``, ...) in the function's own
namespace, which has no builtins besides ``len``, ``int``, ``float`` and ``bool``; the only names the generated
code uses are those constants, ``c`` (the flat feature dict) and the helpers below. Feature names
listed in ``LAZY`` (costly features computed only when a condition reads them) are read through
``_lazy(c, name)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import re2

from proxy.policy.cel import (
    BOOL,
    DOUBLE,
    INT,
    LIST_INT,
    LIST_STRING,
    NUMERIC,
    STRING,
    CelError,
    Env,
    EvalError,
    Fn,
    Node,
    dotted,
    parse,
    re2_reason,
    suggest,
)

# name -> function(c) that fills the feature into ``c`` and returns it (set by proxy.policy.signals).
LAZY: dict[str, Callable[[dict[str, Any]], Any]] = {}


def _lazy(c: Any, name: str) -> Any:
    try:
        return c[name]
    except KeyError:
        return LAZY[name](c)


def _idiv(a: Any, b: Any) -> Any:
    if b == 0:
        raise EvalError("division by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _fdiv(a: Any, b: Any) -> Any:
    if b == 0:
        raise EvalError("division by zero")
    return a / b


def _mod(a: Any, b: Any) -> Any:
    if b == 0:
        raise EvalError("modulo by zero")
    return a % b


_HELPERS = {
    "_lazy": _lazy, "_idiv": _idiv, "_fdiv": _fdiv, "_mod": _mod, "len": len, "int": int, "float": float, "bool": bool,
}


def _num(t: str) -> bool:
    return t in NUMERIC


class _Gen:
    """Source generation for one expression; constants collected into ``ns``."""

    def __init__(self, env: Env, shared: Shared | None = None, names: Mapping[str, str] | None = None) -> None:
        self.env = env
        self.ns: dict[str, Any] = {"__builtins__": {}, **_HELPERS}
        self.shared = shared
        self.reads: set[str] = set()  # feature names the expression being generated reads
        self.names = names or {}  # features read from a local of the generated function instead of ``c``

    def const(self, v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return repr(v)
        if isinstance(v, int) or (isinstance(v, float) and math.isfinite(v)):
            return f"({v!r})"
        sh = self.shared
        key = (type(v), v)
        if sh is not None and key in sh.consts:  # one name per value: equal macros get equal source
            return sh.consts[key]
        name = f"_k{len(self.ns)}"
        self.ns[name] = v
        if sh is not None:
            sh.consts[key] = name
        return name

    def gen(self, n: Node, expanding: frozenset[str]) -> tuple[str, str]:
        k = n.kind
        if k == "lit":
            v = n.value
            t = BOOL if isinstance(v, bool) else INT if isinstance(v, int) else STRING
            if isinstance(v, float):
                t = DOUBLE
            return self.const(v), t
        if k == "list":
            items = [self.gen(a, expanding) for a in n.args]
            if not all(a.kind == "lit" for a in n.args):
                raise CelError("list literals may contain only literal values", n.col)
            types = {t for _, t in items}
            if types <= {STRING}:
                lt = LIST_STRING
            elif types <= {INT}:
                lt = LIST_INT
            else:
                raise CelError(f"a list must hold one type, got {', '.join(sorted(types))}", n.col)
            return self.const(frozenset(a.value for a in n.args)), lt
        if k in ("ident", "select"):
            name = dotted(n)
            if name is None:
                raise CelError("fields can be selected only from declared names", n.col)
            head = n
            while head.kind == "select":
                head = head.args[0]
            return self.name(name, head, expanding)
        if k == "unary":
            s, t = self.gen(n.args[0], expanding)
            if n.value == "!":
                if t != BOOL:
                    raise CelError(f"'!' needs a bool, got {t}", n.col)
                return f"(not {s})", BOOL
            if not _num(t):
                raise CelError(f"'-' needs a number, got {t}", n.col)
            return f"(-{s})", t
        if k == "cond":
            sc, tc = self.gen(n.args[0], expanding)
            sa, ta = self.gen(n.args[1], expanding)
            sb, tb = self.gen(n.args[2], expanding)
            if tc != BOOL:
                raise CelError(f"the condition of '?:' must be bool, got {tc}", n.col)
            if ta != tb and not (_num(ta) and _num(tb)):
                raise CelError(f"both branches of '?:' must have one type, got {ta} and {tb}", n.col)
            return f"({sa} if {sc} else {sb})", ta if ta == tb else DOUBLE
        if k == "binary":
            return self.binary(n, expanding)
        if k == "call":
            return self.call(n, expanding)
        if k == "method":
            return self.method(n, expanding)
        raise CelError(f"unsupported expression {k}", n.col)  # pragma: no cover

    def name(self, name: str, n: Node, expanding: frozenset[str]) -> tuple[str, str]:
        env = self.env
        if name in env.features:
            if env.refs is not None:
                env.refs.add(name)
            self.reads.add(name)
            local = self.names.get(name)
            if local is not None:
                return local, env.features[name]
            if name in LAZY:
                return f"_lazy(c, {name!r})", env.features[name]
            return f"c[{name!r}]", env.features[name]
        if name.startswith("lists."):
            lname = name[6:]
            if lname not in env.lists:
                raise CelError(f"unknown list {lname!r}{suggest(lname, env.lists)}", n.col)
            lt, items = env.lists[lname]
            return self.const(items), lt
        if name in env.macros:
            if name in expanding:
                raise CelError(f"macro {name!r} refers to itself", n.col)
            outer, self.reads = self.reads, set()
            try:
                src, typ = self.gen(env.macros[name], expanding | {name})
                return self.memo(src), typ
            finally:
                outer |= self.reads
                self.reads = outer
        options = [*env.features, *env.macros, *(f"lists.{x}" for x in env.lists)]
        raise CelError(f"unknown name {name!r}{suggest(name, options)}", n.col)

    def memo(self, src: str) -> str:
        """With ``shared.memo``, a macro is computed once per run of the generated function, in a local
        (``_mN``, initialised to ``_U`` by the caller), unless it reads what a run changes (``agg.*``,
        ``score.*``). A macro that raises stays unset, so each rule reading it raises again, as before."""
        sh = self.shared
        if sh is None or not sh.memo_on or any(r.startswith(VOLATILE) for r in self.reads):
            return src
        return sh.once(src)

    def binary(self, n: Node, expanding: frozenset[str]) -> tuple[str, str]:
        op = n.value
        if op == "||":
            src = self.any_of(n, expanding)
            if src is not None:
                return src, BOOL
        sa, ta = self.gen(n.args[0], expanding)
        sb, tb = self.gen(n.args[1], expanding)
        if op in ("&&", "||"):
            if ta != BOOL or tb != BOOL:
                raise CelError(f"{op!r} needs bool operands, got {ta} and {tb}", n.col)
            return f"({sa} {'and' if op == '&&' else 'or'} {sb})", BOOL
        if op == "in":
            if tb == STRING:
                if ta != STRING:
                    raise CelError(f"'in' a string needs a string on the left, got {ta}", n.col)
                return f"({sa} in {sb})", BOOL
            elem = {LIST_STRING: STRING, LIST_INT: INT}.get(tb)
            if elem is None:
                raise CelError(f"'in' needs a list on the right, got {tb}", n.col)
            if ta != elem and not (elem == INT and ta == DOUBLE):
                raise CelError(f"'in' compares {ta} with a {tb}", n.col)
            return f"({sa} in {sb})", BOOL
        if op in ("==", "!="):
            if ta != tb and not (_num(ta) and _num(tb)):
                raise CelError(f"cannot compare {ta} {op} {tb}", n.col)
            return f"({sa} {op} {sb})", BOOL
        if op in ("<", "<=", ">", ">="):
            if not ((_num(ta) and _num(tb)) or (ta == tb == STRING)):
                raise CelError(f"cannot order {ta} {op} {tb}", n.col)
            return f"({sa} {op} {sb})", BOOL
        if op == "+" and ta == tb == STRING:
            return f"({sa} + {sb})", STRING
        if not (_num(ta) and _num(tb)):
            raise CelError(f"'{op}' needs numbers, got {ta} and {tb}", n.col)
        rt = INT if ta == tb == INT else DOUBLE
        if op in ("+", "-", "*"):
            return f"({sa} {op} {sb})", rt
        if op == "/":
            return f"{'_idiv' if rt == INT else '_fdiv'}({sa}, {sb})", rt
        if rt != INT:
            raise CelError("'%' needs int operands", n.col)
        return f"_mod({sa}, {sb})", INT

    def any_of(self, n: Node, expanding: frozenset[str]) -> str | None:
        """A chain of ``||``, flattened (``or`` is associative, short-circuit order kept). Consecutive
        operands ``'lit' in L`` over one list ``L`` become one set test, ``not K.isdisjoint(L)``: the default
        pack's ``cot_strong`` asks five such questions of ``signals.cot_families``. None when an operand is
        not a bool: ``binary`` then reports it as it does for any operator."""
        terms: list[Node] = []
        stack = [n]
        while stack:
            t = stack.pop()
            if t.kind == "binary" and t.value == "||":
                stack += [t.args[1], t.args[0]]
            else:
                terms.append(t)
        out: list[str] = []
        run_src, run_lits = "", list[str]()  # the current run of ``'lit' in run_src``

        def flush() -> None:
            if len(run_lits) == 1:
                out.append(f"({self.const(run_lits[0])} in {run_src})")
            elif run_lits:
                out.append(f"(not {self.const(frozenset(run_lits))}.isdisjoint({run_src}))")
            run_lits.clear()

        for t in terms:
            lit = t.args[0] if t.kind == "binary" and t.value == "in" else None
            if lit is not None and lit.kind == "lit" and isinstance(lit.value, str):
                sl, tl = self.gen(t.args[1], expanding)
                if tl == LIST_STRING:
                    if sl != run_src:
                        flush()
                        run_src = sl
                    run_lits.append(lit.value)
                    continue
            st, tt = self.gen(t, expanding)
            if tt != BOOL:
                return None
            flush()
            out.append(st)
        flush()
        return out[0] if len(out) == 1 else "(" + " or ".join(out) + ")"

    def call(self, n: Node, expanding: frozenset[str]) -> tuple[str, str]:
        name = n.value
        if name not in ("size", "int", "double"):
            raise CelError(f"unknown function {name!r}{suggest(name, ['size', 'int', 'double'])}", n.col)
        if len(n.args) != 1:
            raise CelError(f"{name}() takes one argument, got {len(n.args)}", n.col)
        s, t = self.gen(n.args[0], expanding)
        if name == "size":
            if t not in (STRING, LIST_STRING, LIST_INT):
                raise CelError(f"size() needs a string or a list, got {t}", n.col)
            return f"len({s})", INT
        if not _num(t):
            raise CelError(f"{name}() needs a number, got {t}", n.col)
        return (f"int({s})", INT) if name == "int" else (f"float({s})", DOUBLE)

    def method(self, n: Node, expanding: frozenset[str]) -> tuple[str, str]:
        name = n.value
        recv, *args = n.args
        if name not in _METHODS:
            raise CelError(f"unknown method {name!r}{suggest(name, _METHODS)}", n.col)
        sr, tr = self.gen(recv, expanding)
        if tr != STRING:
            raise CelError(f".{name}() needs a string receiver, got {tr}", n.col)
        if name == "lower":
            if args:
                raise CelError(".lower() takes no argument", n.col)
            return f"{sr}.lower()", STRING
        if len(args) != 1:
            raise CelError(f".{name}() takes one argument, got {len(args)}", n.col)
        if name == "matches":
            if args[0].kind != "lit" or not isinstance(args[0].value, str):
                raise CelError(".matches() takes a literal pattern", args[0].col)
            opts = re2.Options()
            opts.log_errors = False
            try:
                rx = re2.compile(args[0].value, opts)
            except re2.error as e:
                raise CelError(f"RE2 refuses pattern {args[0].value!r}: {re2_reason(e)}", args[0].col) from None
            return f"({self.const(rx)}.search({sr}) is not None)", BOOL
        sa, ta = self.gen(args[0], expanding)
        if ta != STRING:
            raise CelError(f".{name}() needs a string argument, got {ta}", args[0].col)
        if name == "startsWith":
            return f"{sr}.startswith({sa})", BOOL
        if name == "endsWith":
            return f"{sr}.endswith({sa})", BOOL
        return f"({sa} in {sr})", BOOL


_METHODS = ("startsWith", "endsWith", "contains", "lower", "matches")


def compile_node(n: Node, env: Env) -> tuple[Fn, str]:
    """Type-check and compile a parsed expression; returns (function of the feature dict, type)."""
    g = _Gen(env)
    src, typ = g.gen(n, frozenset())
    fn = eval(compile(f"lambda c: {src}", "<cel>", "eval"), g.ns)  # source built above
    return fn, typ


VOLATILE = ("agg.", "score.")  # features a rule program writes while it runs


class Shared:
    """What the expressions of one generated function share: one name per constant value and, with
    ``memo_on``, one local per macro (``memo``: macro source -> local name; the function must start by
    setting every one of them to ``_U``)."""

    def __init__(self, memo: bool = True) -> None:
        self.consts: dict[tuple[type, Any], str] = {}
        self.memo: dict[str, str] = {}
        self.wrapped: set[str] = set()  # what ``once`` returned
        self.memo_on = memo

    def once(self, src: str) -> str:
        """``src`` (which must not read what a run changes) computed at most once per run, in a local."""
        if src in self.wrapped:  # already computed once (a macro on its own)
            return src
        var = self.memo.get(src)
        if var is None:
            var = self.memo[src] = f"_m{len(self.memo)}"
        out = f"({var} if {var} is not _U else ({var} := {src}))"
        self.wrapped.add(out)
        return out


_UNSET = object()


def namespace() -> dict[str, Any]:
    """A namespace for generated code: the helpers, no builtins (``expr_source`` adds constants to it)."""
    return {"__builtins__": {}, **_HELPERS, "_U": _UNSET}


def expr_source(
    src: str, env: Env, ns: dict[str, Any], shared: Shared | None = None, reads: set[str] | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """The Python source of an expression that compiled before (in ``env``), as in ``compile_node``, with
    its constants bound in ``ns``: several expressions can share one generated function
    (``proxy.policy.engine``'s rule programs), and with ``shared`` their constants and macro values.
    The feature names it reads are added to ``reads``; those in ``names`` are read from the local of the
    generated function named there (a rule's ``agg.*`` values). Raises ``CelError`` as ``compile_expr`` does."""
    g = _Gen(env, shared, names)
    g.ns = ns
    out = g.gen(parse(src), frozenset())[0]
    if reads is not None:
        reads |= g.reads
    return out


def compile_expr(src: str, env: Env, *, want: str | None = BOOL) -> tuple[Fn, str]:
    """Parse, type-check and compile ``src``; returns (function, type). Raises ``CelError``."""
    fn, typ = compile_node(parse(src), env)
    if want is not None and typ != want and not (want == DOUBLE and typ == INT):
        raise CelError(f"expression must be {want}, but it is {typ}", 1)
    return fn, typ


def conjuncts(n: Node) -> list[Node]:
    """Top-level ``&&`` operands, for ``explain``."""
    if n.kind == "binary" and n.value == "&&":
        return conjuncts(n.args[0]) + conjuncts(n.args[1])
    return [n]


def safe(fn: Fn) -> Callable[[Mapping[str, Any]], bool]:
    """Wrap a compiled condition so runtime errors (division by zero, a missing key) read as false."""

    def run(c: Mapping[str, Any]) -> bool:
        try:
            return bool(fn(c))
        except (EvalError, KeyError, TypeError, ValueError, OverflowError):
            return False

    return run
