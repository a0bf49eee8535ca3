"""GET /patients and GET /patients/<externalId> (SPEC §3)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import db
from tests.support.helpers import (
    error_code,
    get_all,
    next_link,
    patient_record,
    payment_record,
    sync,
)

PATIENT_KEYS = {
    "id",
    "externalId",
    "firstName",
    "lastName",
    "middleName",
    "dateOfBirth",
    "paymentsTotal",
    "paymentsCount",
    "created",
    "updated",
}

# externalId -> amounts of its live payments; ties on 10.00, 0 and 20.00, a negative total.
TOTALS: dict[str, list[str]] = {
    "a01": ["10.00"],
    "a02": ["5.50", "4.50"],
    "a03": [],
    "a04": ["-3.25"],
    "a05": ["100.01"],
    "a06": ["0.01"],
    "a07": ["20.00"],
    "a08": [],
    "a09": ["9.99"],
    "a10": ["10.01"],
    "a11": ["25.00", "-5.00"],
}
SORTS = ("id", "paymentsTotal", "-paymentsTotal")


def seed(client: FlaskClient, totals: dict[str, list[str]] = TOTALS) -> None:
    """Sync one patient per key of ``totals`` and its payments."""
    sync(client, "patients", [patient_record(external_id) for external_id in totals])
    payments = [
        payment_record(f"{external_id}-m{n}", external_id, amount)
        for external_id, amounts in totals.items()
        for n, amount in enumerate(amounts)
    ]
    sync(client, "payments", payments)


@pytest.fixture
def seeded(client: FlaskClient) -> FlaskClient:
    seed(client)
    return client


def external_ids(response: TestResponse) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [patient["externalId"] for patient in response.get_json()]


def total_of(external_id: str) -> Decimal:
    return sum((Decimal(amount) for amount in TOTALS[external_id]), Decimal(0))


def expected_order(client: FlaskClient, sort: str) -> list[str]:
    """The externalIds in the order SPEC §3 defines, computed from ids and TOTALS."""
    ids = {p["externalId"]: p["id"] for p in client.get("/patients?limit=1000").get_json()}
    keys: dict[str, Callable[[str], Any]] = {
        "id": lambda e: ids[e],
        "paymentsTotal": lambda e: (total_of(e), ids[e]),
        "-paymentsTotal": lambda e: (-total_of(e), ids[e]),
    }
    return sorted(ids, key=keys[sort])


def assert_invalid_parameter(response: TestResponse, name: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "invalid_parameter"
    assert name in error["message"] or name in json.dumps(error["details"])


def make_cursor(*parts: Any) -> str:
    raw = json.dumps(list(parts)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --------------------------------------------------------------------------- live rows


def test_list_patients_returns_every_live_patient(seeded: FlaskClient) -> None:
    assert sorted(external_ids(seeded.get("/patients"))) == sorted(TOTALS)


def test_list_patients_drops_patient_missing_from_later_snapshot(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2"), patient_record("p3")])
    sync(client, "patients", [patient_record("p1"), patient_record("p3")])
    assert external_ids(client.get("/patients")) == ["p1", "p3"]


def test_list_patients_is_empty_array_before_any_sync(client: FlaskClient) -> None:
    response = client.get("/patients")
    assert response.status_code == 200
    assert response.get_json() == []
    assert "Link" not in response.headers


def test_list_patients_items_have_exactly_the_patient_keys(seeded: FlaskClient) -> None:
    response = seeded.get("/patients")
    assert response.status_code == 200
    assert all(set(patient) == PATIENT_KEYS for patient in response.get_json())


# --------------------------------------------------------------------------- totals and bounds


def test_list_patients_reports_totals_and_counts_of_live_payments(seeded: FlaskClient) -> None:
    response = seeded.get("/patients")
    assert response.status_code == 200
    got = {p["externalId"]: (p["paymentsTotal"], p["paymentsCount"]) for p in response.get_json()}
    assert got == {e: (total_of(e), len(amounts)) for e, amounts in TOTALS.items()}


def test_patient_without_payments_has_total_zero_and_count_zero(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    response = client.get("/patients/p1")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["paymentsTotal"], body["paymentsCount"]) == (Decimal("0"), 0)


def test_list_patients_payment_max_zero_matches_patient_without_payments(
    client: FlaskClient,
) -> None:
    seed(client, {"p1": [], "p2": ["0.01"], "p3": ["-1.00"]})
    assert external_ids(client.get("/patients?payment_max=0")) == ["p1", "p3"]


def test_list_patients_payment_min_is_inclusive(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?payment_min=10"))
    assert got == ["a01", "a02", "a05", "a07", "a10", "a11"]


def test_list_patients_payment_max_is_inclusive(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?payment_max=10.00"))
    assert got == ["a01", "a02", "a03", "a04", "a06", "a08", "a09"]


def test_list_patients_payment_min_and_max_together_are_inclusive(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?payment_min=10&payment_max=20"))
    assert got == ["a01", "a02", "a07", "a10", "a11"]


def test_list_patients_payment_min_equal_to_max_matches_exact_total(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/patients?payment_min=20&payment_max=20")) == ["a07", "a11"]


def test_list_patients_negative_payment_min(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?payment_min=-3.25&payment_max=0"))
    assert got == ["a03", "a04", "a08"]


def test_list_patients_alias_payments_min_is_inclusive(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/patients?payments_min=20")) == ["a05", "a07", "a11"]


def test_list_patients_alias_payments_max_is_inclusive(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/patients?payments_max=0")) == ["a03", "a04", "a08"]


def test_list_patients_aliases_together_match_canonical_names(seeded: FlaskClient) -> None:
    canonical = external_ids(seeded.get("/patients?payment_min=10&payment_max=20"))
    alias = external_ids(seeded.get("/patients?payments_min=10&payments_max=20"))
    assert alias == canonical == ["a01", "a02", "a07", "a10", "a11"]


def test_list_patients_mixed_canonical_and_alias_bounds(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?payment_min=10&payments_max=10.01"))
    assert got == ["a01", "a02", "a10"]


def test_list_patients_total_excludes_payment_removed_by_later_snapshot(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(
        client, "payments", [payment_record("m1", "p1", "7.00"), payment_record("m2", "p1", "5.00")]
    )
    sync(client, "payments", [payment_record("m1", "p1", "7.00")])
    assert external_ids(client.get("/patients?payment_min=12")) == []
    body = client.get("/patients/p1").get_json()
    assert (body["paymentsTotal"], body["paymentsCount"]) == (Decimal("7.00"), 1)


def test_list_patients_amounts_are_exact_json_numbers(client: FlaskClient) -> None:
    seed(client, {"p1": ["10.00", "7.22"]})
    response = client.get("/patients")
    assert response.status_code == 200
    assert '"paymentsTotal":17.22' in response.get_data(as_text=True)
    assert response.get_json()[0]["paymentsTotal"] == Decimal("17.22")


# --------------------------------------------------------------------------- sort


def test_list_patients_default_sort_is_by_id(seeded: FlaskClient) -> None:
    response = seeded.get("/patients")
    ids = [p["id"] for p in response.get_json()]
    assert response.status_code == 200
    assert ids == sorted(ids)
    assert len(ids) == len(TOTALS)


def test_list_patients_sort_id_equals_default(seeded: FlaskClient) -> None:
    assert external_ids(seeded.get("/patients?sort=id")) == external_ids(seeded.get("/patients"))


def test_list_patients_sort_payments_total_ascending_ties_by_id(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?sort=paymentsTotal"))
    assert got == expected_order(seeded, "paymentsTotal")
    assert got[:4] == ["a04", "a03", "a08", "a06"]


def test_list_patients_sort_payments_total_descending_ties_by_ascending_id(
    seeded: FlaskClient,
) -> None:
    got = external_ids(seeded.get("/patients?sort=-paymentsTotal"))
    assert got == expected_order(seeded, "-paymentsTotal")
    assert got[:3] == ["a05", "a07", "a11"]
    assert got[-4:] == ["a06", "a03", "a08", "a04"]


def test_list_patients_sort_applies_with_filter(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?sort=-paymentsTotal&payment_min=10&payment_max=20"))
    assert got == ["a07", "a11", "a10", "a01", "a02"]


# --------------------------------------------------------------------------- pagination


@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("limit", [2, 3])
def test_list_patients_pagination_visits_every_row_once_in_order(
    seeded: FlaskClient, sort: str, limit: int
) -> None:
    pages = []
    url: str | None = f"/patients?sort={sort}&limit={limit}"
    while url:
        response = seeded.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        pages.append([p["externalId"] for p in response.get_json()])
        url = next_link(response)
    assert [e for page in pages for e in page] == expected_order(seeded, sort)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


@pytest.mark.parametrize("sort", SORTS)
def test_list_patients_pagination_with_filter_visits_every_match_once(
    seeded: FlaskClient, sort: str
) -> None:
    query = f"sort={sort}&payment_min=0&payment_max=20"
    paged = [p["externalId"] for p in get_all(seeded, f"/patients?{query}&limit=2")]
    whole = external_ids(seeded.get(f"/patients?{query}&limit=1000"))
    assert paged == whole
    assert sorted(paged) == ["a01", "a02", "a03", "a06", "a07", "a08", "a09", "a10", "a11"]


def test_list_patients_last_page_has_no_link_header(seeded: FlaskClient) -> None:
    first = seeded.get("/patients?limit=10")
    assert first.status_code == 200
    assert len(first.get_json()) == 10
    second = seeded.get(next_link(first) or "")
    assert second.status_code == 200
    assert len(second.get_json()) == 1
    assert "Link" not in second.headers


def test_list_patients_page_exactly_filled_has_no_link_header(seeded: FlaskClient) -> None:
    response = seeded.get(f"/patients?limit={len(TOTALS)}")
    assert response.status_code == 200
    assert len(response.get_json()) == len(TOTALS)
    assert "Link" not in response.headers


def test_list_patients_link_is_absolute_and_keeps_other_params(seeded: FlaskClient) -> None:
    response = seeded.get("/patients?sort=-paymentsTotal&limit=2&payment_min=0&payments_max=50")
    assert response.status_code == 200
    assert response.headers["Link"].endswith('; rel="next"')
    url = urlsplit(next_link(response) or "")
    assert (url.scheme, url.netloc, url.path) == ("http", "localhost", "/patients")
    params = parse_qs(url.query)
    assert params["sort"] == ["-paymentsTotal"]
    assert params["limit"] == ["2"]
    assert params["payment_min"] == ["0"]
    assert params["payment_max"] == ["50"]  # the alias, folded into its canonical name
    assert len(params["cursor"]) == 1


def test_list_patients_link_replaces_previous_cursor(seeded: FlaskClient) -> None:
    first = seeded.get("/patients?limit=2")
    second = seeded.get(next_link(first) or "")
    assert second.status_code == 200
    params = parse_qs(urlsplit(next_link(second) or "").query)
    assert len(params["cursor"]) == 1
    assert params["cursor"] != parse_qs(urlsplit(next_link(first) or "").query)["cursor"]


def test_list_patients_limit_bounds_page_size(seeded: FlaskClient) -> None:
    response = seeded.get("/patients?limit=1")
    assert response.status_code == 200
    assert len(response.get_json()) == 1
    assert next_link(response) is not None


def test_list_patients_accepts_limit_1000(seeded: FlaskClient) -> None:
    assert len(external_ids(seeded.get("/patients?limit=1000"))) == len(TOTALS)


# --------------------------------------------------------------------------- bad query values


def test_list_patients_rejects_non_numeric_payment_min_with_invalid_parameter(
    client: FlaskClient,
) -> None:
    assert_invalid_parameter(client.get("/patients?payment_min=abc"), "payment_min")


def test_list_patients_rejects_non_numeric_payments_max_alias_with_invalid_parameter(
    client: FlaskClient,
) -> None:
    assert_invalid_parameter(client.get("/patients?payments_max=abc"), "payments_max")


def test_list_patients_rejects_limit_zero_with_invalid_parameter(client: FlaskClient) -> None:
    assert_invalid_parameter(client.get("/patients?limit=0"), "limit")


def test_list_patients_rejects_limit_1001_with_invalid_parameter(client: FlaskClient) -> None:
    assert_invalid_parameter(client.get("/patients?limit=1001"), "limit")


def test_list_patients_rejects_non_integer_limit_with_invalid_parameter(
    client: FlaskClient,
) -> None:
    assert_invalid_parameter(client.get("/patients?limit=ten"), "limit")


def test_list_patients_rejects_min_greater_than_max_with_invalid_parameter(
    client: FlaskClient,
) -> None:
    assert_invalid_parameter(client.get("/patients?payment_min=20&payment_max=10"), "payment_min")


def test_list_patients_rejects_alias_min_greater_than_max_with_invalid_parameter(
    client: FlaskClient,
) -> None:
    assert_invalid_parameter(client.get("/patients?payments_min=20&payments_max=10"), "payment_min")


def test_list_patients_compares_a_bound_with_three_decimals_exactly(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("low"), patient_record("high")])
    sync(
        client,
        "payments",
        [payment_record("m1", "low", "25.00"), payment_record("m2", "high", "25.01")],
    )
    assert external_ids(client.get("/patients?payment_min=25.005")) == ["high"]
    assert external_ids(client.get("/patients?payment_max=25.005")) == ["low"]
    assert external_ids(client.get("/patients?payment_min=25.01&payment_max=25.01")) == ["high"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("payment_min=1e1000000", []),
        ("payment_max=1e1000000", ["low", "high"]),
        ("payment_min=-1e1000000", ["low", "high"]),
        ("payment_max=-1e1000000", []),
        ("payment_max=1e-1000000", []),
        ("payment_min=-1e-1000000", ["low", "high"]),
        ("payment_min=1" + "0" * 40, []),
    ],
)
def test_list_patients_bounds_of_any_magnitude_compare_exactly(
    client: FlaskClient, query: str, expected: list[str]
) -> None:
    sync(client, "patients", [patient_record("low"), patient_record("high")])
    sync(
        client,
        "payments",
        [payment_record("m1", "low", "0.01"), payment_record("m2", "high", "9999999999.99")],
    )
    assert external_ids(client.get(f"/patients?{query}")) == expected


def test_list_patients_rejects_nan_payment_max(client: FlaskClient) -> None:
    assert_invalid_parameter(client.get("/patients?payment_max=NaN"), "payment_max")


def test_list_patients_rejects_unknown_sort_with_invalid_parameter(client: FlaskClient) -> None:
    assert_invalid_parameter(client.get("/patients?sort=name"), "sort")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!",
        make_cursor("id", "x"),
        make_cursor("id"),
        make_cursor("paymentsTotal", "NaN", 1),
        make_cursor("paymentsTotal", "1e1000000", 1),
        make_cursor("paymentsTotal", "-1E+999999999", 1),
        base64.urlsafe_b64encode(b"[" * 1000).decode(),
        base64.urlsafe_b64encode(b"5").decode(),
        "A" * 5000,
    ],
    ids=[
        "text",
        "punctuation",
        "id-not-int",
        "short",
        "nan",
        "overflowing-total",
        "beyond-emax",
        "nested-brackets",
        "not-a-list",
        "very-long",
    ],
)
def test_list_patients_rejects_malformed_cursor_with_invalid_parameter(
    seeded: FlaskClient, cursor: str
) -> None:
    assert_invalid_parameter(seeded.get(f"/patients?cursor={cursor}"), "cursor")


def test_list_patients_rejects_cursor_from_another_sort(seeded: FlaskClient) -> None:
    link = next_link(seeded.get("/patients?sort=paymentsTotal&limit=2"))
    cursor = parse_qs(urlsplit(link or "").query)["cursor"][0]
    assert_invalid_parameter(seeded.get(f"/patients?sort=id&cursor={cursor}"), "cursor")


def test_list_patients_rejects_descending_cursor_on_ascending_sort(seeded: FlaskClient) -> None:
    link = next_link(seeded.get("/patients?sort=-paymentsTotal&limit=2"))
    cursor = parse_qs(urlsplit(link or "").query)["cursor"][0]
    response = seeded.get(f"/patients?sort=paymentsTotal&cursor={cursor}")
    assert_invalid_parameter(response, "cursor")


@pytest.mark.parametrize(
    ("sort", "parts"),
    [
        ("id", ("id", 10**30)),
        ("paymentsTotal", ("paymentsTotal", "1e30", 1)),
        ("-paymentsTotal", ("-paymentsTotal", "-1e200000", 1)),
        ("paymentsTotal", ("paymentsTotal", "1.001", 1)),
    ],
    ids=["huge-id", "huge-total", "total-beyond-numeric", "sub-cent-total"],
)
def test_list_patients_rejects_out_of_range_cursor(
    seeded: FlaskClient, sort: str, parts: tuple[Any, ...]
) -> None:
    response = seeded.get(f"/patients?sort={sort}&cursor={make_cursor(*parts)}")
    assert_invalid_parameter(response, "cursor")


@pytest.mark.parametrize("sort", ["paymentsTotal", "-paymentsTotal"])
def test_list_patients_pages_past_totals_of_10_to_the_16(
    client: FlaskClient, app: Flask, sort: str
) -> None:
    sync(client, "patients", [patient_record(name) for name in ("a", "b", "c")])
    with app.app_context():
        # As a million payments near the 10^10 bound would make them.
        db.session.execute(
            sa.text(
                "UPDATE patients SET payments_total = CASE external_id "
                "WHEN 'a' THEN 10000000000000000 "
                "WHEN 'b' THEN 12345678901234567.89 ELSE 0 END"
            )
        )
        db.session.commit()
    expected = ["c", "a", "b"] if sort == "paymentsTotal" else ["b", "a", "c"]
    assert [p["externalId"] for p in get_all(client, f"/patients?sort={sort}&limit=1")] == expected


def test_list_patients_ignores_unknown_query_parameters(seeded: FlaskClient) -> None:
    got = external_ids(seeded.get("/patients?foo=bar&payment_min=20&verbose=1"))
    assert got == ["a05", "a07", "a11"]


# --------------------------------------------------------------------------- one patient


def test_get_patient_has_exactly_the_patient_keys(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1", middleName="Augusta")])
    response = client.get("/patients/p1")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == PATIENT_KEYS
    assert (
        body["externalId"],
        body["firstName"],
        body["lastName"],
        body["middleName"],
        body["dateOfBirth"],
    ) == ("p1", "Ada", "Lovelace", "Augusta", "1815-12-10")
    assert isinstance(body["id"], int)


def test_get_patient_timestamps_are_iso_8601_utc_with_offset(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    response = client.get("/patients/p1")
    assert response.status_code == 200
    body = response.get_json()
    for name in ("created", "updated"):
        assert body[name].endswith("+00:00"), body[name]
        assert datetime.fromisoformat(body[name]).utcoffset().total_seconds() == 0
    assert body["created"] == body["updated"]


def test_get_patient_amount_is_exact_json_number(client: FlaskClient) -> None:
    seed(client, {"5": ["1.11", "16.11"]})
    response = client.get("/patients/5")
    assert response.status_code == 200
    assert '"paymentsTotal":17.22' in response.get_data(as_text=True)
    assert '"paymentsCount":2' in response.get_data(as_text=True)


def test_get_patient_matches_list_item(seeded: FlaskClient) -> None:
    listed = {p["externalId"]: p for p in seeded.get("/patients").get_json()}
    response = seeded.get("/patients/a11")
    assert response.status_code == 200
    assert response.get_json() == listed["a11"]


def test_get_patient_unknown_gives_404_not_found(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    response = client.get("/patients/nope")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_patient_soft_deleted_gives_404_not_found(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "patients", [patient_record("p2")])
    response = client.get("/patients/p1")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_patient_restored_is_found_again(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    first_id = client.get("/patients/p1").get_json()["id"]
    sync(client, "patients", [patient_record("p2")])
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    response = client.get("/patients/p1")
    assert response.status_code == 200
    assert response.get_json()["id"] == first_id
