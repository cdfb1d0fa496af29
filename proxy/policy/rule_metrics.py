"""Prometheus metrics of the rules step, kept as plain numbers and rendered at scrape time.

The judge counts into a ``RuleMetrics`` on the request path (a dict increment per action taken and
one histogram observation per request); hits and evaluation errors per rule are already counted by
the engine. ``families(judge)`` turns all of it into metric families when ``/metrics`` is scraped
(``ProxyMetrics.add_source``), so a request never touches a ``prometheus_client`` object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from proxy.metrics import Histogram

# Rule evaluation (features + every rule) sits at tens of microseconds; a slow outlier at milliseconds.
EVAL_BUCKETS = (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class RuleMetrics:
    """Counters the judge fills per request."""

    __slots__ = ("actions", "eval_failures", "eval_time")

    def __init__(self) -> None:
        self.actions: dict[tuple[str, str], int] = {}  # (kind, mode) -> n
        self.eval_time = Histogram(EVAL_BUCKETS)
        self.eval_failures = 0  # exceptions out of feature computation or evaluation (fail open/closed)

    def count_actions(self, actions: list[dict[str, Any]]) -> None:
        acts = self.actions
        for a in actions:
            key = (str(a.get("do", "")), "shadow" if a.get("shadow") else "enforce")
            acts[key] = acts.get(key, 0) + 1


def families(judge: Any) -> Iterator[Any]:
    """Metric families for one ``JudgeFilter`` (its engine, rule set, reloads and ``metrics``)."""
    m: RuleMetrics = judge.metrics
    engine = judge.engine
    rs = engine.ruleset
    hits = CounterMetricFamily(
        "distillguard_rule_hits", "Rule matches, by rule id and mode (enforce or shadow).", labels=["rule", "mode"]
    )
    for rid, (n, shadow_n) in sorted(engine.hit_counts.items()):
        if n:
            hits.add_metric([rid, "enforce"], n)
        if shadow_n:
            hits.add_metric([rid, "shadow"], shadow_n)
    yield hits
    acts = CounterMetricFamily(
        "distillguard_rule_actions",
        "Actions taken by rules (shadow: would have been taken), by kind and mode.",
        labels=["kind", "mode"],
    )
    for (kind, mode), n in sorted(m.actions.items()):
        acts.add_metric([kind, mode], n)
    yield acts
    errs = CounterMetricFamily(
        "distillguard_rule_errors", "Rule evaluation errors (the rule read as not matching), by rule id.",
        labels=["rule"],
    )
    for rid, n in sorted(engine.errors.items()):
        errs.add_metric([rid], n)
    yield errs
    yield CounterMetricFamily(
        "distillguard_rule_evaluation_failures",
        "Requests whose rule evaluation raised (the judge failed open, or closed when configured).",
        value=m.eval_failures,
    )
    h = HistogramMetricFamily(
        "distillguard_rule_evaluation_seconds",
        "Wall time of the rules step per request: features plus every request-phase rule.",
    )
    h.add_metric([], m.eval_time.buckets(), m.eval_time.total)
    yield h
    rel = CounterMetricFamily("distillguard_rules_reloads", "Rule set reloads.", labels=["result"])
    rel.add_metric(["ok"], judge.reloads_ok)
    rel.add_metric(["failed"], judge.reloads_failed)
    yield rel
    loaded = GaugeMetricFamily("distillguard_rules_loaded", "Rules in the live rule set, by mode.", labels=["mode"])
    by_mode = {"enforce": 0, "shadow": 0, "off": 0}
    for r in rs.rules:
        by_mode[r.mode] = by_mode.get(r.mode, 0) + 1
    for mode, n in by_mode.items():
        loaded.add_metric([mode], n)
    yield loaded
    clusters = judge.clusters
    yield GaugeMetricFamily(
        "distillguard_template_clusters", "Prompt-template clusters currently tracked.", value=len(clusters.clusters)
    )
    yield GaugeMetricFamily(
        "distillguard_templates_tracked", "Exact prompt templates mapped to a cluster.", value=len(clusters.exact)
    )
    yield CounterMetricFamily(
        "distillguard_template_clustering_cpu_seconds",
        "CPU time spent clustering templates after requests (off the request path).",
        value=clusters.cpu_seconds,
    )
