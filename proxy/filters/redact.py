"""Chain-of-thought redaction on every wire API, streaming included. Fails closed.

``on_request`` (after rules and hardening) picks the mode: ``ex.controls["redaction"]`` (a rule action)
or the account tier's mode from the ``redaction`` config section, resolved per dialect (``auto``). It
restores sealed reasoning the client carries back (whatever the mode: a token is only ever opened for
the API and account it was made for; a bad token answers 400 ``invalid_request`` in the dialect's shape)
and, in hiding modes, asks the upstream not to send reasoning where the API allows it. Responses are
redacted anyway, as a backstop: ``on_event`` per stream event (incrementally, bounded memory),
``on_end`` flushes what a state machine held, ``on_response`` handles whole JSON bodies.

Fails closed: any exception in ``on_event``/``on_end`` ends the client's stream with the dialect's error
event and in ``on_response`` answers an error; raw reasoning is never forwarded as a fallback. Reasoning
text is never logged; decisions carry lengths and counts only (``fingerprint`` for anything more).
"""

from __future__ import annotations

import logging
from typing import Any

from proxy import errors
from proxy.clock import SYSTEM_CLOCK, Clock
from proxy.errors import ProxyError, Reply
from proxy.exchange import Event, Exchange
from proxy.forward import USAGE_KEY, _merge_cut_usage
from proxy.pipeline import Filter
from proxy.redact import anthropic, chat, chat_stream, gemini, reads, responses
from proxy.redact.common import Ctx, RedactionFailed
from proxy.redact.seal import KeyRing, SealError, new_key_text, parse_keyring, seal_context
from proxy.redact.spec import DROP, MODES, OMIT, PASS, PLACEHOLDER, RedactionSpec, resolve

log = logging.getLogger("distillguard.redact")

_STREAMS: dict[str, Any] = {
    "openai_chat": chat_stream.ChatStream,
    "openai_responses": responses.ResponsesStream,
    "anthropic_messages": anthropic.AnthropicStream,
    "gemini": gemini.GeminiStream,
}
# Whole-read redaction per dialect (``on_read``); a dialect without one is framed event by event.
_READS: dict[str, Any] = {
    "openai_chat": reads.chat_read,
    "anthropic_messages": reads.anthropic_read,
    "openai_responses": reads.responses_read,
}
# The read paths that read the usage of the events they parse (the others leave it to a search of the read)
_READS_USAGE = frozenset(("openai_chat", "anthropic_messages"))
_BODIES: dict[str, Any] = {
    "openai_chat": chat.redact_body,
    "openai_responses": responses.redact_body,
    "anthropic_messages": anthropic.redact_body,
    "gemini": gemini.redact_body,
}
_MODULES: dict[str, Any] = {
    "openai_chat": chat,
    "openai_responses": responses,
    "anthropic_messages": anthropic,
    "gemini": gemini,
}
_SUPPRESSING = frozenset((OMIT, DROP, PLACEHOLDER))
# A request can carry a seal token back only if its raw body holds the token prefix (``dgs1.``) as text, or
# base64 of it (Gemini's ``thoughtSignature`` holds the token base64-encoded: "dgs1." -> "ZGdzMS..."). Without
# either the restore walk is skipped. A token spelt with JSON escapes is then not restored and reaches the
# upstream as it came: an opaque ciphertext, so nothing is revealed; the upstream rejects the conversation.
_TOKEN_TEXT = b"dgs1."
_TOKEN_B64 = b"ZGdzMS"
_STATE = "redact"
_STREAM = "redact_stream"
_STREAM_OBJ = "redact_stream_state"


def _identity(ev: Event) -> list[Event]:
    return [ev]


