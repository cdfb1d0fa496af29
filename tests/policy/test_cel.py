"""The CEL subset: evaluation, load-time type errors with columns, bounded cost, no escape to Python."""


from __future__ import annotations

import pytest

from proxy.policy.cel import BOOL, DOUBLE, INT, LIST_STRING, STRING, CelError, Env
from proxy.policy.celcode import compile_expr, safe

ENV = Env(
    {
        "request.model": STRING,
        "request.max_tokens": INT,
        "agg.n": DOUBLE,
        "request.stream": BOOL,
        "signals.cot_families": LIST_STRING,
    },
    {"models": (LIST_STRING, frozenset({"o3", "o4-mini"}))},
    {},
)
CTX = {
    "request.model": "o3-mini",
    "request.max_tokens": 5000,
    "agg.n": 2.5,
    "request.stream": True,
    "signals.cot_families": frozenset({"verbatim"}),
}


@pytest.mark.parametrize(
    ("src", "want"),
    [
        ("request.max_tokens > 4000 && request.model.startsWith('o')", True),
        ("request.max_tokens > 4000 && !request.stream", False),
        ("request.model in lists.models", False),
        ("request.model in ['o3-mini', 'x']", True),
        ("'verbatim' in signals.cot_families", True),
        ("size(signals.cot_families) == 1 && size(request.model) == 7", True),
        ("agg.n * 2 == 5", True),
        ("request.max_tokens / 3 == 1666", True),
        ("-7 / 2 == -3 && 7 % 3 == 1", True),
        ("request.stream ? agg.n > 2 : false", True),
        ("request.model.lower().contains('mini') || false", True),
        ("request.model.matches('^o[0-9]+-mini$')", True),
        ("int(agg.n) == 2 && double(request.max_tokens) > 4999.5", True),
        ('request.model.endsWith("mini") && 1_000 < 2e3', True),
    ],
)
def test_evaluates(src: str, want: bool) -> None:
    fn, _ = compile_expr(src, ENV)
    assert fn(CTX) is want


@pytest.mark.parametrize(
    ("src", "error"),
    [
        ("request.modle == 'x'", "col 1: unknown name 'request.modle'; did you mean 'request.model'?"),
        ("request.model > 3", "col 15: cannot order string > int"),
        ("request.max_tokens && true", "col 20: '&&' needs bool operands, got int and bool"),
        ("request.max_tokens", "col 1: expression must be bool, but it is int"),
        ("request.model in lists.modelz", "col 18: unknown list 'modelz'; did you mean 'models'?"),
        ("1 in ['a']", "col 3: 'in' compares int with a list<string>"),
        ("request.model.split(',') == 1", "col 15: unknown method 'split'"),
        (
            "request.model.__class__ == 'x'",
            "col 1: unknown name 'request.model.__class__'; did you mean 'request.model'?",
        ),
        ("open('x')", "col 1: unknown function 'open'"),
        (
            "request.model.matches('(a)\\\\1')",
            "col 23: RE2 refuses pattern '(a)\\\\1': invalid escape sequence: \\1",
        ),
        ("request.model.matches('(?=x)')", "col 23: RE2 refuses pattern '(?=x)': invalid perl operator: (?="),
        ("a = b", "col 3: unexpected character '='; use '=='"),
        ("(true", "col 6: expected ')', found end of expression"),
        ("true false", "col 6: unexpected 'false' after a complete expression"),
        ("'abc", "col 1: unterminated string"),
        ("[request.model]", "col 1: list literals may contain only literal values"),
        ("null == 1", "col 1: null is not supported; every feature has a value"),
    ],
)
def test_type_and_syntax_errors_at_compile(src: str, error: str) -> None:
    with pytest.raises(CelError) as ei:
        compile_expr(src, ENV)
    assert str(ei.value) == error


def test_cost_is_bounded() -> None:
    with pytest.raises(CelError, match="nested too deeply"):
        compile_expr("(" * 60 + "true" + ")" * 60, ENV)
    with pytest.raises(CelError, match="longer than"):
        compile_expr("true || " * 700 + "true", ENV)
    with pytest.raises(CelError, match="too large"):
        compile_expr("||".join(["true"] * 420), ENV)


def test_runtime_errors_read_as_false() -> None:
    fn, _ = compile_expr("request.max_tokens / 0 > 1", ENV)
    assert safe(fn)(CTX) is False
    assert safe(fn)({}) is False


def test_macros_expand_and_cannot_recurse() -> None:
    from proxy.policy.cel import parse

    env = Env(
        ENV.features, ENV.lists, {"big": parse("request.max_tokens > 4000"), "loop": parse("loop && true")}
    )
    fn, _ = compile_expr("big && request.stream", env)
    assert fn(CTX) is True
    with pytest.raises(CelError, match="refers to itself"):
        compile_expr("loop", env)


