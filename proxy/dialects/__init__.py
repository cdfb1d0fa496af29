"""Dialects, one module per wire API, registered in an explicit dict (no import magic)."""

from __future__ import annotations

from proxy.dialects.anthropic_messages import AnthropicMessagesDialect
from proxy.dialects.base import Dialect
from proxy.dialects.gemini import GeminiDialect
from proxy.dialects.openai_chat import OpenAIChatDialect
from proxy.dialects.openai_responses import OpenAIResponsesDialect

DIALECTS: dict[str, Dialect] = {
    "openai_chat": OpenAIChatDialect(),
    "openai_responses": OpenAIResponsesDialect(),
    "anthropic_messages": AnthropicMessagesDialect(),
    "gemini": GeminiDialect(),
}

# Used for local replies on paths no dialect recognises (an OpenAI-shaped body, the most widely parsed).
GENERIC = Dialect()


def detect(method: str, path: str, hint: str | None = None) -> Dialect | None:
    """The dialect for a request path (after route-prefix stripping); ``hint`` pins one by name."""
    if hint is not None:
        d = DIALECTS[hint]
        return d if d.match(method, path) else None
    for d in DIALECTS.values():
        if d.match(method, path):
            return d
    return None
