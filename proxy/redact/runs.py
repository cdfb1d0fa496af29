"""Runs of events under one ``event:`` name taken in bulk, in C (``reads.responses_read``).

An upstream writing back to back hands the relay hundreds of events in one read, most of them deltas of
one kind one after the other (a Responses stream's ``response.reasoning_summary_text.delta`` events, then
its ``response.output_text.delta`` ones): two lines each, ``event: <name>`` and a ``data: `` line, with
this name. Where the walk decides on the name alone (an event dropped or relayed as it came),
``named_run`` finds where such a run ends with byte operations over the whole run (``rfind``, ``split``,
``join``, one ``in``), none per event in Python.

Why the events it takes are the ones the per-event walk takes: a window of the read is cut at each
separator followed by the head (the ``event:`` line and ``data: ``); the pieces between are the events'
data lines. One that holds no line break is, with the head before it and the separator after it, one
whole event of exactly those two lines (the head holds one line break, inside it, and no separator, so the
pieces are the framer's own blocks): what the walk checks per block. The run stops before the first
piece with a line break, and the event after the last separator + head of a window is never taken (the
per-event walk, or the next window, reads it). Windows start at ``WINDOW`` bytes (or two events) and
double while the run goes on: each byte of a long run is read about twice in C, and a run that breaks
early costs at most a window. (Chat Completions and Anthropic runs, whose events need their string body
checked too, are walked per event: per-piece checks in bulk cost as much as the walk's own.)
"""

from __future__ import annotations

WINDOW = 2048


def whole_events(data: bytes, sep: bytes) -> bool:
    """Whether ``data`` is complete events only, each ending with ``sep`` as the framer cuts them (what
    ``data.split(sep)`` ending with an empty piece says): it ends with ``sep`` and, for LF, with an even
    number of line breaks (the separators are taken from the left: an odd one out would be left over)."""
    if not data.endswith(sep):
        return False
    if sep == b"\n\n" and data.endswith(b"\n\n\n"):
        return (len(data) - len(data.rstrip(b"\n"))) % 2 == 0
    return True


def named_run(data: bytes, start: int, head: bytes, sep: bytes) -> tuple[int, int]:
    """Where the run of events under one ``head`` (an ``event:`` line and ``data: ``, see
    ``reads.responses_read``) that starts at ``data[start]`` ends: the start of the first event not taken,
    ``start`` when none is; and how many events it took. An event is taken when its data line holds no
    other line break (then it is one framer block of exactly those two lines) and another event under the
    head follows it."""
    link = sep + head
    lh = len(head)
    pos = start
    taken = 0
    w = max(WINDOW, 2 * (data.find(sep, start) + len(sep) - start) + lh)
    while True:
        lim = pos + w
        e = data.rfind(link, pos, lim)
        if e < 0:
            return pos, taken
        lines = data[pos + lh : e].split(link)  # each event's data after "data: "
        if 10 in b"".join(lines):
            for line in lines:
                if 10 in line:
                    break
                pos += lh + len(line) + len(sep)
                taken += 1
            return pos, taken
        pos = e + len(sep)
        taken += len(lines)
        if lim >= len(data):
            return pos, taken
        w *= 2
