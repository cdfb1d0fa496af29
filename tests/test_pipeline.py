"""The filter chain: hook order, short-circuiting replies, stream stages and flushing, on_done always."""

from __future__ import annotations

import pytest

from proxy.errors import Reply
from proxy.exchange import Event, Exchange
from proxy.pipeline import Chain, Filter


class Recorder(Filter):
    def __init__(self, name: str, log: list[str], reply_on_request: bool = False) -> None:
        self.name = name
        self.log = log
        self.reply_on_request = reply_on_request

    async def on_request(self, ex: Exchange) -> Reply | None:
        self.log.append(f"req:{self.name}")
        return Reply(403, b"no") if self.reply_on_request else None

    async def on_response_headers(self, ex: Exchange) -> Reply | None:
        self.log.append(f"hdr:{self.name}")
        return None

    async def on_done(self, ex: Exchange) -> None:
        self.log.append(f"done:{self.name}")


async def test_request_hooks_in_order_response_hooks_reversed():
    log: list[str] = []
    chain = Chain([Recorder("a", log), Recorder("b", log), Recorder("c", log)])
    ex = Exchange()
    assert await chain.run_request(ex) is None
    await chain.run_response_headers(ex)
    await chain.run_done(ex)
    assert log == ["req:a", "req:b", "req:c", "hdr:c", "hdr:b", "hdr:a", "done:c", "done:b", "done:a"]


async def test_reply_stops_later_request_hooks():
    log: list[str] = []
    chain = Chain([Recorder("a", log), Recorder("b", log, reply_on_request=True), Recorder("c", log)])
    reply = await chain.run_request(Exchange())
    assert reply is not None and reply.status == 403
    assert log == ["req:a", "req:b"]


async def test_on_done_failure_does_not_stop_the_others(caplog):
    log: list[str] = []

    class Boom(Filter):
        async def on_done(self, ex: Exchange) -> None:
            raise RuntimeError("boom")

    chain = Chain([Recorder("a", log), Boom(), Recorder("c", log)])
    await chain.run_done(Exchange())
    assert log == ["done:c", "done:a"]
    assert "on_done hook failed" in caplog.text


def test_hooks_not_defined_are_not_called():
    class OnlyEvents(Filter):
        def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
            return [ev]

    chain = Chain([OnlyEvents(), Recorder("x", [])])
    assert len(chain.event) == 1 and len(chain.request) == 1 and chain.end == []
    assert chain.transforms_events


class Holder(Filter):
    """Holds every event until the end of the stream, tagging it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
        ex.state.setdefault(self.tag, []).append(ev)
        return []

    def on_end(self, ex: Exchange) -> list[Event]:
        held = ex.state.pop(self.tag, [])
        return [Event(e.data + self.tag.encode()) for e in held] + [Event(f"end-{self.tag}".encode())]


class Upper(Filter):
    def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
        return [Event(ev.data.upper())]


def test_flushed_events_pass_the_later_stages_in_order():
    # Chain order [outer, inner]; response order is inner first (closest to the upstream).
    chain = Chain([Upper(), Holder("h")])
    ex = Exchange()
    assert chain.run_events(ex, [Event(b"a"), Event(b"b")]) == []
    out = chain.run_end(ex)
    assert [e.data for e in out] == [b"AH", b"BH", b"END-H"]


def test_two_holders_flush_in_stream_order():
    chain = Chain([Holder("o"), Holder("i")])
    ex = Exchange()
    chain.run_events(ex, [Event(b"x")])
    out = chain.run_end(ex)
    # inner flushes x+i and end-i; both pass through outer, which holds them and then flushes.
    assert [e.data for e in out] == [b"xio", b"end-io", b"end-o"]


@pytest.mark.parametrize("n", [0, 1, 5])
def test_run_events_passes_unchanged_events_through(n):
    class Same(Filter):
        def on_event(self, ex: Exchange, ev: Event) -> list[Event]:
            return [ev]

    chain = Chain([Same(), Same()])
    evs = [Event(b"d", raw=b"data: d\n\n") for _ in range(n)]
    out = chain.run_events(Exchange(), list(evs))
    assert out == evs and all(e.raw == b"data: d\n\n" for e in out)


# ---------------------------------------------------------------- the relay's coarse deadlines


class Seer(Filter):
    """An on_event filter that wants the events of exchanges carrying its tag."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def wants_events(self, ex: Exchange) -> bool:
        if self.tag == "boom":
            raise RuntimeError("cannot tell")
        return self.tag in ex.state

    def on_event(self, ex: Exchange, event: Event) -> list[Event]:
        return [event]


class Always(Filter):
    def on_event(self, ex: Exchange, event: Event) -> list[Event]:
        return [event]


