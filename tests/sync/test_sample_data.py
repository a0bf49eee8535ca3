"""The original sample files, with their traps, give the documented outcome (issue 2)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from flask.testing import FlaskClient

from tests.support.helpers import post_snapshot

ROOT = Path(__file__).resolve().parents[2]


def sync_sample(client: FlaskClient, entity: str) -> dict:
    response = post_snapshot(client, entity, (ROOT / "samples" / f"{entity}.json").read_bytes())
    assert response.status_code == 200
    return response.get_json()


def test_sample_patients_are_all_created_with_future_birth_dates_kept(client: FlaskClient) -> None:
    report = sync_sample(client, "patients")
    assert (report["received"], report["created"], report["rejected"]) == (4, 4, 0)
    rick = client.get("/patients/5").get_json()
    assert (rick["firstName"], rick["lastName"], rick["dateOfBirth"]) == (
        "Rick",
        "Deckard",
        "2094-02-01",
    )


def test_sample_payments_reject_unknown_patient_and_both_duplicates(client: FlaskClient) -> None:
    sync_sample(client, "patients")
    report = sync_sample(client, "payments")
    assert (report["received"], report["created"], report["rejected"]) == (6, 3, 3)
    assert [(e["index"], e["externalId"]) for e in report["errors"]] == [
        (3, "601"),
        (4, "602"),
        (5, "602"),
    ]
    assert "patientId" in report["errors"][0]["messages"]
    assert "externalId" in report["errors"][1]["messages"]
    created = [p["externalId"] for p in client.get("/payments").get_json()]
    assert created == ["501", "502", "503"]


def test_sample_rick_deckard_total_and_range_query(client: FlaskClient) -> None:
    sync_sample(client, "patients")
    sync_sample(client, "payments")
    assert client.get("/patients/5").get_json()["paymentsTotal"] == Decimal("17.22")
    response = client.get("/patients?payment_min=10&payments_max=20")
    assert response.status_code == 200
    assert [p["externalId"] for p in response.get_json()] == ["5"]
    assert '"paymentsTotal":17.22' in response.get_data(as_text=True)
