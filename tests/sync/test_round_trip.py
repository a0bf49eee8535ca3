"""A snapshot round-trips: reading everything back gives exactly the accepted records (SPEC §3)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient

from tests.support.helpers import get_all, patient_record, payment_record, sync

PATIENTS = [
    patient_record(
        "p1", firstName="Zoë", lastName="O'Brien", middleName="Ann", dateOfBirth="2094-02-01"
    ),
    patient_record(
        "p2", firstName="  spaced  ", lastName="tab\there", middleName=None, dateOfBirth=None
    ),
    patient_record(
        "p3", firstName="a\\b", lastName="x" * 255, middleName="\\N", dateOfBirth="1900-02-28"
    ),
    patient_record("p4", firstName="", lastName="rejected"),
]
PAYMENTS = [
    payment_record("m1", "p1", Decimal("4.46")),
    payment_record("m2", "p1", Decimal("-0.01")),
    payment_record("m3", "p2", Decimal("9999999999.99")),
    payment_record("m4", "p3", Decimal("0.10")),
    payment_record("m5", "p4", Decimal("1.00")),
]


def as_input(item: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: item[key] for key in keys}


def test_patients_and_payments_round_trip_exactly(client: FlaskClient) -> None:
    sync(client, "patients", PATIENTS)
    sync(client, "payments", PAYMENTS)
    patient_keys = ("externalId", "firstName", "lastName", "middleName", "dateOfBirth")
    payment_keys = ("externalId", "patientId", "amount")
    patients = [as_input(p, patient_keys) for p in get_all(client, "/patients?limit=2")]
    payments = [as_input(p, payment_keys) for p in get_all(client, "/payments?limit=2")]
    assert patients == PATIENTS[:3]
    assert payments == PAYMENTS[:4]
    assert [str(p["amount"]) for p in payments] == ["4.46", "-0.01", "9999999999.99", "0.10"]