def test_events_for_asks_each_filter_and_defaults_to_looking():
    ex = Exchange()
    assert Chain([Recorder("a", [])]).events_for(ex) is False  # no on_event hook at all
    assert Chain([Seer("x"), Seer("y")]).events_for(ex) is False
    ex.state["y"] = True
    assert Chain([Seer("x"), Seer("y")]).events_for(ex) is True
    assert Chain([Seer("x"), Always()]).events_for(Exchange()) is True  # no wants_events: always
    assert Chain([Seer("boom")]).events_for(Exchange()) is True  # a failing answer means "look"


class Reader(Seer):
    """A filter that also takes whole reads."""

    def on_read(self, ex: Exchange, data: bytes, sep: bytes, framer: object) -> bytes | None:
        return data


def test_read_hook_only_for_the_one_filter_that_needs_the_events():
    ex = Exchange()
    ex.state["r"] = True
    assert Chain([Reader("r")]).read_hook_for(ex) is not None
    assert Chain([Seer("x"), Reader("r")]).read_hook_for(ex) is not None  # the other one does not need them
    assert Chain([Reader("x")]).read_hook_for(ex) is None  # nobody needs them
    ex.state["y"] = True
    assert Chain([Seer("y"), Reader("r")]).read_hook_for(ex) is None  # two need them: per event
    assert Chain([Always(), Reader("r")]).read_hook_for(ex) is None  # no wants_events: always needs them
    assert Chain([Seer("r")]).read_hook_for(ex) is None  # needs them but has no on_read
    assert Chain([Seer("boom"), Reader("r")]).read_hook_for(ex) is None  # cannot tell: per event

    class Picky(Reader):
        def wants_reads(self, ex: Exchange) -> bool:
            if "boom" in ex.state:
                raise RuntimeError("cannot tell")
            return "reads" in ex.state

    ex = Exchange()
    ex.state["r"] = True
    assert Chain([Picky("r")]).read_hook_for(ex) is None  # it declines this request's reads
    ex.state["reads"] = True
    assert Chain([Picky("r")]).read_hook_for(ex) is not None
    ex.state["boom"] = True
    assert Chain([Picky("r")]).read_hook_for(ex) is None


def test_event_cutter_cuts_at_event_boundaries_and_turns_off_on_mixed_line_endings():
    from proxy.sse import EventCutter, SSEFramer

    fr = SSEFramer()
    c = EventCutter(fr)
    assert c.cut(b"data: a") == b"" and c.held == b"data: a"
    assert c.cut(b"\n\ndata: b\n") == b"data: a\n\n" and c.sep == b"\n\n"
    whole = b"\ndata: c\n\n"
    assert c.cut(whole[:1] + whole[1:]) == b"data: b\n\ndata: c\n\n" and c.held == b""
    assert c.cut(b"data: d\r\n\r\n") == b"data: d\r\n\r\n" and c.off  # a CR in an LF stream
    c = EventCutter(fr)
    assert c.cut(b"data: a\r\n\r\ndata: b") == b"data: a\r\n\r\n" and fr.eol == b"\r\n"
    assert c.cut(b"\r\n\r\n") == b"data: b\r\n\r\n"
    c = EventCutter(SSEFramer())
    assert c.cut(b"data: a\rdata: b") == b"data: a\rdata: b" and c.off  # lone CR before any separator


async def test_timer_wheel_fires_late_by_at_most_a_slot_and_never_early():
    import asyncio

    from proxy.tasks import TimerWheel

    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop, resolution=0.02)
    fired: dict[str, float] = {}
    t0 = loop.time()
    for name, delay in (("a", 0.05), ("b", 0.12)):
        wheel.at(t0 + delay, lambda n=name: fired.setdefault(n, loop.time()))
    await asyncio.sleep(0.3)
    assert set(fired) == {"a", "b"}
    assert t0 + 0.05 <= fired["a"] < t0 + 0.05 + 0.1
    assert t0 + 0.12 <= fired["b"] < t0 + 0.12 + 0.1
    assert wheel.buckets == {}  # nothing left behind, so the wheel stops ticking
    await asyncio.sleep(0.05)
    assert wheel._tick is None


async def test_timer_wheel_cancel_forgets_at_once_and_callbacks_may_rearm():
    import asyncio

    from proxy.tasks import TimerWheel

    loop = asyncio.get_running_loop()
    wheel = TimerWheel(loop, resolution=0.02)
    calls: list[str] = []
    d = wheel.at(loop.time() + 0.04, lambda: calls.append("cancelled one"))
    assert d.pending
    d.cancel()
    assert not d.pending and wheel.buckets == {}  # the empty slot is dropped too
    d.cancel()  # idempotent

    def again() -> None:
        calls.append("first")
        wheel.at(loop.time() + 0.03, lambda: calls.append("second"))

    first = wheel.at(loop.time() + 0.03, again)
    await asyncio.sleep(0.2)
    assert calls == ["first", "second"] and not first.pending
