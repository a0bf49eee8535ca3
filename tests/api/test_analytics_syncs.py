"""GET /analytics/syncs (SPEC §3): every recorded sync, oldest first, with its state, duration
and counts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.helpers import (
    error_code,
    get_all,
    next_link,
    patient_record,
    payment_record,
    sync,
)
from tests.support.sync_queue import queue_sync, run_worker

COUNTS = ("received", "created", "updated", "restored", "unchanged", "rejected", "deleted")


def four_syncs(client: FlaskClient) -> list[dict[str, Any]]:
    """Patients, payments with a rejection, a dry run, and patients again; their reports."""
    return [
        sync(client, "patients", [patient_record("p1"), patient_record("p2")]),
        sync(client, "payments", [payment_record("m1", "p1"), payment_record("m2", "ghost")]),
        sync(client, "patients", [patient_record("p1")], query="?dry_run=true"),
        sync(client, "patients", [patient_record("p1", lastName="Byron")]),
    ]


def expected_item(report: dict[str, Any]) -> dict[str, Any]:
    """What the listing says of the sync ``report`` describes."""
    started = datetime.fromisoformat(report["startedAt"])
    finished = datetime.fromisoformat(report["finishedAt"])
    return {
        "syncId": report["syncId"],
        "entity": report["entity"],
        "state": "applied",
        "dryRun": report["dryRun"],
        "startedAt": report["startedAt"],
        "durationSeconds": Decimal(str((finished - started).total_seconds())),
        **{name: report[name] for name in COUNTS},
    }


def test_sync_trend_is_empty_before_any_sync(client: FlaskClient) -> None:
    response = client.get("/analytics/syncs")
    assert response.status_code == 200
    assert response.get_json() == []


def test_sync_trend_lists_every_sync_oldest_first_with_state_duration_and_counts(
    client: FlaskClient,
) -> None:
    reports = four_syncs(client)
    assert client.get("/analytics/syncs").get_json() == [expected_item(r) for r in reports]


def test_sync_trend_duration_is_finished_minus_started_of_the_stored_report(
    client: FlaskClient,
) -> None:
    reports = four_syncs(client)
    for item in client.get("/analytics/syncs").get_json():
        stored = client.get(f"/syncs/{item['syncId']}").get_json()
        assert item["durationSeconds"] == expected_item(stored)["durationSeconds"]
        assert item["durationSeconds"] >= 0
    assert len(reports) == 4


def test_sync_trend_pages_follow_link_oldest_first(client: FlaskClient) -> None:
    reports = four_syncs(client)
    first = client.get("/analytics/syncs?limit=3")
    assert [item["syncId"] for item in first.get_json()] == [r["syncId"] for r in reports[:3]]
    assert next_link(first) is not None
    listed = get_all(client, "/analytics/syncs?limit=1")
    assert [item["syncId"] for item in listed] == [r["syncId"] for r in reports]


def test_sync_trend_after_lists_the_later_syncs(client: FlaskClient) -> None:
    reports = four_syncs(client)
    listed = get_all(client, f"/analytics/syncs?after={reports[1]['syncId']}&limit=1")
    assert [item["syncId"] for item in listed] == [r["syncId"] for r in reports[2:]]
    assert client.get(f"/analytics/syncs?after={reports[-1]['syncId']}").get_json() == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=1.5", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=not-a-cursor", "cursor"),
    ],
)
def test_sync_trend_rejects_a_bad_parameter_naming_it(
    client: FlaskClient, query: str, parameter: str
) -> None:
    four_syncs(client)
    response = client.get(f"/analytics/syncs?{query}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert parameter in str(response.get_json()["error"])


@pytest.mark.postgresql_only
def test_sync_trend_lists_syncs_in_acceptance_order_whenever_they_finish(
    queue_app: Flask,
) -> None:
    client = queue_app.test_client()
    first = sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])
    queued = queue_sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])
    later = sync(client, "payments", [payment_record("m1", "p1")])
    run_worker(queue_app)
    items = client.get("/analytics/syncs").get_json()
    assert [item["syncId"] for item in items] == [r["syncId"] for r in (first, queued, later)]
    assert items[1]["state"] == "applied"
    assert items[1]["unchanged"] == 5
    after_first = client.get(f"/analytics/syncs?after={first['syncId']}").get_json()
    assert [item["syncId"] for item in after_first] == [queued["syncId"], later["syncId"]]
