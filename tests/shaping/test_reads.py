"""The fast path reads the model and the output-token cap of a request itself (``proxy.shaping.reads``):
it must read what ``Exchange.model`` and the dialect's ``max_tokens_of`` return, for every body shape."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from proxy.accounts import Account
from proxy.dialects import DIALECTS
from proxy.dialects.openai_chat import OpenAIChatDialect
from proxy.exchange import Exchange
from proxy.filters.shape import ShapeFilter
from proxy.shaping.reads import MAX_TOKEN_FIELDS, dialect_info
from proxy.shaping.spec import parse_limits

RESERVE = 64
LIMITS = [{"name": "out", "scope": ["account", "model"],
           "tokens": {"limit": 10**9, "window": "1m", "count": "output", "reserve": RESERVE}}]
PATHS = {"openai_chat": "/v1/chat/completions", "anthropic_messages": "/v1/messages",
         "openai_responses": "/v1/responses", "gemini": "/v1beta/models/g-1:generateContent"}


class Small(int):
    """An int subclass (not from JSON, but a filter may put one into the body)."""


CAPS: list[dict[str, Any]] = [
    {},
    {"max_tokens": 7},
    {"max_completion_tokens": 9, "max_tokens": 7},
    {"max_completion_tokens": None, "max_tokens": 3},
    {"max_completion_tokens": "9", "max_tokens": 7},
    {"max_completion_tokens": True, "max_tokens": 5},
    {"max_tokens": True},
    {"max_tokens": 5.0},
    {"max_tokens": "12"},
    {"max_tokens": None},
    {"max_tokens": 0},
    {"max_tokens": Small(21)},
    {"max_completion_tokens": Small(22), "max_tokens": 4},
    {"max_output_tokens": 11},
    {"max_output_tokens": False, "max_tokens": 6},
    {"max_output_tokens": Small(13)},
    {"generationConfig": {"maxOutputTokens": 17}},
]
MODELS: list[Any] = ["m1", "", None, 5, ["m"]]


def _exchange(dialect: str, cap: dict[str, Any], model: Any, account: str = "a") -> Exchange:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}], "input": "hello",
                            "contents": [{"role": "user", "parts": [{"text": "hello"}]}], **cap}
    if model is not None:
        body["model"] = model
    raw = orjson.dumps({k: (int(v) if isinstance(v, Small) else v) for k, v in body.items()})
    ex = Exchange(path=PATHS[dialect], body=raw, dialect=DIALECTS[dialect])
    ex.account = Account(id=account, tier="standard")
    ex._json = body  # the parsed body as a filter may have left it (``Small`` values kept)
    return ex


def _warm(f: ShapeFilter) -> ShapeFilter:
    """The backend's first request sets its time base (on the general path): done here."""
    ex = _exchange("openai_chat", {}, "warm-up", account="warm-up")
    assert f.on_request_now(ex) is None and f.on_done_now(ex) is None
    return f


@pytest.mark.parametrize("dialect", sorted(PATHS))
def test_fast_path_reads_what_the_exchange_and_the_dialect_return(dialect: str) -> None:
    f = _warm(ShapeFilter(parse_limits(LIMITS), sweep_interval=0))
    assert f.shaper.fast is not None
    for cap in CAPS:
        for model in MODELS:
            ex = _exchange(dialect, cap, model)
            probe = _exchange(dialect, cap, model)
            expected_model = probe.model
            expected_cap = probe.dialect.max_tokens_of(probe.json, probe)  # type: ignore[union-attr]
            assert f.on_request_now(ex) is None
            st = ex.state["shape"]
            if expected_model is None:  # no scope value: the limit does not apply (the general path says so)
                assert not st.fast and not st.charges
            else:
                assert st.fast, (cap, model)
                (_, key, charged, _), = st.charges
                assert charged == float(expected_cap or RESERVE), (dialect, cap, model)
                assert key.endswith(expected_model), (key, expected_model)
            assert f.on_done_now(ex) is None


def test_the_model_scope_keys_match_the_general_path() -> None:
    fast = _warm(ShapeFilter(parse_limits(LIMITS), sweep_interval=0))
    general = _warm(ShapeFilter(parse_limits(LIMITS), sweep_interval=0, fast_path=False))
    for dialect in sorted(PATHS):
        for model in MODELS:
            a, b = _exchange(dialect, {"max_tokens": 5}, model), _exchange(dialect, {"max_tokens": 5}, model)
            assert fast.on_request_now(a) is None and general.on_request_now(b) is None
            charges = [[(cl.spec.name, *rest) for cl, *rest in x.state["shape"].charges] for x in (a, b)]
            assert charges[0] == charges[1], (dialect, model)
            assert a.reply_headers == b.reply_headers


def test_dialect_info_falls_back_to_the_dialects_method() -> None:
    for name, d in DIALECTS.items():
        info = dialect_info(d)
        assert info.anthropic == name.startswith("anthropic")
        assert info.plain_model == (name != "gemini")
        assert (info.field1 is not None) == (type(d) in MAX_TOKEN_FIELDS)
    assert dialect_info(None) == (False, False, None, None)

    class Custom(OpenAIChatDialect):
        def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
            return 1

    assert dialect_info(Custom()).field1 is None  # a subclass's own method is asked
    patched = OpenAIChatDialect()
    patched.max_tokens_of = lambda body, ex: 2  # type: ignore[method-assign]
    assert dialect_info(patched).field1 is None


def test_a_subclass_dialect_is_asked_through_its_method() -> None:
    class Custom(OpenAIChatDialect):
        def max_tokens_of(self, body: dict[str, Any], ex: Exchange) -> int | None:
            return 123

    f = _warm(ShapeFilter(parse_limits(LIMITS), sweep_interval=0))
    ex = _exchange("openai_chat", {"max_tokens": 5}, "m1")
    ex.dialect = Custom()
    assert f.on_request_now(ex) is None
    assert ex.state["shape"].fast and ex.state["shape"].charges[0][2] == 123.0
