"""The console's "Download CSV" links: the API's CSV for the same parameters, behind the sign-in."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.support.console_support import AUTH_ON, READ_TOKEN, WRITE_TOKEN, sign_in
from tests.support.helpers import patient_record, payment_record, post_snapshot

API = {"Authorization": f"Bearer {READ_TOKEN}", "Accept": "text/csv"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Auth on: the downloads open with the console's session, the API with the token."""
    return {**AUTH_ON, "RATELIMIT_ENABLED": False}


@pytest.fixture
def seeded(client: FlaskClient) -> str:
    """Patients with awkward names and payments; returns an instant between two syncs."""
    write = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    patients = [
        patient_record("p1", firstName="Zoë", lastName='O"Brien, Jr.'),
        patient_record("p2", firstName="Line\nbreak", middleName="M"),
        patient_record("p3"),
    ]
    payments = [
        payment_record("m1", "p1", "-12.50"),
        payment_record("m2", "p1", "9999999999.99"),
        payment_record("m3", "p2", "7.5"),
    ]
    for entity, records in (("patients", patients), ("payments", payments)):
        assert post_snapshot(client, entity, records, headers=write).status_code == 200
    syncs = client.get("/syncs?limit=1", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    instant: str = syncs.get_json()[0]["finishedAt"]
    later = [payment_record("m1", "p1", "1.00")]
    assert post_snapshot(client, "payments", later, headers=write).status_code == 200
    return instant


def test_range_download_is_the_apis_csv_for_the_same_parameters(
    client: FlaskClient, seeded: str
) -> None:
    sign_in(client)
    query = "payment_min=-100&payment_max=10000000000&sort=-paymentsTotal"
    download = client.get(f"/console/analytics.csv?{query}")
    downloaded = download.get_data()
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert downloaded == client.get(f"/patients?{query}", headers=API).get_data()
    rows = list(csv.DictReader(io.StringIO(downloaded.decode(), newline="")))
    assert [row["externalId"] for row in rows] == ["p1", "p2", "p3"]


def test_patient_payments_download_is_the_apis_csv_now_and_as_of(
    client: FlaskClient, seeded: str
) -> None:
    sign_in(client)
    downloads = []
    for as_of in ("", f"&as_of={quote(seeded)}"):
        download = client.get(f"/console/patient/payments.csv?id=p1{as_of}")
        assert download.status_code == 200
        # Each export read to its end before the next request (one shared test connection).
        downloads.append(download.get_data())
        api = client.get(f"/payments?external_id=p1{as_of}", headers=API).get_data()
        assert downloads[-1] == api
    now, then = downloads
    assert b",-12.50," in then and b",-12.50," not in now


def test_pages_link_to_their_downloads(client: FlaskClient, seeded: str) -> None:
    sign_in(client)
    analytics = client.get("/console/analytics?payment_min=0.5&sort=-paymentsTotal")
    assert (
        'href="/console/analytics.csv?payment_min=0.5&amp;sort=-paymentsTotal"'
        in analytics.get_data(as_text=True)
    )
    patient = client.get("/console/patient?id=p1")
    assert 'href="/console/patient/payments.csv?id=p1"' in patient.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/console/analytics.csv", "/console/patient/payments.csv?id=p1"])
def test_downloads_need_the_sign_in(client: FlaskClient, seeded: str, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 401
    # The patient's name, not a fragment of it: the sign-in form's random CSRF token
    # (ASCII) spelled "Zo" in about one run in a hundred.
    body = response.get_data(as_text=True)
    assert "Zoë" not in body and "Brien" not in body and response.mimetype == "text/html"


def test_download_with_bad_bounds_is_a_400_page(client: FlaskClient, seeded: str) -> None:
    sign_in(client)
    response = client.get("/console/analytics.csv?payment_min=abc")
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_payments_download_without_a_patient_is_a_400_page(
    client: FlaskClient, seeded: str
) -> None:
    sign_in(client)
    assert client.get("/console/patient/payments.csv").status_code == 400


def test_downloads_are_not_stored_by_caches(client: FlaskClient, seeded: str) -> None:
    sign_in(client)
    response = client.get("/console/analytics.csv")
    response.close()
    assert response.headers["Cache-Control"] == "no-store"