class RedactFilter(Filter):
    """Hides reasoning per mode (see ``proxy.redact.spec``); restores sealed reasoning on the way in."""

    name = "redact"

    def __init__(
        self,
        spec: RedactionSpec | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        keyring: KeyRing | None = None,
    ) -> None:
        self.spec = spec or RedactionSpec()
        self.clock = clock
        ring = keyring or self.spec.keyring
        if ring is None:
            log.warning(
                "redaction: no seal key ring in $%s; using an ephemeral key (sealed reasoning will "
                "not survive a restart or reach other replicas)",
                self.spec.keys_env,
            )
            ring = KeyRing(parse_keyring(new_key_text("ephemeral")))
        self.keyring = ring

    # -- request ------------------------------------------------------------------------------------

    def mode_of(self, ex: Exchange) -> str:
        override = ex.controls.get("redaction")
        mode = override if isinstance(override, str) and override in MODES else self.spec.mode_for(ex.tier)
        return resolve(mode, ex.dialect.name if ex.dialect is not None else "")

    async def on_request(self, ex: Exchange) -> Reply | None:
        dialect = ex.dialect
        if dialect is None or dialect.name not in _STREAMS:
            return None
        mode = self.mode_of(ex)
        body = ex.json
        suppress = self.spec.suppress_upstream and mode in _SUPPRESSING
        if mode == PASS and not suppress and _TOKEN_TEXT not in ex.body and _TOKEN_B64 not in ex.body:
            return None  # nothing to restore, nothing to ask of the upstream, no stream state
        now = self.clock.now()
        context = seal_context(dialect.name, ex.account_id)
        if isinstance(body, dict) and (suppress or _TOKEN_TEXT in ex.body or _TOKEN_B64 in ex.body):
            try:
                mod = _MODULES[dialect.name]
                changes = mod.rewrite_request(body, None, self.keyring, context, now, suppress)
            except SealError as e:
                log.info("rejected a seal token (%s) for %s (%s)", e.reason, ex.account_id, ex.request_id)
                ex.decisions.append({"filter": self.name, "seal_rejected": e.reason})
                return ex.error(errors.INVALID_REQUEST, f"Invalid reasoning seal token: {e}")
            except RedactionFailed as e:
                return ex.error(errors.INVALID_REQUEST, f"Invalid reasoning seal token: {e}")
            if changes:
                ex.mark_body_changed()
                ex.decisions.append({"filter": self.name, "request": changes})
        if mode != PASS:
            model = ex.view.model if isinstance(body, dict) else ""
            prompt = ex.view.prompt_text if self.spec.leak.action != "off" and isinstance(body, dict) else ""
            ex.state[_STATE] = Ctx(
                self.spec,
                mode,
                dialect.name,
                self.keyring,
                context=context,
                now=now,
                model=model,
                prompt=prompt,
            )
            ex.decisions.append({"filter": self.name, "mode": mode})
        return None

    # -- streams --------------------------------------------------------------------------------------

    def wants_events(self, ex: Exchange) -> bool:
        """Only streams whose reasoning is hidden need their events seen (``pass`` relays them as they
        came: ``on_event`` would be the identity and ``on_end`` empty)."""
        return _STATE in ex.state

    def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
        fn = ex.state.get(_STREAM)
        if fn is None:
            fn = ex.state[_STREAM] = self._stream_fn(ex)
        out: list[Event] = fn(ev)
        return out

    def wants_reads(self, ex: Exchange) -> bool:
        """Whether this stream is redacted whole reads at a time (``on_read``): a dialect with a whole-read
        path, a hiding mode with the byte-level hot path (not ``placeholder``). With the leak check on, the
        read paths hand it the fast-path events' text one stretch at a time, and a finding is acted on
        after the read, before any of it is sent."""
        ctx: Ctx | None = ex.state.get(_STATE)
        return ctx is not None and ctx.dialect in _READS and ctx.placeholder is None

    def on_read(self, ex: Exchange, data: bytes, sep: bytes, framer: Any) -> bytes | None:
        """Whole reads of an SSE stream (the relay's read mode, see ``proxy.pipeline``): complete events
        as the bytes that came; returns the bytes to send, or None to have the read framed and passed to
        ``on_event`` (a dialect without a whole-read path, a read with other line endings). Adds the
        events read and sent to ``ex.events_in`` / ``ex.events_out`` and their usage to ``ex.usage`` (the
        read paths count events as they walk and, but for Responses, read the usage of those they parse:
        the relay need not count separators or look for usage again)."""
        st = ex.state.get(_STREAM_OBJ)
        if st is None:
            if _STREAM not in ex.state:
                ex.state[_STREAM] = self._stream_fn(ex)
            st = ex.state.get(_STREAM_OBJ)
            if st is None:
                return None
        reader = _READS.get(st.ctx.dialect)
        if reader is None:
            return None
        usage = getattr(st, "usage", None)
        if usage is not None:
            usage[1].clear()  # (what a read that failed left)
        out: bytes | None = reader(st, data, sep, framer)
        check = st.ctx.stream_check
        if check is not None and check.finding is not None:
            self._leak(ex, st.ctx, stream=True)  # (withhold: raises, and nothing of this read is sent)
        if out is not None:
            n_in, n_out = st.counts  # (counted by the walk: no pass over the bytes to count separators)
            ex.events_in += n_in
            ex.events_out += n_out
            if usage is None:  # (a walk that passes events it did not parse: the relay's usage probe)
                if USAGE_KEY in data:
                    _merge_cut_usage(ex, ex.dialect.usage, data, sep, framer)  # type: ignore[union-attr]
            else:
                for u in usage[1]:
                    ex.usage.merge(u)
        return out

    def _stream_fn(self, ex: Exchange) -> Any:
        """The per-event function for this stream, chosen once (the hot path is one call)."""
        ctx: Ctx | None = ex.state.get(_STATE)
        if ctx is None or ex.dialect is None:
            return _identity
        st = ex.state[_STREAM_OBJ] = _STREAMS[ex.dialect.name](ctx)
        if ex.dialect.name in _READS_USAGE:
            st.usage = (ex.dialect.usage, [])
        check = ctx.stream_check
        if check is None:
            return st.on_event

        def with_leak_check(ev: Event) -> list[Event]:
            out: list[Event] = st.on_event(ev)
            if check.finding is not None:
                self._leak(ex, ctx, stream=True)
            return out

        return with_leak_check

    def on_end(self, ex: Exchange) -> list[Event]:
        st = ex.state.get(_STREAM_OBJ)
        if st is None:
            return []
        out: list[Event] = st.on_end()
        ctx: Ctx = st.ctx
        if ctx.stream_check is not None and ctx.stream_check.close() is not None:
            self._leak(ex, ctx, stream=True)
        self._summary(ex, ctx)
        return out

    # -- bodies ---------------------------------------------------------------------------------------

    def on_response(self, ex: Exchange, obj: Any) -> Any:
        ctx: Ctx | None = ex.state.get(_STATE)
        if ctx is None or ex.dialect is None:
            return obj
        if _BODIES[ex.dialect.name](obj, ctx):
            ex.response_changed = True
        if ctx.stream_check is not None and ctx.stream_check.close() is not None:
            self._leak(ex, ctx, stream=False)
        self._summary(ex, ctx)
        return obj

    # -- helpers --------------------------------------------------------------------------------------

    def _leak(self, ex: Exchange, ctx: Ctx, *, stream: bool) -> None:
        finding = ctx.stream_check.finding if ctx.stream_check is not None else None
        if finding is None or "reasoning_leak" in ex.tags:
            return
        ex.tags.add("reasoning_leak")
        action = self.spec.leak.action
        ex.decisions.append(
            {"filter": self.name, "leak": finding.encoding, "words": finding.words, "action": action}
        )
        log.warning(
            "reasoning copied into the answer (%s, %s) for %s (%s)",
            finding.encoding,
            action,
            ex.account_id,
            ex.request_id,
        )
        if action == "withhold":
            if stream:
                raise RedactionFailed("answer withheld: it reproduces hidden reasoning")
            raise ProxyError(
                errors.POLICY_BLOCKED, "The answer was withheld because it reproduces hidden reasoning."
            )

    def _summary(self, ex: Exchange, ctx: Ctx) -> None:
        if ctx.reasoning_chars or ctx.sealed:
            ex.decisions.append(
                {"filter": self.name, "reasoning_chars": ctx.reasoning_chars, "sealed": ctx.sealed}
            )
