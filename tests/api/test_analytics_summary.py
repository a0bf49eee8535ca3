"""GET /analytics/summary (SPEC §3): counts, the amount, and the spread of live patients' totals."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support.analytics_model import Replica, random_history, summary
from tests.support.helpers import error_code, patient_record, payment_record, sync

ZEROS = {
    "patients": 0,
    "payments": 0,
    "totalAmount": "0.00",
    "patientsWithoutPayments": 0,
    "patientTotals": {key: "0.00" for key in ("min", "max", "mean", "p50", "p90", "p99")},
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget and no mass-delete guard: random histories delete a lot."""
    return {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6}


def get_summary(client: FlaskClient, query: str = "") -> dict[str, Any]:
    response = client.get(f"/analytics/summary{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    return response.get_json()


def post(
    client: FlaskClient, replica: Replica, entity: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Sync ``records`` and apply them to the model too."""
    report = sync(client, entity, records)
    assert report["rejected"] == 0
    replica.apply(entity, records)
    return report


def test_summary_before_any_data_is_zero_counts_and_zero_amounts(client: FlaskClient) -> None:
    assert get_summary(client) == ZEROS


@pytest.mark.parametrize("seed", range(4))
def test_summary_equals_a_model_of_the_posted_data_after_every_sync(
    client: FlaskClient, seed: int
) -> None:
    replica = Replica()
    for entity, records in random_history(random.Random(seed), rounds=4):
        post(client, replica, entity, records)
        assert get_summary(client) == summary(replica), (entity, len(records))


def test_summary_amounts_are_strings_with_two_decimals(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", "1234.5"), payment_record("m2", "p2", -3)])
    body = get_summary(client)
    assert body["totalAmount"] == "1231.50"
    assert body["patientTotals"]["min"] == "-3.00"
    assert body["patientTotals"]["max"] == "1234.50"


def test_summary_of_one_patient_is_its_total_everywhere(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(
        client, "payments", [payment_record("m1", "p1", "7.25"), payment_record("m2", "p1", "0.10")]
    )
    body = get_summary(client)
    assert (body["patients"], body["payments"], body["patientsWithoutPayments"]) == (1, 2, 0)
    assert set(body["patientTotals"].values()) == {"7.35"}


def test_summary_percentiles_are_nearest_rank(client: FlaskClient) -> None:
    # Totals 1..10: ranks ceil(5) = 5, ceil(9) = 9, ceil(9.9) = 10.
    sync(client, "patients", [patient_record(f"p{n}") for n in range(1, 11)])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n}", n) for n in range(1, 11)])
    spread = get_summary(client)["patientTotals"]
    assert (spread["p50"], spread["p90"], spread["p99"]) == ("5.00", "9.00", "10.00")


@pytest.mark.parametrize(
    ("amounts", "mean"),
    [(["0.01", "0.00"], "0.00"), (["0.03", "0.00"], "0.02"), (["-0.01", "0.00"], "0.00")],
)
def test_summary_mean_is_rounded_half_to_even_to_the_cent(
    client: FlaskClient, amounts: list[str], mean: str
) -> None:
    sync(client, "patients", [patient_record("p0"), patient_record("p1")])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n}", a) for n, a in enumerate(amounts)])
    # A mean that rounds to zero is 0.00, never -0.00.
    assert get_summary(client)["patientTotals"]["mean"] == mean


def test_summary_counts_a_patient_whose_payments_add_up_to_zero_as_having_payments(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client,
        "payments",
        [payment_record("m1", "p1", "5.00"), payment_record("m2", "p1", "-5.00")],
    )
    body = get_summary(client)
    assert body["patientsWithoutPayments"] == 1
    assert body["patientTotals"]["min"] == body["patientTotals"]["max"] == "0.00"


def test_summary_counts_live_payments_of_deleted_patients_but_not_their_totals(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client, "payments", [payment_record("m1", "p1", "5.00"), payment_record("m2", "p2", "2.00")]
    )
    sync(client, "patients", [patient_record("p2")])
    body = get_summary(client)
    assert (body["patients"], body["payments"], body["totalAmount"]) == (1, 2, "7.00")
    assert body["patientTotals"]["max"] == "2.00"


@pytest.mark.parametrize("seed", range(2))
def test_summary_as_of_each_sync_is_what_it_answered_then(client: FlaskClient, seed: int) -> None:
    answered = []
    for entity, records in random_history(random.Random(seed), rounds=3):
        report = sync(client, entity, records)
        answered.append((report["startedAt"], get_summary(client)))
    for instant, expected in answered:
        assert get_summary(client, f"?as_of={quote(instant)}") == expected, instant


def test_summary_as_of_between_two_syncs_gives_the_earlier_figures(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    first = sync(client, "payments", [payment_record("m1", "p1", "4.00")])
    earlier = get_summary(client)
    sync(
        client, "payments", [payment_record("m1", "p2", "9.00"), payment_record("m2", "p1", "1.00")]
    )
    assert get_summary(client) != earlier
    # An instant after the first payments sync began and before the second.
    between = first["finishedAt"]
    assert get_summary(client, f"?as_of={quote(between)}") == earlier


def test_summary_as_of_before_the_first_sync_is_zeros(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "4.00")])
    assert get_summary(client, "?as_of=2000-01-01T00:00:00Z") == ZEROS


def test_summary_as_of_before_the_history_horizon_is_history_pruned(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    reports = [sync(client, "patients", [patient_record("a", lastName=n)]) for n in ("A", "B")]
    result = runner.invoke(args=["history", "prune", "--before", reports[1]["startedAt"]])
    assert result.exit_code == 0, result.output
    response = client.get(f"/analytics/summary?as_of={quote(reports[0]['startedAt'])}")
    assert response.status_code == 422
    assert error_code(response) == "history_pruned"


@pytest.mark.parametrize("as_of", ["yesterday", "2026-11-21T10:00:00", "2026-11-21T10:00Z"])
def test_summary_rejects_a_malformed_as_of_naming_it(client: FlaskClient, as_of: str) -> None:
    response = client.get(f"/analytics/summary?as_of={quote(as_of)}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "as_of" in response.get_json()["error"]["details"]["parameters"]