def test_compiled_code_reaches_only_features_and_constants() -> None:
    # Rule text reaches the generated function only as bound constants, never as code.
    src = "request.model == '__import__(\"os\").system(\"x\")' || request.model + '\\')' == 'a'"
    fn, _ = compile_expr(src, ENV)
    assert fn(CTX) is False and fn({**CTX, "request.model": "a')"}) is False
    assert fn({**CTX, "request.model": '__import__("os").system("x")'}) is True
    assert fn.__globals__["__builtins__"] == {}
    names = set(fn.__code__.co_names)
    assert names <= {"_lazy", "_idiv", "_fdiv", "_mod", "len", "int", "float", "startswith", "endswith", "lower",
                     "search"} | {n for n in fn.__globals__ if n.startswith("_k")}


def test_integer_division_and_modulo_follow_cel() -> None:
    env = Env({"a": INT, "b": INT, "x": DOUBLE}, {}, {})
    for src, want in [("a / b", -2), ("a % b", -1 % 3), ("-a / b", 2), ("x / 2.0", 1.25), ("int(x) + 1", 3)]:
        fn, _ = compile_expr(src, env, want=None)
        assert fn({"a": -7, "b": 3, "x": 2.5}) == want
    fn, _ = compile_expr("a / (b - 3) == 0", env)
    assert safe(fn)({"a": 1, "b": 3, "x": 0.0}) is False


def test_lazy_features_are_computed_when_first_read() -> None:
    from proxy.exchange import Message, RequestView
    from proxy.policy.signals import SCHEMA, RequestMeta, complete_features, compute_features

    view = RequestView(model="o3", messages=[Message("user", "What is the capital of France, please?")])
    ctx = compute_features(view, RequestMeta("a1"), 0.0, lazy=True)
    assert "signals.lang" not in ctx
    fn, _ = compile_expr("signals.lang == 'en' && request.model == 'o3'", Env(SCHEMA, {}, {}))
    assert fn(ctx) is True and ctx["signals.lang"] == "en"  # filled on first read, then a plain key
    other = compute_features(view, RequestMeta("a1"), 0.0, lazy=True)
    assert complete_features(other)["signals.lang"] == "en"
    assert compute_features(view, RequestMeta("a1"), 0.0)["signals.lang"] == "en"  # eager by default


def test_features_set_every_schema_key_once() -> None:
    """``compute_features`` starts from a template of every key: each must be set (no ``None`` left) and
    the schema covered, in the order the audit record shows."""
    from proxy.exchange import Message, RequestView
    from proxy.policy.signals import SCHEMA, SKELETON_KEY, RequestMeta, compute_features

    for view in (RequestView(), RequestView(model="m", system="s", messages=[Message("user", "hi 12")], n=0)):
        ctx = compute_features(view, RequestMeta("a1", ip="10.1.2.3"), 86_400.0 * 3 + 7_200.0)
        assert [k for k, v in ctx.items() if v is None] == []
        request = [k for k in SCHEMA if k not in ("signals.lang", "global") and not k.startswith("response.")]
        response = [k for k in SCHEMA if k.startswith("response.")]
        assert [k for k in ctx if k != SKELETON_KEY] == [*request, "global", *response, "signals.lang"]
        assert (ctx["signals.hour"], ctx["signals.weekday"], ctx["client.ip_prefix"]) == (2, 6, "10.1.2.0/24")


@pytest.mark.parametrize(
    "src",
    [
        "'continue' in signals.cot_families || 'tags' in signals.cot_families || 'verbatim' in signals.cot_families",
        "'a' in signals.cot_families || request.stream || 'b' in signals.cot_families || 'c' in signals.cot_families",
        "request.model in lists.models || 'x' in signals.cot_families || 'mini' in request.model",
        "('a' in signals.cot_families || 'b' in signals.cot_families) && !request.stream || agg.n > 2.0",
    ],
)
def test_or_chains_of_list_membership_read_as_one_set_test(src: str) -> None:
    """Consecutive ``'lit' in L`` operands of an ``||`` chain compile to one ``isdisjoint``; every context
    gives the value the operands give one by one (lists and frozensets alike)."""
    from itertools import product

    from proxy.policy import celcode

    fn, typ = compile_expr(src, ENV)
    assert typ == BOOL
    terms = [t.strip() for t in src.replace("(", " ").replace(")", " ").split("||")]
    for fams, stream, model, n in product(
        [frozenset(), frozenset({"a"}), frozenset({"c", "tags"}), ["verbatim"], ["x", "b"]],
        [True, False], ["o3", "o4-mini"], [1.0, 2.5],
    ):
        ctx = {**CTX, "signals.cot_families": fams, "request.stream": stream, "request.model": model, "agg.n": n}
        want = compile_expr(src.replace("||", "|| false ||"), ENV)[0](ctx)  # no two memberships side by side
        assert fn(ctx) is want, (src, ctx, terms)
    g = celcode._Gen(ENV)
    first = g.gen(celcode.parse(src), frozenset())[0]
    assert ("isdisjoint" in first) == (src.count("in signals.cot_families ||") >= 1 and "x' in" not in src)
    with pytest.raises(KeyError):  # a missing list is still an error (read as false by ``safe``)
        fn({k: v for k, v in CTX.items() if k != "signals.cot_families"})
