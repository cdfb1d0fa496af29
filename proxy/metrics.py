"""Prometheus metrics of the proxy itself (each filter registers its own on the same registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

disable_created_metrics()  # the *_created series double the exposition for no use here

# Latency buckets from 100 µs to 2 min: proxy overhead lives at the low end, model latency at the top.
_LATENCY = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
            10, 30, 60, 120)


class ProxyMetrics:
    """Request, latency, in-flight and byte metrics; one instance per app, on the app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "distillguard_requests", "Requests answered, by route, dialect, status and account tier.",
            ["route", "dialect", "status", "tier"], registry=r,
        )
        self.upstream_latency = Histogram(
            "distillguard_upstream_latency_seconds", "From sending upstream to its response headers.",
            ["route"], buckets=_LATENCY, registry=r,
        )
        self.ttfb = Histogram(
            "distillguard_time_to_first_byte_seconds", "From request arrival to the first body byte sent.",
            ["route"], buckets=_LATENCY, registry=r,
        )
        self.overhead = Histogram(
            "distillguard_proxy_overhead_seconds",
            "Time spent in the proxy before the request left for the upstream (identity, rules, "
            "shaping decisions, body rewrite; not queueing delays imposed on purpose).",
            ["route"], buckets=_LATENCY, registry=r,
        )
        self.in_flight = Gauge("distillguard_in_flight_requests", "Requests being handled.", registry=r)
        self.bytes = Counter(
            "distillguard_bytes", "Body bytes relayed.", ["direction"], registry=r,
        )
        self.events = Counter(
            "distillguard_stream_events", "Stream events relayed to clients.", ["route"], registry=r,
        )
        self.local_errors = Counter(
            "distillguard_local_errors", "Errors answered by the proxy itself, by stable code.",
            ["code"], registry=r,
        )
        self.accounts_reloads = Counter(
            "distillguard_accounts_reloads", "Accounts file reloads.", ["result"], registry=r,
        )
        self.accounts_loaded = Gauge(
            "distillguard_accounts_loaded", "Accounts in the current accounts store.", registry=r,
        )
        self.draining = Gauge("distillguard_draining", "1 while shutting down.", registry=r)
        self._bytes_in = self.bytes.labels("in")
        self._bytes_out = self.bytes.labels("out")

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
