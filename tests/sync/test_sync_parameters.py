"""Sync endpoints take dry_run and force only: a typo never makes a preview a sync (SPEC §2)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import patient_record, post_snapshot, sync

REFUSED_QUERIES = [
    "?dryRun=true&force=true",
    "?dry-run=true&force=true",
    "?DRY_RUN=true&force=true",
    "?dry_run=true&force=true&verbose=1",
    "?dry_run=false&dry_run=true&force=true",
    "?dry_run=true&force=true&force=true",
    "?dry_run=1&force=true",
    "?dry_run=yes&force=true",
    "?dry_run=&force=true",
]


@pytest.mark.parametrize("entity", ["patients", "payments"])
@pytest.mark.parametrize("query", REFUSED_QUERIES)
def test_sync_with_unknown_repeated_or_odd_parameter_is_422_and_changes_nothing(
    client: FlaskClient, entity: str, query: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    before = client.get("/syncs").get_json()
    response = post_snapshot(client, entity, [], query=query)
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter"
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["p1"]
    assert client.get("/syncs").get_json() == before


def test_sync_refusal_names_the_unknown_parameter(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [], query="?dryRun=true")
    assert "dryRun" in response.get_json()["error"]["details"]["parameters"]


def test_sync_refusal_names_the_repeated_parameter(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [], query="?dry_run=false&dry_run=true")
    assert "dry_run" in response.get_json()["error"]["details"]["parameters"]


@pytest.mark.parametrize(
    ("query", "dry_run"),
    [
        ("", False),
        ("?dry_run=true", True),
        ("?dry_run=false", False),
        ("?dry_run=True", True),
        ("?force=false", False),
        ("?dry_run=true&force=true", True),
    ],
)
def test_sync_accepts_dry_run_and_force_as_true_or_false(
    client: FlaskClient, query: str, dry_run: bool
) -> None:
    assert sync(client, "patients", [patient_record("p1")], query=query)["dryRun"] is dry_run


def test_reads_still_ignore_unknown_parameters(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    response = client.get("/patients?dryRun=true&junk=1")
    assert response.status_code == 200
    assert [p["externalId"] for p in response.get_json()] == ["p1"]
