"""GET /patients/<externalId>/history and /payments/<externalId>/history (SPEC §5)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import (
    error_code,
    get_all,
    next_link,
    patient_record,
    payment_record,
    sync,
)

VERSION_KEYS = {"deleted", "validFrom", "validTo", "syncId"}


def test_patient_history_lists_every_version_newest_first(client: FlaskClient) -> None:
    first = sync(client, "patients", [patient_record("a", lastName="Byron")])
    second = sync(client, "patients", [patient_record("a", lastName="King")])
    history = client.get("/patients/a/history").get_json()
    assert [(v["lastName"], v["syncId"]) for v in history] == [
        ("King", second["syncId"]),
        ("Byron", first["syncId"]),
    ]
    assert set(history[0]) == VERSION_KEYS | {
        "externalId",
        "firstName",
        "lastName",
        "middleName",
        "dateOfBirth",
    }


def test_versions_are_contiguous(client: FlaskClient) -> None:
    reports = [
        sync(client, "patients", [patient_record("a", lastName=name)])
        for name in ("One", "Two", "Three")
    ]
    history = client.get("/patients/a/history").get_json()
    assert history[0]["validTo"] is None
    assert [v["validFrom"] for v in history] == [r["startedAt"] for r in reversed(reports)]
    assert [v["validTo"] for v in history[1:]] == [v["validFrom"] for v in history[:-1]]


def test_history_of_a_deleted_patient_shows_its_deleted_version(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    deleting = sync(client, "patients", [patient_record("b")])
    assert client.get("/patients/a").status_code == 404
    newest, older = client.get("/patients/a/history").get_json()
    assert newest["deleted"] == deleting["startedAt"]
    assert (older["deleted"], older["validTo"]) == (None, deleting["startedAt"])


def test_payment_history_carries_amount_and_patient_of_each_version(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", "10.00")])
    sync(client, "payments", [payment_record("m1", "p2", "12.50")])
    history = client.get("/payments/m1/history").get_json()
    assert [(v["patientId"], str(v["amount"])) for v in history] == [
        ("p2", "12.50"),
        ("p1", "10.00"),
    ]
    assert b'"amount":12.50' in client.get("/payments/m1/history").get_data()


def test_history_is_paginated_with_link(client: FlaskClient) -> None:
    for name in ("One", "Two", "Three"):
        sync(client, "patients", [patient_record("a", lastName=name)])
    first = client.get("/patients/a/history?limit=2")
    assert len(first.get_json()) == 2
    assert (next_link(first) or "").startswith("http://localhost/patients/a/history?")
    assert "external_id" not in (next_link(first) or "")
    assert [v["lastName"] for v in get_all(client, "/patients/a/history?limit=1")] == [
        "Three",
        "Two",
        "One",
    ]


@pytest.mark.parametrize("resource", ["patients", "payments"])
def test_history_of_an_id_never_stored_is_404(client: FlaskClient, resource: str) -> None:
    response = client.get(f"/{resource}/nobody/history")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("external_id", ["a/history", "x/y", "/", "100%", "%2F"])
def test_history_and_record_stay_apart_for_ids_with_slashes(
    client: FlaskClient, external_id: str
) -> None:
    sync(client, "patients", [patient_record(external_id), patient_record("a")])
    encoded = quote(external_id, safe="")
    assert client.get(f"/patients/{encoded}").get_json()["externalId"] == external_id
    history: list[Any] = client.get(f"/patients/{encoded}/history").get_json()
    assert [v["externalId"] for v in history] == [external_id]


def test_history_rejects_a_malformed_cursor(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a")])
    response = client.get("/patients/a/history?cursor=WyIxIl0")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
