"""The hot-path serializers produce exactly what the documented schemas describe."""

from __future__ import annotations

from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient

from app.api.schemas import PatientSchema, PaymentSchema
from app.extensions import db
from app.reads import live
from app.reads.serializers import patient_json, payment_json
from tests.support.helpers import patient_record, payment_record, sync


def seed(client: FlaskClient) -> None:
    sync(
        client,
        "patients",
        [
            patient_record("a", middleName="M", dateOfBirth=None),
            patient_record("b", middleName=None),
            patient_record(7),
        ],
    )
    sync(
        client,
        "payments",
        [
            payment_record("m1", "a", Decimal("4.46")),
            payment_record("m2", "a", Decimal("-0.10")),
            payment_record("m3", 7, 12),
        ],
    )


def test_patient_json_equals_patient_schema_dump(app: Flask, client: FlaskClient) -> None:
    seed(client)
    with app.app_context():
        rows = db.session.execute(live.live_patients()).all()
        assert len(rows) == 3
        assert [patient_json(row) for row in rows] == PatientSchema(many=True).dump(rows)


def test_payment_json_equals_payment_schema_dump(app: Flask, client: FlaskClient) -> None:
    seed(client)
    with app.app_context():
        rows = db.session.execute(live.live_payments()).all()
        assert len(rows) == 3
        assert [payment_json(row) for row in rows] == PaymentSchema(many=True).dump(rows)
