"""GET /metrics (SPEC §4): Prometheus text with request latencies, sync runs and rows."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from app.web.metrics import KNOWN_METHODS
from tests.support.helpers import patient_record, payment_record, post_snapshot, sync

RANDOM_REQUESTS = 200


def sample(name: str, **labels: str) -> float:
    """The current value of one series (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(client: FlaskClient) -> dict[str, float]:
    """GET /metrics, parsed: {'name{label="v",...}': value}."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    series = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            series[f"{s.name}{{{labels}}}"] = s.value
    return series


def route_template(app: Flask, path: str) -> str:
    """The template of the route that serves GET ``path``, e.g. '/patients/<...>'."""
    rule, _ = app.url_map.bind("localhost").match(path, "GET", return_rule=True)
    return rule.rule


def latency_series(client: FlaskClient) -> set[str]:
    """The request-latency series /metrics exposes now, one key per label set."""
    return {key for key in scrape(client) if key.startswith("http_request_duration_seconds_count{")}


def test_request_latency_is_counted_by_route_method_and_status(
    app: Flask, client: FlaskClient
) -> None:
    template = route_template(app, "/patients/p1")
    ok = {"endpoint": template, "method": "GET", "status": "404"}
    before = sample("http_request_duration_seconds_count", **ok)
    client.get("/patients/p1")
    client.get("/patients/p2")
    series = scrape(client)
    key = f'http_request_duration_seconds_count{{endpoint="{template}",method="GET",status="404"}}'
    assert series[key] == before + 2


def test_unmatched_paths_share_one_series(client: FlaskClient) -> None:
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    before = sample("http_request_duration_seconds_count", **labels)
    client.get("/no/such/path-1")
    client.get("/no/such/path-2")
    assert sample("http_request_duration_seconds_count", **labels) == before + 2
    assert "path-1" not in client.get("/metrics").get_data(as_text=True)


def test_an_applied_sync_counts_its_run_rows_and_duration(client: FlaskClient) -> None:
    runs = sample("sync_runs_total", entity="patients", outcome="applied")
    created = sample("sync_rows_total", entity="patients", outcome="created")
    rejected = sample("sync_rows_total", entity="patients", outcome="rejected")
    timed = sample("sync_duration_seconds_count", entity="patients", outcome="applied")
    sync(
        client,
        "patients",
        [patient_record("p1"), patient_record("p2"), patient_record("p3", dateOfBirth="soon")],
    )
    assert sample("sync_runs_total", entity="patients", outcome="applied") == runs + 1
    assert sample("sync_rows_total", entity="patients", outcome="created") == created + 2
    assert sample("sync_rows_total", entity="patients", outcome="rejected") == rejected + 1
    assert sample("sync_duration_seconds_count", entity="patients", outcome="applied") == timed + 1


def test_a_dry_run_counts_its_run_but_no_rows(client: FlaskClient) -> None:
    runs = sample("sync_runs_total", entity="payments", outcome="dry_run")
    rejected = sample("sync_rows_total", entity="payments", outcome="rejected")
    sync(client, "payments", [payment_record("m1", "nobody")], query="?dry_run=true")
    assert sample("sync_runs_total", entity="payments", outcome="dry_run") == runs + 1
    assert sample("sync_rows_total", entity="payments", outcome="rejected") == rejected


@pytest.mark.parametrize("body", [b"[{", b"{}"], ids=["not-json", "not-an-array"])
def test_a_sync_with_an_unusable_body_counts_as_invalid(client: FlaskClient, body: bytes) -> None:
    before = sample("sync_runs_total", entity="patients", outcome="invalid")
    assert post_snapshot(client, "patients", body).status_code in (400, 422)
    assert sample("sync_runs_total", entity="patients", outcome="invalid") == before + 1


def test_a_refused_sync_counts_as_refused(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(f"p{n}") for n in range(120)])
    before = sample("sync_runs_total", entity="patients", outcome="refused")
    assert post_snapshot(client, "patients", [patient_record("p1")]).status_code == 409
    assert sample("sync_runs_total", entity="patients", outcome="refused") == before + 1


def test_metrics_carry_no_patient_data(client: FlaskClient) -> None:
    sync(
        client,
        "patients",
        [patient_record("ext-Secret-1", firstName="Zebediah", dateOfBirth="1911-11-11")],
    )
    sync(client, "payments", [payment_record("pay-Secret-2", "ext-Secret-1", Decimal("12345.67"))])
    client.get("/patients/ext-Secret-1")
    text = client.get("/metrics").get_data(as_text=True)
    for value in ("Zebediah", "1911-11-11", "12345.67", "ext-Secret-1", "pay-Secret-2"):
        assert value not in text


class TestUnauthenticatedClients:
    """Auth on, as in production: what a client without a token sends must not grow /metrics."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"API_READ_TOKENS": ("metrics-read-token-0123456789",)}

    def test_request_latency_series_stay_bounded_under_random_methods_and_paths(
        self, client: FlaskClient
    ) -> None:
        before = latency_series(client)
        for _ in range(RANDOM_REQUESTS):
            client.open(f"/probe/{uuid.uuid4().hex}", method=uuid.uuid4().hex[:10].upper())
        # Every request above lands in one (unmatched, other, status) series per status
        # (401, then 429 once the auth-failure budget is spent); the scrape adds its own.
        assert len(latency_series(client) - before) <= 3

    def test_request_latency_labels_an_unknown_method_as_other(self, client: FlaskClient) -> None:
        labels = {"endpoint": "unmatched", "method": "other", "status": "401"}
        before = sample("http_request_duration_seconds_count", **labels)
        assert client.open("/patients", method="BREW").status_code == 401
        assert sample("http_request_duration_seconds_count", **labels) == before + 1
        assert 'method="BREW"' not in client.get("/metrics").get_data(as_text=True)

    @pytest.mark.parametrize("method", sorted(KNOWN_METHODS))
    def test_request_latency_labels_a_known_method_by_name(
        self, client: FlaskClient, method: str
    ) -> None:
        labels = {"endpoint": "unmatched", "method": method, "status": "401"}
        before = sample("http_request_duration_seconds_count", **labels)
        assert client.open("/no/such/path", method=method).status_code == 401
        assert sample("http_request_duration_seconds_count", **labels) == before + 1
