"""GET /payments (SPEC §3)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.helpers import (
    error_code,
    get_all,
    next_link,
    patient_record,
    payment_record,
    sync,
)

PAYMENT_KEYS = {"id", "externalId", "patientId", "amount", "created", "updated"}


@pytest.fixture
def seeded(client: FlaskClient) -> FlaskClient:
    """Patients p1, p2, 7 (an integer externalId) and payments of each, not in id order."""
    sync(client, "patients", [patient_record("p1"), patient_record("p2"), patient_record(7)])
    sync(
        client,
        "payments",
        [
            payment_record("m3", "p2", "17.22"),
            payment_record("m1", "p1", "10.00"),
            payment_record("m5", 7, "-3.25"),
            payment_record("m2", "p1", "0.01"),
            payment_record("m4", "p2", "1000000.50"),
            payment_record(6, "p1", 12),
        ],
    )
    return client


def external_ids(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [payment["externalId"] for payment in response.get_json()]


def test_list_payments_is_empty_array_before_any_sync(client: FlaskClient) -> None:
    response = client.get("/payments")
    assert response.status_code == 200
    assert response.get_json() == []
    assert "Link" not in response.headers


def test_list_payments_returns_live_payments_ordered_by_id(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    payments = response.get_json()
    ids = [p["id"] for p in payments]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert sorted(p["externalId"] for p in payments) == ["6", "m1", "m2", "m3", "m4", "m5"]


def test_list_payments_items_have_exactly_the_payment_keys(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    assert all(set(payment) == PAYMENT_KEYS for payment in response.get_json())


def test_list_payments_patient_id_is_the_patients_external_id(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    got = {p["externalId"]: p["patientId"] for p in response.get_json()}
    assert got == {"m1": "p1", "m2": "p1", "6": "p1", "m3": "p2", "m4": "p2", "m5": "7"}


def test_list_payments_amounts_are_exact_decimals(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    got = {p["externalId"]: p["amount"] for p in response.get_json()}
    assert got == {
        "m1": Decimal("10.00"),
        "m2": Decimal("0.01"),
        "6": Decimal("12"),
        "m3": Decimal("17.22"),
        "m4": Decimal("1000000.50"),
        "m5": Decimal("-3.25"),
    }


def test_list_payments_amounts_are_json_numbers_in_raw_text(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert '"amount":17.22' in text
    assert '"amount":-3.25' in text
    assert '"amount":"' not in text


def test_list_payments_timestamps_are_iso_8601_utc_with_offset(seeded: FlaskClient) -> None:
    response = seeded.get("/payments")
    assert response.status_code == 200
    payment = response.get_json()[0]
    for name in ("created", "updated"):
        assert payment[name].endswith("+00:00"), payment[name]
        assert datetime.fromisoformat(payment[name]).utcoffset().total_seconds() == 0


def test_list_payments_external_id_filters_to_that_patients_payments(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/payments?external_id=p1")) == [
        p for p in external_ids(seeded.get("/payments")) if p in {"m1", "m2", "6"}
    ]
    assert sorted(external_ids(seeded.get("/payments?external_id=p2"))) == ["m3", "m4"]


def test_list_payments_external_id_matches_integer_external_id_as_string(
    seeded: FlaskClient,
) -> None:
    assert external_ids(seeded.get("/payments?external_id=7")) == ["m5"]


def test_list_payments_external_id_is_the_patient_not_the_payment(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/payments?external_id=m1")) == []


def test_list_payments_unknown_external_id_gives_empty_array(seeded: FlaskClient) -> None:
    response = seeded.get("/payments?external_id=nobody")
    assert response.status_code == 200
    assert response.get_json() == []


def test_list_payments_patient_without_payments_gives_empty_array(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1")])
    response = client.get("/payments?external_id=p2")
    assert response.status_code == 200
    assert response.get_json() == []


def test_list_payments_drops_payment_removed_by_later_snapshot(seeded: FlaskClient) -> None:
    sync(
        seeded,
        "payments",
        [payment_record("m1", "p1", "10.00"), payment_record("m3", "p2", "17.22")],
    )
    assert sorted(external_ids(seeded.get("/payments"))) == ["m1", "m3"]
    assert external_ids(seeded.get("/payments?external_id=p1")) == ["m1"]


def test_list_payments_shows_payment_moved_to_another_patient(seeded: FlaskClient) -> None:
    sync(seeded, "payments", [payment_record("m1", "p2", "10.00")])
    response = seeded.get("/payments?external_id=p2")
    assert response.status_code == 200
    assert [(p["externalId"], p["patientId"]) for p in response.get_json()] == [("m1", "p2")]


@pytest.mark.parametrize("limit", [1, 2, 4])
def test_list_payments_pagination_visits_each_payment_once(seeded: FlaskClient, limit: int) -> None:
    whole = seeded.get("/payments?limit=1000").get_json()
    paged = get_all(seeded, f"/payments?limit={limit}")
    assert [p["id"] for p in paged] == [p["id"] for p in whole]
    assert len(paged) == 6


def test_list_payments_pagination_with_filter_visits_each_payment_once(seeded: FlaskClient) -> None:
    first = seeded.get("/payments?external_id=p1&limit=2")
    assert first.status_code == 200
    link = next_link(first)
    assert link is not None
    assert link.startswith("http://localhost/payments?")
    assert "external_id=p1" in link
    second = seeded.get(link)
    assert second.status_code == 200
    assert "Link" not in second.headers
    paged = [p["externalId"] for p in first.get_json() + second.get_json()]
    assert paged == external_ids(seeded.get("/payments?external_id=p1"))
    assert sorted(paged) == ["6", "m1", "m2"]


def test_list_payments_rejects_limit_zero_with_invalid_parameter(client: FlaskClient) -> None:
    response = client.get("/payments?limit=0")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "limit" in response.get_json()["error"]["message"]


def test_list_payments_rejects_malformed_cursor_with_invalid_parameter(seeded: FlaskClient) -> None:
    response = seeded.get("/payments?cursor=garbage")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "cursor" in response.get_json()["error"]["message"]


def test_list_payments_rejects_cursor_of_patients_sort(seeded: FlaskClient) -> None:
    link = next_link(seeded.get("/patients?sort=paymentsTotal&limit=1")) or ""
    cursor = link.split("cursor=", 1)[1]
    response = seeded.get(f"/payments?cursor={cursor}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"


def test_list_payments_rejects_huge_id_cursor(seeded: FlaskClient) -> None:
    raw = json.dumps(["id", 10**30]).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = seeded.get(f"/payments?cursor={cursor}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"


def test_list_payments_ignores_unknown_query_parameters(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/payments?foo=1&external_id=p2&sort=amount")) == external_ids(
        seeded.get("/payments?external_id=p2")
    )
