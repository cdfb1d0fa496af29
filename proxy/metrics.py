"""Prometheus metrics of the proxy itself (each filter registers its own on the same registry).

The per-request metrics are kept as plain Python numbers and rendered by a collector at scrape time:
``prometheus_client``'s child objects cost about a microsecond per ``inc``/``observe`` and a request
touches a dozen of them, which is a measurable share of the proxy's own overhead. Scrapes are rare;
requests are not.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

disable_created_metrics()  # the *_created series double the exposition for no use here

# Latency buckets from 100 µs to 2 min: proxy overhead lives at the low end, model latency at the top.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                   2.5, 5, 10, 30, 60, 120)


class Histogram:
    """A fixed-bucket histogram: ``observe`` is one bisect and two additions."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def buckets(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return out


class RouteMetrics:
    """Latencies and event counts of one route."""

    __slots__ = ("events", "overhead", "ttfb", "upstream_latency")

    def __init__(self) -> None:
        self.ttfb = Histogram()
        self.overhead = Histogram()
        self.upstream_latency = Histogram()
        self.events = 0

    def observe(self, ttfb: float | None, overhead: float, upstream: float | None, events: int) -> None:
        """One forwarded request (``None``: that moment was not reached). One call instead of three
        ``Histogram.observe`` calls: this runs for every request."""
        if ttfb is not None:
            h = self.ttfb
            h.counts[bisect_left(h.bounds, ttfb)] += 1
            h.total += ttfb
        h = self.overhead
        h.counts[bisect_left(h.bounds, overhead)] += 1
        h.total += overhead
        if upstream is not None:
            h = self.upstream_latency
            h.counts[bisect_left(h.bounds, upstream)] += 1
            h.total += upstream
        self.events += events


class ProxyMetrics:
    """Request, latency, in-flight and byte metrics; one instance per app, on the app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests: dict[tuple[str, str, int, str], int] = {}  # (dialect, route, status, tier) -> n
        self.routes: dict[str, RouteMetrics] = {}
        self.local_errors: dict[str, int] = {}
        self.in_flight = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.registry.register(_ProxyCollector(self))
        r = self.registry
        # (ok, failed) reloads of the accounts file, read at scrape time from the watcher.
        self.accounts_reloads: Any = lambda: (0, 0)
        # Metric families other parts add (e.g. the rules step), each a no-argument function called at scrape.
        self.sources: list[Callable[[], Iterable[Any]]] = []
        # Rare events keep prometheus_client's own objects.
        self.accounts_loaded = Gauge(
            "distillguard_accounts_loaded", "Accounts in the current accounts store.", registry=r,
        )
        self.draining = Gauge("distillguard_draining", "1 while shutting down.", registry=r)

    def route(self, name: str) -> RouteMetrics:
        rm = self.routes.get(name)
        if rm is None:
            rm = self.routes[name] = RouteMetrics()
        return rm

    def count_request(self, dialect: str, route: str, status: int, tier: str) -> None:
        key = (dialect, route, status, tier)
        self.requests[key] = self.requests.get(key, 0) + 1

    def count_error(self, code: str) -> None:
        self.local_errors[code] = self.local_errors.get(code, 0) + 1

    def add_source(self, families: Callable[[], Iterable[Any]]) -> None:
        """Render ``families()`` (Prometheus metric families) with this app's metrics at every scrape."""
        self.sources.append(families)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _ProxyCollector(Collector):
    def __init__(self, m: ProxyMetrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Any]:
        m = self.m
        req = CounterMetricFamily(
            "distillguard_requests", "Requests answered, by dialect, route, status and account tier.",
            labels=["dialect", "route", "status", "tier"],
        )
        for (dialect, route, status, tier), n in sorted(m.requests.items()):
            req.add_metric([dialect, route, str(status), tier], n)
        yield req
        errs = CounterMetricFamily(
            "distillguard_local_errors", "Errors answered by the proxy itself, by stable code.", labels=["code"]
        )
        for code, n in sorted(m.local_errors.items()):
            errs.add_metric([code], n)
        yield errs
        yield GaugeMetricFamily("distillguard_in_flight_requests", "Requests being handled.", value=m.in_flight)
        b = CounterMetricFamily("distillguard_bytes", "Body bytes relayed.", labels=["direction"])
        b.add_metric(["in"], m.bytes_in)
        b.add_metric(["out"], m.bytes_out)
        yield b
        helps = {
            "ttfb": ("distillguard_time_to_first_byte_seconds",
                     "From request arrival to the first body byte sent."),
            "overhead": ("distillguard_proxy_overhead_seconds",
                         "Time spent in the proxy before the request left for the upstream (identity, "
                         "rules, shaping decisions, body rewrite; not queueing delays imposed on purpose)."),
            "upstream_latency": ("distillguard_upstream_latency_seconds",
                                 "From sending upstream to its response headers."),
        }
        for attr, (name, doc) in helps.items():
            fam = HistogramMetricFamily(name, doc, labels=["route"])
            for route, rm in sorted(m.routes.items()):
                h: Histogram = getattr(rm, attr)
                fam.add_metric([route], h.buckets(), h.total)
            yield fam
        ev = CounterMetricFamily("distillguard_stream_events", "Stream events relayed to clients.",
                                 labels=["route"])
        for route, rm in sorted(m.routes.items()):
            ev.add_metric([route], rm.events)
        yield ev
        ok, failed = m.accounts_reloads()
        rel = CounterMetricFamily("distillguard_accounts_reloads", "Accounts file reloads.", labels=["result"])
        rel.add_metric(["ok"], ok)
        rel.add_metric(["failed"], failed)
        yield rel
        for source in m.sources:
            yield from source()
