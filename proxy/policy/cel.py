"""A small, typed subset of CEL: lexer, parser and types (the compiler is ``celcode.py``).

Conditions are parsed once at load, type-checked against the declared feature schema, and compiled to one
Python function that reads a flat feature dict (``{"request.model": "o3", ...}``). Names are resolved
at compile time, so an expression can reach only declared features, named lists and macros: there is no
attribute access on Python objects, no loops and no comprehensions, and the size and depth of an
expression are capped, so evaluation cost is bounded by the expression, never by the request.

Supported: literals (int, double, 'string', "string", true, false, [lists]), ``! - * / % + -``,
``== != < <= > >= in``, ``&& ||``, ``c ? a : b``, ``size(x)``, ``int(x)``, ``double(x)``, and the
string methods ``startsWith endsWith contains lower matches`` (``matches`` takes a literal RE2 pattern).
Runtime errors (division by zero) make the whole condition false, as CEL's error value would.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_LENGTH = 4096
MAX_DEPTH = 48
MAX_NODES = 400

INT, DOUBLE, BOOL, STRING = "int", "double", "bool", "string"
LIST_STRING, LIST_INT = "list<string>", "list<int>"
NUMERIC = (INT, DOUBLE)

Fn = Callable[[Mapping[str, Any]], Any]


class CelError(Exception):
    """A parse or type error; ``col`` is the 1-based column inside the expression."""

    def __init__(self, message: str, col: int) -> None:
        super().__init__(message)
        self.message = message
        self.col = col

    def __str__(self) -> str:
        return f"col {self.col}: {self.message}"


# --------------------------------------------------------------------------- lexer

_OPS2 = ("==", "!=", "<=", ">=", "&&", "||")
_OPS1 = "+-*/%<>!?:().,[]"


@dataclass(slots=True)
class Tok:
    kind: str  # num | str | ident | op | end
    text: str
    value: Any
    col: int


def _lex(src: str) -> list[Tok]:
    toks: list[Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
            continue
        col = i + 1
        if c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            j = i
            while j < n and (src[j].isdigit() or src[j] in "._"):
                j += 1
            if j < n and src[j] in "eE":
                j += 1
                if j < n and src[j] in "+-":
                    j += 1
                while j < n and src[j].isdigit():
                    j += 1
            text = src[i:j].replace("_", "")
            try:
                val: Any = float(text) if any(ch in text for ch in ".eE") else int(text)
            except ValueError:
                raise CelError(f"bad number {src[i:j]!r}", col) from None
            toks.append(Tok("num", text, val, col))
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (src[j].isalnum() or src[j] == "_"):
                j += 1
            toks.append(Tok("ident", src[i:j], None, col))
            i = j
        elif c in "'\"":
            j, out = i + 1, []
            while j < n and src[j] != c:
                if src[j] == "\\" and j + 1 < n:
                    nxt = src[j + 1]
                    out.append({"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(nxt, "\\" + nxt))
                    j += 2
                    continue
                out.append(src[j])
                j += 1
            if j >= n:
                raise CelError("unterminated string", col)
            toks.append(Tok("str", src[i : j + 1], "".join(out), col))
            i = j + 1
        elif src[i : i + 2] in _OPS2:
            toks.append(Tok("op", src[i : i + 2], None, col))
            i += 2
        elif c in _OPS1:
            if c == "=":
                raise CelError("'=' is not an operator; use '=='", col)
            toks.append(Tok("op", c, None, col))
            i += 1
        else:
            hint = {"&": "; use '&&'", "|": "; use '||'", "=": "; use '=='"}.get(c, "")
            raise CelError(f"unexpected character {c!r}{hint}", col)
    toks.append(Tok("end", "", None, n + 1))
    return toks


# --------------------------------------------------------------------------- AST


@dataclass(slots=True)
class Node:
    kind: str  # lit | list | ident | select | unary | binary | cond | call | method
    col: int
    value: Any = None  # literal value, identifier / member / function name, operator
    args: tuple[Node, ...] = ()


_BINARY_PREC = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    "<": 3,
    "<=": 3,
    ">": 3,
    ">=": 3,
    "in": 3,
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
}


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _lex(src)
        self.i = 0
        self.nodes = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> Tok:
        t = self.next()
        if t.text != text or t.kind not in ("op",):
            found = "end of expression" if t.kind == "end" else repr(t.text)
            raise CelError(f"expected {text!r}, found {found}", t.col)
        return t

    def node(self, *a: Any, **kw: Any) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise CelError(f"expression too large (more than {MAX_NODES} nodes)", a[1])
        return Node(*a, **kw)

    def parse(self) -> Node:
        n = self.expr(0)
        t = self.peek()
        if t.kind != "end":
            raise CelError(f"unexpected {t.text!r} after a complete expression", t.col)
        return n

    def expr(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise CelError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek().col)
        cond = self.binary(1, depth)
        if self.peek().text == "?" and self.peek().kind == "op":
            q = self.next()
            a = self.expr(depth + 1)
            self.expect(":")
            b = self.expr(depth + 1)
            return self.node("cond", q.col, None, (cond, a, b))
        return cond

    def binary(self, min_prec: int, depth: int) -> Node:
        left = self.unary(depth)
        while True:
            t = self.peek()
            op = t.text if (t.kind == "op" or (t.kind == "ident" and t.text == "in")) else None
            prec = _BINARY_PREC.get(op or "")
            if prec is None or prec < min_prec:
                return left
            self.next()
            right = self.binary(prec + 1, depth + 1)
            left = self.node("binary", t.col, op, (left, right))

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise CelError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek().col)
        t = self.peek()
        if t.kind == "op" and t.text in ("!", "-"):
            self.next()
            return self.node("unary", t.col, t.text, (self.unary(depth + 1),))
        return self.postfix(depth)

    def postfix(self, depth: int) -> Node:
        n = self.primary(depth)
        while self.peek().kind == "op" and self.peek().text == ".":
            self.next()
            name = self.next()
            if name.kind != "ident":
                raise CelError("expected a field or method name after '.'", name.col)
            if self.peek().text == "(" and self.peek().kind == "op":
                args = self.call_args(depth)
                n = self.node("method", name.col, name.text, (n, *args))
            else:
                n = self.node("select", name.col, name.text, (n,))
        return n

    def call_args(self, depth: int) -> list[Node]:
        self.expect("(")
        args: list[Node] = []
        if self.peek().text != ")":
            while True:
                args.append(self.expr(depth + 1))
                if self.peek().text == ",":
                    self.next()
                    continue
                break
        self.expect(")")
        return args

    def primary(self, depth: int) -> Node:
        t = self.next()
        if t.kind == "num":
            return self.node("lit", t.col, t.value)
        if t.kind == "str":
            return self.node("lit", t.col, t.value)
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return self.node("lit", t.col, t.text == "true")
            if t.text == "null":
                raise CelError("null is not supported; every feature has a value", t.col)
            if self.peek().text == "(" and self.peek().kind == "op":
                return self.node("call", t.col, t.text, tuple(self.call_args(depth)))
            return self.node("ident", t.col, t.text)
        if t.kind == "op" and t.text == "(":
            n = self.expr(depth + 1)
            self.expect(")")
            return n
        if t.kind == "op" and t.text == "[":
            items: list[Node] = []
            if self.peek().text != "]":
                while True:
                    items.append(self.expr(depth + 1))
                    if self.peek().text == ",":
                        self.next()
                        continue
                    break
            self.expect("]")
            return self.node("list", t.col, None, tuple(items))
        found = "end of expression" if t.kind == "end" else repr(t.text)
        raise CelError(f"expected a value, found {found}", t.col)


def parse(src: str) -> Node:
    """Parse one expression (no name resolution yet)."""
    if len(src) > MAX_LENGTH:
        raise CelError(f"expression longer than {MAX_LENGTH} characters", MAX_LENGTH)
    return _Parser(src).parse()


# --------------------------------------------------------------------------- environment


@dataclass(slots=True)
class Env:
    """What names mean: declared features (flat key -> type), named lists, and macro ASTs."""

    features: Mapping[str, str]
    lists: Mapping[str, tuple[str, frozenset[Any]]]  # name -> (type, items)
    macros: Mapping[str, Node]
    # Filled during compilation: the feature keys an expression reads (for explain and phase ordering).
    refs: set[str] | None = None


def dotted(n: Node) -> str | None:
    """``a.b.c`` as a string when the node is a plain chain of names, else None."""
    if n.kind == "ident":
        return str(n.value)
    if n.kind == "select":
        head = dotted(n.args[0])
        return None if head is None else f"{head}.{n.value}"
    return None


def suggest(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------- runtime


class EvalError(Exception):
    """Raised at runtime inside closures; the evaluator turns it into 'no match'."""


def re2_reason(e: Exception) -> str:
    """RE2's error text (it arrives as bytes)."""
    msg = e.args[0] if e.args else e
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)
