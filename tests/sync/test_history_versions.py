"""Every sync that changes a record keeps the version it replaces (SPEC §5), and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.models import Patient, PatientVersion, Payment, PaymentVersion
from tests.support.helpers import patient_record, payment_record, post_snapshot, sync


def versions(app: Flask, model: type[Any]) -> list[Any]:
    """Every kept version of ``model``'s table, oldest first."""
    with app.app_context():
        return db.session.execute(sa.select(model).order_by(model.id)).scalars().all()


def current(app: Flask, model: type[Any], external_id: str) -> Any:
    """The record's row: its current version."""
    with app.app_context():
        return db.session.execute(
            sa.select(model).where(model.external_id == external_id)
        ).scalar_one()


def test_initial_load_keeps_no_versions_and_rows_name_their_sync(
    client: FlaskClient, app: Flask
) -> None:
    report = sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert versions(app, PatientVersion) == []
    assert current(app, Patient, "a").sync_id == report["syncId"]


def test_update_keeps_the_replaced_version(client: FlaskClient, app: Flask) -> None:
    first = sync(client, "patients", [patient_record("a", lastName="Byron")])
    second = sync(client, "patients", [patient_record("a", lastName="King")])
    [kept] = versions(app, PatientVersion)
    row = current(app, Patient, "a")
    assert (kept.record_id, kept.external_id, kept.last_name, kept.deleted) == (
        row.id,
        "a",
        "Byron",
        None,
    )
    assert kept.valid_from.isoformat() == first["startedAt"]
    assert kept.valid_to.isoformat() == second["startedAt"]
    assert (kept.sync_id, kept.ended_by) == (first["syncId"], second["syncId"])
    assert (row.last_name, row.sync_id) == ("King", second["syncId"])
    assert row.updated.isoformat() == second["startedAt"]


def test_unchanged_resend_keeps_nothing(client: FlaskClient, app: Flask) -> None:
    sync(client, "patients", [patient_record("a")])
    report = sync(client, "patients", [patient_record("a")])
    assert report["unchanged"] == 1
    assert versions(app, PatientVersion) == []


def test_dry_run_keeps_nothing(client: FlaskClient, app: Flask) -> None:
    first = sync(client, "patients", [patient_record("a", lastName="Byron")])
    sync(client, "patients", [patient_record("a", lastName="King")], query="?dry_run=true")
    assert versions(app, PatientVersion) == []
    assert current(app, Patient, "a").sync_id == first["syncId"]


def test_soft_delete_keeps_the_live_version_and_restore_the_deleted_one(
    client: FlaskClient, app: Flask
) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    deleting = sync(client, "patients", [patient_record("b")])
    restoring = sync(client, "patients", [patient_record("a"), patient_record("b")])
    live, deleted = versions(app, PatientVersion)
    assert (live.external_id, live.deleted, live.ended_by) == ("a", None, deleting["syncId"])
    assert deleted.deleted is not None
    assert deleted.deleted.isoformat() == deleting["startedAt"]
    assert (deleted.sync_id, deleted.ended_by) == (deleting["syncId"], restoring["syncId"])
    assert current(app, Patient, "a").deleted is None


def test_rejected_record_keeps_nothing(client: FlaskClient, app: Flask) -> None:
    sync(client, "patients", [patient_record("a")])
    response = post_snapshot(client, "patients", [patient_record("a", firstName="")])
    assert response.get_json()["rejected"] == 1
    assert versions(app, PatientVersion) == []


@pytest.mark.parametrize("change", ["amount", "patient"])
def test_payment_change_keeps_the_old_amount_and_patient(
    client: FlaskClient, app: Flask, change: str
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    first = sync(client, "payments", [payment_record("m1", "p1", "10.00")])
    changed = payment_record(
        "m1", "p2" if change == "patient" else "p1", "12.50" if change == "amount" else "10.00"
    )
    second = sync(client, "payments", [changed])
    [kept] = versions(app, PaymentVersion)
    p1 = current(app, Patient, "p1")
    assert (str(kept.amount), kept.patient_id, kept.sync_id, kept.ended_by) == (
        "10.00",
        p1.id,
        first["syncId"],
        second["syncId"],
    )
    assert current(app, Payment, "m1").sync_id == second["syncId"]


def test_patient_totals_moving_keep_no_patient_version(client: FlaskClient, app: Flask) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "10.00")])
    sync(client, "payments", [payment_record("m1", "p1", "20.00")])
    assert versions(app, PatientVersion) == []
