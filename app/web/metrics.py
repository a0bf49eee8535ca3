"""Prometheus metrics: request latency, sync runs, rows by outcome, sync duration, event relay,
replicas.

Labels carry route templates, known methods, statuses, entities and outcomes
only, never patient data. Every label comes from a closed set: nothing a
client sends (a probed path, a made-up method) can add a series, so neither
/metrics nor a worker's memory grows with what strangers send (SPEC §4).

Under gunicorn each worker is a process: with PROMETHEUS_MULTIPROC_DIR set
(gunicorn.conf.py sets it) the values live in files there and /metrics adds
up every worker's. The event relay's figures are not counted here: they are
read from the database at scrape time (app/events/status.py), so any worker
shows them, whether or not the relay runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

# The methods labelled by name; any other is "other" (a client can invent methods).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ENDPOINT = "unmatched"

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
SYNC_RUNS = Counter(
    "sync_runs_total",
    "Snapshot syncs received, by entity and outcome (applied, dry_run, refused, invalid, failed).",
    ["entity", "outcome"],
)
SYNC_ROWS = Counter(
    "sync_rows_total",
    "Records of applied syncs, by entity and outcome "
    "(created, updated, restored, unchanged, rejected, deleted).",
    ["entity", "outcome"],
)
SYNC_DURATION = Histogram(
    "sync_duration_seconds",
    "Time from the start of a sync request to its report.",
    ["entity", "outcome"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
DATABASE_READS = Counter(
    "database_reads_total",
    "Read requests (GET) by the database that answered them (primary or replica); "
    "only with DATABASE_REPLICA_URLS.",
    ["role"],
)


def init_metrics(app: Flask) -> None:
    """Time every request; call after init_request_log, which starts the clock."""

    @app.after_request
    def observe_request(response: Response) -> Response:
        observe_latency(
            endpoint_label(),
            request.method,
            response.status_code,
            g.get("started", time.perf_counter()),
        )
        return response


def observe_latency(endpoint: str, method: str, status: int, started: float) -> None:
    """Time one request to ``endpoint`` (a route template) since ``started`` (perf_counter)."""
    REQUEST_LATENCY.labels(endpoint, method_label(method), str(status)).observe(
        time.perf_counter() - started
    )


def endpoint_label() -> str:
    """The current request's route template, or one value for every path that matched none."""
    # Templates, not paths: one series per route, whatever the ids or probes.
    return request.url_rule.rule if request.url_rule is not None else UNMATCHED_ENDPOINT


def method_label(method: str) -> str:
    """``method`` when it is a known HTTP method, else one value for all the others."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def observe_sync(
    entity: str, outcome: str, seconds: float, rows: Mapping[str, int] | None = None
) -> None:
    """Count one sync request and, for an applied one, its ``rows`` by outcome."""
    SYNC_RUNS.labels(entity, outcome).inc()
    SYNC_DURATION.labels(entity, outcome).observe(seconds)
    for name, count in (rows or {}).items():
        SYNC_ROWS.labels(entity, name).inc(count)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, summed over the worker processes if several."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class _RelayFigures(Collector):
    """The event relay's lag and confirmed total, as read at this scrape."""

    def __init__(self, lag: int, published_total: int, publish_rate: float) -> None:
        self._lag = lag
        self._published_total = published_total
        self._publish_rate = publish_rate

    def collect(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        return [
            GaugeMetricFamily(
                "events_relay_lag",
                "Change events committed to the database but not yet confirmed by the broker.",
                value=self._lag,
            ),
            CounterMetricFamily(
                "events_published",
                "Change events the broker confirmed (rate() is the relay's publish rate).",
                value=self._published_total,
            ),
            GaugeMetricFamily(
                "events_relay_publish_rate",
                "Events per second the relay's "
                "latest window was confirmed at (0 when it has been idle "
                "for 15 s).",
                value=self._publish_rate,
            ),
        ]


def relay_exposition(lag: int, published_total: int, publish_rate: float) -> bytes:
    """The relay's three series in Prometheus text format, to follow ``exposition()``'s."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RelayFigures(lag, published_total, publish_rate))
    return generate_latest(registry)


class _ReplicaFigures(Collector):
    """Each replica's lag and whether it answers, as this process last checked them."""

    def __init__(self, replicas: list[tuple[int, str, float | None, bool]]) -> None:
        self._replicas = replicas

    def collect(self) -> list[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "database_replica_lag_seconds",
            "How far each replica is behind the primary (NaN when it cannot be measured: "
            "the replica or the primary does not answer).",
            labels=["replica", "host"],
        )
        up = GaugeMetricFamily(
            "database_replica_up",
            "Whether each replica answered its last check (1) or not (0).",
            labels=["replica", "host"],
        )
        for index, host, seconds, answers in self._replicas:
            lag.add_metric([str(index), host], float("nan") if seconds is None else seconds)
            up.add_metric([str(index), host], 1.0 if answers else 0.0)
        return [lag, up]


def replica_exposition(replicas: list[tuple[int, str, float | None, bool]]) -> bytes:
    """The replicas' series (index, host: from DATABASE_REPLICA_URLS, a closed set)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ReplicaFigures(replicas))
    return generate_latest(registry)


class _QueueFigures(Collector):
    """The asynchronous sync queue, as read at this scrape (SPEC §2)."""

    def __init__(self, depth: int, oldest_age: float) -> None:
        self._depth = depth
        self._oldest_age = oldest_age

    def collect(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "sync_queue_depth",
                "Asynchronous syncs accepted and not finished yet (queued or running).",
                value=self._depth,
            ),
            GaugeMetricFamily(
                "sync_queue_oldest_age_seconds",
                "Seconds since the oldest unfinished asynchronous sync was accepted (0 if none).",
                value=self._oldest_age,
            ),
        ]


def queue_exposition(depth: int, oldest_age: float) -> bytes:
    """The sync queue's two series in Prometheus text format, to follow ``exposition()``'s."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_QueueFigures(depth, oldest_age))
    return generate_latest(registry)
