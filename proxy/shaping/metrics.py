"""Prometheus metrics for shaping, on a registry the app passes in (never the global one)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric

DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class _HotCounters:
    """Admitted/rejected per (limit, mode) kept as plain ints on the hot path, read at scrape time
    (a ``prometheus_client.Counter.inc`` takes a lock: ~1 µs a call, several per request)."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], list[int]] = {}
        # admissions counted once per request by the set of limits that admitted it: (counts by bit
        # mask, the (limit, mode) of each bit), expanded at scrape time
        self.masks: list[tuple[dict[int, int], list[tuple[str, str]]]] = []
        # admissions with one fixed mask, counted in a one-int cell (``proxy.shaping.fast``)
        self.mask_cells: list[tuple[int, list[int], list[tuple[str, str]]]] = []

    def cell(self, limit: str, mode: str) -> list[int]:
        return self.cells.setdefault((limit, mode), [0, 0])

    def by_mask(self, bits: list[tuple[str, str]]) -> dict[int, int]:
        """A dict to count admissions in by bit mask over ``bits`` (the (limit, mode) of bit i)."""
        counts: dict[int, int] = {}
        self.masks.append((counts, bits))
        for limit, mode in bits:
            self.cell(limit, mode)
        return counts

    def mask_cell(self, mask: int, bits: list[tuple[str, str]]) -> list[int]:
        """A one-int cell counting admissions by the limits of ``mask`` over ``bits`` (see ``by_mask``)."""
        cell = [0]
        self.mask_cells.append((mask, cell, bits))
        for limit, mode in bits:
            self.cell(limit, mode)
        return cell

    def totals(self) -> dict[tuple[str, str], list[int]]:
        out = {k: list(v) for k, v in list(self.cells.items())}
        masks = [(counts, bits) for counts, bits in self.masks]
        masks += [({mask: cell[0]}, bits) for mask, cell, bits in self.mask_cells]
        for counts, bits in masks:
            for mask, n in list(counts.items()):
                for i, key in enumerate(bits):
                    if mask >> i & 1:
                        out[key][0] += n
        return out

    def collect(self) -> Iterator[Metric]:
        admitted = CounterMetricFamily(
            "distillguard_shape_admitted", "Requests a limit admitted (at once or after a delay).",
            labels=["limit", "mode"])
        rejected = CounterMetricFamily(
            "distillguard_shape_rejected", "Requests a limit rejected (mode=shadow: would have).",
            labels=["limit", "mode"])
        for (limit, mode), (a, r) in self.totals().items():
            admitted.add_metric([limit, mode], a)
            rejected.add_metric([limit, mode], r)
        yield admitted
        yield rejected


class ShapeMetrics:
    """``distillguard_shape_*`` series, labelled by limit name (and ``mode`` for shadow counting)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.registry = reg
        self.hot = _HotCounters()
        reg.register(self.hot)
        self.delayed = Counter(
            "distillguard_shape_delayed", "Requests a limit made wait before admitting them.",
            ["limit"], registry=reg)
        self.delay = Histogram(
            "distillguard_shape_delay_seconds", "Time requests waited in a limit's queue.",
            ["limit"], buckets=DELAY_BUCKETS, registry=reg)
        self.queue_depth = Gauge(
            "distillguard_shape_queue_depth", "Requests waiting in a limit's delay queues.",
            ["limit"], registry=reg)
        self.evictions = Counter(
            "distillguard_state_evictions", "State keys evicted by the LRU cap before going idle.",
            registry=reg)
        self.cut = Counter(
            "distillguard_shape_stream_cut", "Streams ended mid-way for exceeding a token budget.",
            ["limit"], registry=reg)
        self.paced = Counter(
            "distillguard_shape_paced_seconds", "Seconds streams were held back by output pacing.",
            registry=reg)
        self.state_errors = Counter(
            "distillguard_shape_state_errors", "State backend failures (shaping failed open).",
            registry=reg)

    def on_evict(self, n: int) -> None:
        self.evictions.inc(n)
