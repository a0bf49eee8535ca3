"""flask history prune --before: retention on request, and the horizon it leaves (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app.events import position
from app.extensions import db
from tests.helpers import error_code, patient_record, sync


def prune(runner: FlaskCliRunner, before: str) -> Any:
    """Run `flask history prune --before BEFORE`."""
    return runner.invoke(args=["history", "prune", "--before", before])


def three_versions(client: FlaskClient) -> list[dict[str, Any]]:
    """Three syncs of patient "a", each a new version."""
    return [sync(client, "patients", [patient_record("a", lastName=name)])
            for name in ("One", "Two", "Three")]


def test_prune_drops_versions_ended_and_syncs_begun_before_the_instant(
        client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 0, result.output
    # "One" ended when "Two" began, before the instant; "Two" ended at it, so it stays.
    assert json.loads(result.stdout) == {"prunedBefore": reports[2]["startedAt"],
                                         "versionsDeleted": 1, "syncsDeleted": 2}
    assert [v["lastName"] for v in client.get("/patients/a/history").get_json()] == \
        ["Three", "Two"]
    assert [r["syncId"] for r in client.get("/syncs").get_json()] == [reports[2]["syncId"]]


def test_as_of_before_the_horizon_is_history_pruned(client: FlaskClient,
                                                   runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    assert prune(runner, reports[1]["startedAt"]).exit_code == 0
    for path in ("/patients", "/patients/a", "/payments", "/payments/m1"):
        response = client.get(f"{path}?as_of={quote(reports[0]['startedAt'])}")
        assert response.status_code == 422
        assert error_code(response) == "history_pruned"
    later = client.get(f"/patients?as_of={quote(reports[1]['startedAt'])}").get_json()
    assert [p["lastName"] for p in later] == ["Two"]


def test_prune_accepts_a_date_as_midnight_utc(client: FlaskClient,
                                              runner: FlaskCliRunner) -> None:
    three_versions(client)
    result = prune(runner, "2000-01-01")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"prunedBefore": "2000-01-01T00:00:00+00:00",
                                         "versionsDeleted": 0, "syncsDeleted": 0}
    assert len(client.get("/patients/a/history").get_json()) == 3


def test_the_horizon_never_moves_back(client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    assert prune(runner, reports[2]["startedAt"]).exit_code == 0
    result = prune(runner, "2000-01-01")
    assert json.loads(result.stdout)["prunedBefore"] == reports[2]["startedAt"]


@pytest.mark.parametrize("before", ["yesterday", "2026-11-21T10:00:00", "2026-02-30", ""])
def test_prune_refuses_an_instant_without_an_offset_or_unparseable(
        client: FlaskClient, runner: FlaskCliRunner, before: str) -> None:
    three_versions(client)
    result = prune(runner, before)
    assert result.exit_code == 2
    assert "invalid --before" in result.stderr
    assert len(client.get("/patients/a/history").get_json()) == 3


def test_a_prune_is_seen_by_the_read_cache(client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    assert len(client.get("/syncs").get_json()) == 3
    assert len(client.get("/patients/a/history").get_json()) == 3
    assert prune(runner, reports[2]["startedAt"]).exit_code == 0
    assert len(client.get("/syncs").get_json()) == 1
    assert len(client.get("/patients/a/history").get_json()) == 2


def relay_position(app: Flask, sync_id: int, *, complete: bool) -> None:
    """Store the event relay's position as if it had published up to ``sync_id``."""
    with app.app_context():
        connection = db.session.connection()
        position.reset(connection, position.Position(sync_id, 0, complete, 0))
        db.session.commit()


def test_prune_refuses_to_drop_syncs_the_relay_has_not_published(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    relay_position(app, reports[0]["syncId"], complete=False)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 2
    assert "events_unpublished" in result.output
    assert len(client.get("/syncs").get_json()) == 3
    assert len(client.get("/patients/a/history").get_json()) == 3


def test_prune_drops_syncs_the_relay_has_published(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    relay_position(app, reports[1]["syncId"], complete=True)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["syncsDeleted"] == 2


def test_a_forced_prune_drops_unpublished_syncs(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    relay_position(app, reports[0]["syncId"], complete=False)
    result = runner.invoke(args=["history", "prune", "--before", reports[2]["startedAt"],
                                 "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["syncsDeleted"] == 2
