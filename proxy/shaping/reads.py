"""What the fast path (``proxy.shaping.fastcode``) reads from a request without a Python call per field.

``Exchange.model`` and ``Exchange.max_tokens`` cost a frame each, and a dialect's ``max_tokens_of`` one
more plus one per ``as_int``: about as much as the GCRA arithmetic of a limit. For the dialects whose
``max_tokens_of`` is a plain read of one or two body fields, the fast path reads those fields itself;
``tests/shaping/test_reads.py`` checks that it reads what the method returns. A dialect not listed here,
a subclass that overrides the method, or an instance that replaces it, is asked as before.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from proxy.dialects.anthropic_messages import AnthropicMessagesDialect
from proxy.dialects.openai_chat import OpenAIChatDialect
from proxy.dialects.openai_responses import OpenAIResponsesDialect

# The body fields each dialect's ``max_tokens_of`` reads, in its order: the first that holds an int
# (not a bool) is the cap.
MAX_TOKEN_FIELDS: dict[type, tuple[str, str | None]] = {
    OpenAIChatDialect: ("max_completion_tokens", "max_tokens"),
    AnthropicMessagesDialect: ("max_tokens", None),
    OpenAIResponsesDialect: ("max_output_tokens", None),
}
_METHODS = {cls: cls.__dict__["max_tokens_of"] for cls in MAX_TOKEN_FIELDS}


class DialectInfo(NamedTuple):
    """What the fast path needs to know about a request's dialect (computed once per dialect object)."""

    anthropic: bool  # limit headers in Anthropic's format
    plain_model: bool  # ``Exchange.model`` is ``body["model"]`` while no view was built
    field1: str | None  # the first max-token field (None: call ``max_tokens_of``)
    field2: str | None  # the second, if the first holds no int


def dialect_info(dialect: Any) -> DialectInfo:
    if dialect is None:
        return DialectInfo(False, False, None, None)
    cls = type(dialect)
    fields = MAX_TOKEN_FIELDS.get(cls)
    own = getattr(dialect, "__dict__", {})
    field1, field2 = None, None
    if fields is not None and cls.__dict__.get("max_tokens_of") is _METHODS[cls] and "max_tokens_of" not in own:
        field1, field2 = fields
    name = dialect.name
    return DialectInfo(name.startswith("anthropic"), name != "gemini", field1, field2)
