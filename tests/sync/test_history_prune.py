"""flask history prune --before: retention on request, and the horizon it leaves (SPEC §5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from werkzeug.test import TestResponse

from app.events import position
from app.extensions import db
from tests.support.helpers import error_code, next_link, patient_record, payment_record, sync


def prune(runner: FlaskCliRunner, before: str) -> Any:
    """Run `flask history prune --before BEFORE`."""
    return runner.invoke(args=["history", "prune", "--before", before])


def three_versions(client: FlaskClient) -> list[dict[str, Any]]:
    """Three syncs of patient "a", each a new version."""
    return [
        sync(client, "patients", [patient_record("a", lastName=name)])
        for name in ("One", "Two", "Three")
    ]


def test_prune_drops_versions_ended_and_syncs_begun_before_the_instant(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = three_versions(client)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 0, result.output
    # "One" ended when "Two" began, before the instant; "Two" ended at it, so it stays.
    assert json.loads(result.stdout) == {
        "prunedBefore": reports[2]["startedAt"],
        "versionsDeleted": 1,
        "syncsDeleted": 2,
    }
    assert [v["lastName"] for v in client.get("/patients/a/history").get_json()] == ["Three", "Two"]
    assert [r["syncId"] for r in client.get("/syncs").get_json()] == [reports[2]["syncId"]]


def test_as_of_before_the_horizon_is_history_pruned(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = three_versions(client)
    assert prune(runner, reports[1]["startedAt"]).exit_code == 0
    for path in ("/patients", "/patients/a", "/payments", "/payments/m1"):
        response = client.get(f"{path}?as_of={quote(reports[0]['startedAt'])}")
        assert response.status_code == 422
        assert error_code(response) == "history_pruned"
    later = client.get(f"/patients?as_of={quote(reports[1]['startedAt'])}").get_json()
    assert [p["lastName"] for p in later] == ["Two"]


def test_prune_accepts_a_date_as_midnight_utc(client: FlaskClient, runner: FlaskCliRunner) -> None:
    three_versions(client)
    result = prune(runner, "2000-01-01")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "prunedBefore": "2000-01-01T00:00:00+00:00",
        "versionsDeleted": 0,
        "syncsDeleted": 0,
    }
    assert len(client.get("/patients/a/history").get_json()) == 3


def test_the_horizon_never_moves_back(client: FlaskClient, runner: FlaskCliRunner) -> None:
    reports = three_versions(client)
    assert prune(runner, reports[2]["startedAt"]).exit_code == 0
    result = prune(runner, "2000-01-01")
    assert json.loads(result.stdout)["prunedBefore"] == reports[2]["startedAt"]


@pytest.mark.parametrize("before", ["yesterday", "2026-11-21T10:00:00", "2026-02-30", ""])
def test_prune_refuses_an_instant_without_an_offset_or_unparseable(
    client: FlaskClient, runner: FlaskCliRunner, before: str
) -> None:
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
        position.ensure(connection)
        moved = position.Position(sync_id, 0, complete, 0)
        assert position.store(connection, position.START, moved, published=0)
        db.session.commit()


def test_prune_refuses_to_drop_syncs_the_relay_has_not_published(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = three_versions(client)
    relay_position(app, reports[0]["syncId"], complete=False)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 2
    assert "events_unpublished" in result.output
    assert len(client.get("/syncs").get_json()) == 3
    assert len(client.get("/patients/a/history").get_json()) == 3


def test_prune_drops_syncs_the_relay_has_published(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = three_versions(client)
    relay_position(app, reports[1]["syncId"], complete=True)
    result = prune(runner, reports[2]["startedAt"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["syncsDeleted"] == 2


def test_a_forced_prune_drops_unpublished_syncs(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = three_versions(client)
    relay_position(app, reports[0]["syncId"], complete=False)
    result = runner.invoke(
        args=["history", "prune", "--before", reports[2]["startedAt"], "--force"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["syncsDeleted"] == 2


def now() -> str:
    """This instant, for a prune of everything so far."""
    return datetime.now(UTC).isoformat()


def test_prune_keeps_the_newest_applied_sync_of_each_entity(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    patients = three_versions(client)
    payments = [
        sync(client, "payments", [payment_record("m", "a", amount=amount)])
        for amount in ("1.00", "2.00")
    ]
    sync(client, "payments", [payment_record("m", "a", amount="3.00")], query="?dry_run=true")
    result = prune(runner, now())
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["syncsDeleted"] == 4  # two of each kind, and the dry run
    assert [r["syncId"] for r in client.get("/syncs").get_json()] == [
        payments[-1]["syncId"],
        patients[-1]["syncId"],
    ]


@pytest.mark.parametrize("before", ["2099-01-01", "2099-01-01T00:00:00Z"])
def test_prune_refuses_an_instant_in_the_future_and_changes_nothing(
    client: FlaskClient, runner: FlaskCliRunner, before: str
) -> None:
    reports = three_versions(client)
    result = prune(runner, before)
    assert result.exit_code == 2
    assert "instant_in_future" in result.output
    assert len(client.get("/syncs").get_json()) == 3
    as_of = quote(reports[2]["startedAt"])
    assert client.get(f"/patients/a?as_of={as_of}").get_json()["lastName"] == "Three"


def walk_from(client: FlaskClient, first: TestResponse) -> list[str]:
    """The externalIds of a first page and of every page its Link leads to."""
    seen = [patient["externalId"] for patient in first.get_json()]
    response = first
    while (link := next_link(response)) is not None:
        response = client.get(link)
        assert response.status_code == 200, response.get_json()
        seen += [patient["externalId"] for patient in response.get_json()]
    return seen


def five_patients_with_totals(client: FlaskClient) -> None:
    """Patients p0..p4, p<n> with a total of n dollars."""
    sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n}", amount=f"{n}.00") for n in range(5)])


def turn_totals_around(client: FlaskClient) -> None:
    """A payments sync that gives p<n> a total of 10 - n dollars: the order reverses."""
    sync(
        client,
        "payments",
        [payment_record(f"m{n}", f"p{n}", amount=f"{10 - n}.00") for n in range(5)],
    )


def test_a_listing_begun_after_a_prune_of_every_sync_stays_pinned(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    five_patients_with_totals(client)
    assert prune(runner, now()).exit_code == 0
    first = client.get("/patients?sort=-paymentsTotal&limit=2")
    assert [p["externalId"] for p in first.get_json()] == ["p4", "p3"]
    turn_totals_around(client)  # the walk must show the listing as it stood
    assert walk_from(client, first) == ["p4", "p3", "p2", "p1", "p0"]


def test_a_walk_across_a_prune_past_its_pin_is_cursor_expired(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    five_patients_with_totals(client)
    first = client.get("/patients?sort=-paymentsTotal&limit=2")
    turn_totals_around(client)
    assert prune(runner, now()).exit_code == 0
    response = client.get(next_link(first) or "")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "cursor_expired"
    assert response.get_json()["error"]["details"]["parameter"] == "cursor"


def test_a_walk_across_a_prune_before_its_pin_goes_on(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    five_patients_with_totals(client)
    first = client.get("/patients?sort=-paymentsTotal&limit=2")
    turn_totals_around(client)
    assert prune(runner, "2000-01-01").exit_code == 0
    assert walk_from(client, first) == ["p4", "p3", "p2", "p1", "p0"]
