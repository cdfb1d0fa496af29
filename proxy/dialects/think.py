"""Streaming separation of reasoning written inline as ``<think>…</think>`` inside visible content.

Used by filters on Chat Completions ``content`` (servers running without a reasoning parser). The tags
may be split across any chunk boundary, several blocks may occur, and templates that prefill ``<think>``
leave only the closing tag in the output.
"""

from __future__ import annotations

from proxy.exchange import REASONING, TEXT

OPEN = "<think>"
CLOSE = "</think>"
MARKUP = "markup"  # the tags and the dropped newlines, reported only with ``markup=True``
_UNKNOWN = "unknown"


class ThinkSplitter:
    """Splits a stream of content text into ``(kind, text)`` pieces, kind TEXT or REASONING.

    ``start_in_reasoning``: True when the template is known to prefill ``<think>``, False when the output
    starts as visible text, None when unknown. While unknown, text is held back until ``<think>`` (what
    came before is text), ``</think>`` (everything so far was reasoning) or ``release_after``
    non-whitespace characters without a tag (released as text). Once the state is known, at most a
    tag's length is held back (a possible split tag). The newlines right after ``</think>`` are dropped.
    At ``flush`` an unclosed block counts as reasoning (what vLLM's parser does).

    ``markup=True`` also reports what is neither text nor reasoning (the tags, the dropped newlines) as
    MARKUP pieces, so that TEXT + REASONING + MARKUP pieces, in order, are exactly the input (what sealing
    needs to restore the original content).
    """

    __slots__ = ("_buf", "_drop_nl", "_state", "_visible", "markup", "release_after")

    def __init__(
        self, start_in_reasoning: bool | None = None, *, release_after: int = 512, markup: bool = False
    ) -> None:
        if start_in_reasoning is None:
            self._state = _UNKNOWN
        else:
            self._state = REASONING if start_in_reasoning else TEXT
        self._buf = ""
        self._drop_nl = 0
        self._visible = 0  # non-whitespace characters held while the state is unknown
        self.release_after = release_after
        self.markup = markup

    @property
    def in_reasoning(self) -> bool | None:
        """True inside a reasoning block, False in visible text, None while still undecided."""
        return None if self._state == _UNKNOWN else self._state == REASONING

    @property
    def idle(self) -> str | None:
        """The state (TEXT or REASONING) when nothing is held back and no newline is pending after a
        ``</think>``, else None. While idle, a piece of text without ``<`` is emitted whole, as this kind,
        and leaves the state unchanged (what lets callers skip ``feed`` for such pieces)."""
        if self._buf or self._drop_nl or self._state == _UNKNOWN:
            return None
        return self._state

    @property
    def held(self) -> int:
        """Characters held back, waiting for more input."""
        return len(self._buf)

    def feed(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if not text:
            return out
        buf = self._buf + text
        self._buf = ""
        while buf:
            if self._state == _UNKNOWN:
                i, j = buf.find(OPEN), buf.find(CLOSE)
                if j >= 0 and (i < 0 or j < i):
                    _emit(out, REASONING, buf[:j])
                    self._tag(out, CLOSE)
                    buf = self._enter_text(buf[j + len(CLOSE) :])
                elif i >= 0:
                    _emit(out, TEXT, buf[:i])
                    self._tag(out, OPEN)
                    self._state = REASONING
                    buf = buf[i + len(OPEN) :]
                else:
                    self._visible += len(text) - sum(text.count(c) for c in " \t\r\n")
                    if self._visible < self.release_after:
                        self._buf = buf
                        return out
                    self._state = TEXT
            elif self._state == REASONING:
                j = buf.find(CLOSE)
                if j >= 0:
                    _emit(out, REASONING, buf[:j])
                    self._tag(out, CLOSE)
                    buf = self._enter_text(buf[j + len(CLOSE) :])
                else:
                    keep = _partial_tail(buf, CLOSE)
                    _emit(out, REASONING, buf[: len(buf) - keep])
                    self._buf = buf[len(buf) - keep :]
                    return out
            else:
                if self._drop_nl:
                    stripped = buf.lstrip("\n")
                    dropped = min(len(buf) - len(stripped), self._drop_nl)
                    self._tag(out, buf[:dropped])
                    buf = buf[dropped:]
                    self._drop_nl = 0 if buf else self._drop_nl - dropped
                    if not buf:
                        return out
                i = buf.find(OPEN)
                if i >= 0:
                    _emit(out, TEXT, buf[:i])
                    self._tag(out, OPEN)
                    self._state = REASONING
                    buf = buf[i + len(OPEN) :]
                else:
                    keep = _partial_tail(buf, OPEN)
                    _emit(out, TEXT, buf[: len(buf) - keep])
                    self._buf = buf[len(buf) - keep :]
                    return out
        return out

    def flush(self) -> list[tuple[str, str]]:
        """Release what is held at the end of the stream."""
        buf, self._buf = self._buf, ""
        out: list[tuple[str, str]] = []
        _emit(out, REASONING if self._state == REASONING else TEXT, buf)
        return out

    def _tag(self, out: list[tuple[str, str]], text: str) -> None:
        if self.markup:
            _emit(out, MARKUP, text)

    def _enter_text(self, rest: str) -> str:
        self._state = TEXT
        self._drop_nl = 2
        return rest


def _emit(out: list[tuple[str, str]], kind: str, text: str) -> None:
    if text:
        out.append((kind, text))


def _partial_tail(buf: str, tag: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``tag`` (the tag may go on)."""
    # Both tags contain a single "<", at their start, so only the last "<" can begin a partial tag.
    k = buf.rfind("<", max(0, len(buf) - len(tag) + 1))
    if k < 0:
        return 0
    return len(buf) - k if tag.startswith(buf[k:]) else 0
