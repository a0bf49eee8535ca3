"""Payments snapshots: amount and patientId validation, rules 5-7, totals, timestamps (SPEC §2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app.sync import merge
from tests.support.helpers import (
    REPORT_OUTCOMES,
    error_code,
    patient_record,
    payment_record,
    post_snapshot,
    sync,
)

MISSING = object()


def stored_payments(client: FlaskClient) -> dict[str, dict[str, Any]]:
    """Every live payment, by its externalId."""
    response = client.get("/payments?limit=1000")
    assert response.status_code == 200, response.get_data(as_text=True)
    return {payment["externalId"]: payment for payment in response.get_json()}


def patient(client: FlaskClient, external_id: str) -> dict[str, Any]:
    """One live patient as GET /patients/<externalId> returns it."""
    response = client.get(f"/patients/{external_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def totals(client: FlaskClient, external_id: str) -> tuple[Decimal, int]:
    """(paymentsTotal, paymentsCount) of one live patient."""
    data = patient(client, external_id)
    return data["paymentsTotal"], data["paymentsCount"]


def stamp(text: str) -> datetime:
    """An ISO 8601 timestamp from a response, as an aware datetime."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment


def with_amount(amount: Any) -> dict[str, Any]:
    """Payment m1 of patient p1 with ``amount``, or without the key for MISSING."""
    record = payment_record("m1", "p1")
    if amount is MISSING:
        del record["amount"]
    else:
        record["amount"] = amount
    return record


@pytest.fixture
def seeded(client: FlaskClient) -> dict[str, Any]:
    """Patients p1 and p2, and payment m1 of 10.00 for p1; returns m1 as stored."""
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    return stored_payments(client)["m1"]


# --------------------------------------------------------------------------- amount


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(Decimal("4.455"), id="three_decimals"),
        pytest.param("4.455", id="three_decimals_string"),
        pytest.param("abc", id="non_numeric_string"),
        pytest.param("", id="empty_string"),
        pytest.param("NaN", id="nan_string"),
        pytest.param("Infinity", id="infinity_string"),
        pytest.param(True, id="boolean"),
        pytest.param(None, id="null"),
        pytest.param(MISSING, id="missing"),
        pytest.param(Decimal("1E+10"), id="abs_1e10"),
        pytest.param(Decimal("-1E+10"), id="abs_minus_1e10"),
        pytest.param("10000000000", id="abs_1e10_string"),
        pytest.param(Decimal("1e1000000"), id="overflowing_number"),
        pytest.param(Decimal("-1E+999999999"), id="overflowing_negative_number"),
        pytest.param("1e1000000", id="overflowing_string"),
        pytest.param(Decimal("1e-1000000"), id="underflowing_number"),
        pytest.param({"value": 10}, id="object"),
        pytest.param([10], id="list"),
    ],
)
def test_sync_payments_rejects_invalid_amount_and_keeps_stored_payment(
    client: FlaskClient, seeded: dict[str, Any], amount: Any
) -> None:
    report = sync(client, "payments", [with_amount(amount)])
    assert (report["rejected"], report["deleted"], report["updated"]) == (1, 0, 0)
    [error] = report["errors"]
    assert (error["index"], error["externalId"]) == (0, "m1")
    assert list(error["messages"]) == ["amount"]
    assert stored_payments(client) == {"m1": seeded}


def test_sync_payments_rejects_nan_number_as_invalid_json(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    syncs_before = client.get("/syncs").get_json()
    body = b'[{"externalId":"m1","patientId":"p1","amount":NaN}]'
    response = post_snapshot(client, "payments", body)
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"
    assert stored_payments(client) == {"m1": seeded}
    assert client.get("/syncs").get_json() == syncs_before


@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        pytest.param(12, "12.00", id="integer"),
        pytest.param(Decimal("4.46"), "4.46", id="json_number"),
        pytest.param("7.10", "7.10", id="numeric_string"),
        pytest.param(Decimal("-5.25"), "-5.25", id="negative_refund"),
        pytest.param(Decimal("9999999999.99"), "9999999999.99", id="largest"),
        pytest.param(Decimal("-9999999999.99"), "-9999999999.99", id="smallest"),
        pytest.param(Decimal("4.450"), "4.45", id="trailing_zero"),
        pytest.param(Decimal("1E+2"), "100.00", id="exponent"),
        pytest.param(0, "0.00", id="zero"),
    ],
)
def test_sync_payments_stores_valid_amount_exactly(
    client: FlaskClient, amount: Any, stored: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(client, "payments", [payment_record("m1", "p1", amount)])
    assert (report["created"], report["rejected"]) == (1, 0)
    assert str(stored_payments(client)["m1"]["amount"]) == stored


def test_sync_payments_sends_exponent_amount_as_json_number(client: FlaskClient) -> None:
    # Guards the test above: 1E+2 must reach the app as a JSON number, not a string.
    sync(client, "patients", [patient_record("p1")])
    body = b'[{"externalId":"m1","patientId":"p1","amount":1E+2}]'
    response = post_snapshot(client, "payments", body)
    assert response.status_code == 200
    assert response.get_json()["created"] == 1
    assert stored_payments(client)["m1"]["amount"] == Decimal("100.00")


def test_sync_payments_amount_round_trips_as_exact_json_number(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", Decimal("0.10"))])
    assert '"amount":0.10' in client.get("/payments").get_data(as_text=True)


def test_sync_payments_resending_equal_amount_in_another_form_is_unchanged(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [payment_record("m1", "p1", "10")])
    assert (report["unchanged"], report["updated"]) == (1, 0)
    assert stored_payments(client) == {"m1": seeded}


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param("\uff11\uff12", id="fullwidth_digits"),
        pytest.param("\u0661\u0662", id="arabic_indic_digits"),
    ],
)
def test_sync_payments_rejects_amount_with_non_ascii_digits(
    client: FlaskClient, amount: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(client, "payments", [payment_record("m1", "p1", amount)])
    assert report["rejected"] == 1
    assert "amount" in report["errors"][0]["messages"]


# --------------------------------------------------------------------------- patientId


@pytest.mark.parametrize(
    "patient_id",
    [
        pytest.param(Decimal("5.5"), id="float"),
        pytest.param(Decimal("5.0"), id="integral_float"),
        pytest.param(True, id="boolean"),
        pytest.param("", id="empty_string"),
        pytest.param({"id": "5"}, id="object"),
        pytest.param(["5"], id="list"),
        pytest.param(None, id="null"),
    ],
)
def test_sync_payments_rejects_invalid_patient_id(client: FlaskClient, patient_id: Any) -> None:
    sync(client, "patients", [patient_record("5"), patient_record("True")])
    report = sync(client, "payments", [payment_record("m1", patient_id=patient_id)])
    assert (report["rejected"], report["created"]) == (1, 0)
    [error] = report["errors"]
    assert (error["externalId"], list(error["messages"])) == ("m1", ["patientId"])
    assert stored_payments(client) == {}


def test_sync_payments_rejects_missing_patient_id(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    record = payment_record("m1")
    del record["patientId"]
    report = sync(client, "payments", [record])
    assert report["rejected"] == 1
    assert list(report["errors"][0]["messages"]) == ["patientId"]


def test_sync_payments_integer_patient_id_matches_patient_external_id_string(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("5")])
    report = sync(client, "payments", [payment_record("m1", patient_id=5, amount="3.00")])
    assert (report["created"], report["rejected"]) == (1, 0)
    assert stored_payments(client)["m1"]["patientId"] == "5"
    assert totals(client, "5") == (Decimal("3.00"), 1)


# --------------------------------------------------------------------------- rule 7


def test_sync_payments_rejects_payment_of_unknown_patient(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(client, "payments", [payment_record("m1", "ghost")])
    assert (report["rejected"], report["created"]) == (1, 0)
    [error] = report["errors"]
    assert (error["index"], error["externalId"]) == (0, "m1")
    assert list(error["messages"]) == ["patientId"]
    assert stored_payments(client) == {}


def test_sync_payments_rejects_payment_of_soft_deleted_patient(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "patients", [patient_record("p2")])
    report = sync(client, "payments", [payment_record("m1", "p1")])
    assert (report["rejected"], report["created"]) == (1, 0)
    assert list(report["errors"][0]["messages"]) == ["patientId"]
    assert stored_payments(client) == {}


def test_sync_payments_unknown_patient_rejection_keeps_stored_payment(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [payment_record("m1", "ghost", Decimal("99.00"))])
    assert (report["rejected"], report["deleted"], report["updated"]) == (1, 0, 0)
    assert stored_payments(client) == {"m1": seeded}
    assert totals(client, "p1") == (Decimal("10.00"), 1)


def test_sync_payments_deleted_patient_rejection_keeps_stored_payment(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "patients", [patient_record("p2")])
    report = sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    assert (report["rejected"], report["deleted"]) == (1, 0)
    assert stored_payments(client) == {"m1": seeded}


# --------------------------------------------------------------------------- patient soft delete


def test_soft_deleting_patient_keeps_its_payments_live(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "patients", [patient_record("p2")])
    assert report["deleted"] == 1
    assert stored_payments(client) == {"m1": seeded}
    assert client.get("/payments?external_id=p1").get_json() == [seeded]
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["p2"]
    assert client.get("/patients/p1").status_code == 404


def test_restored_patient_keeps_its_payments_total(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "patients", [patient_record("p2")])
    report = sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    assert report["restored"] == 1
    assert totals(client, "p1") == (Decimal("10.00"), 1)


# --------------------------------------------------------------------------- totals


def test_sync_payments_sets_patient_totals_on_create(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client,
        "payments",
        [
            payment_record("m1", "p1", Decimal("10.00")),
            payment_record("m2", "p1", Decimal("-2.50")),
            payment_record("m3", "p2", Decimal("0.01")),
        ],
    )
    assert totals(client, "p1") == (Decimal("7.50"), 2)
    assert totals(client, "p2") == (Decimal("0.01"), 1)


def test_patient_without_payments_has_zero_totals(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    assert totals(client, "p1") == (Decimal("0.00"), 0)


def test_sync_payments_updates_patient_total_on_amount_change(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "payments", [payment_record("m1", "p1", Decimal("12.34"))])
    assert totals(client, "p1") == (Decimal("12.34"), 1)


def test_sync_payments_moving_payment_updates_both_patient_totals(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [payment_record("m1", "p2", Decimal("10.00"))])
    assert report["updated"] == 1
    assert stored_payments(client)["m1"]["patientId"] == "p2"
    assert totals(client, "p1") == (Decimal("0.00"), 0)
    assert totals(client, "p2") == (Decimal("10.00"), 1)


def test_sync_payments_deleting_payment_updates_patient_total(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [payment_record("m2", "p1", Decimal("1.00"))])
    assert (report["deleted"], report["created"]) == (1, 1)
    assert stored_payments(client).keys() == {"m2"}
    assert totals(client, "p1") == (Decimal("1.00"), 1)


def test_sync_payments_deleted_payment_leaves_patient_total_at_zero(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [])
    assert report["deleted"] == 1
    assert stored_payments(client) == {}
    assert totals(client, "p1") == (Decimal("0.00"), 0)


def test_sync_payments_restoring_payment_updates_patient_total(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "payments", [])
    report = sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    assert report["restored"] == 1
    assert totals(client, "p1") == (Decimal("10.00"), 1)


def test_sync_payments_restoring_payment_to_other_patient_updates_its_total(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "payments", [])
    report = sync(client, "payments", [payment_record("m1", "p2", Decimal("4.00"))])
    assert report["restored"] == 1
    assert totals(client, "p1") == (Decimal("0.00"), 0)
    assert totals(client, "p2") == (Decimal("4.00"), 1)


def test_sync_payments_unchanged_resend_keeps_patient_totals(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    before = patient(client, "p1")
    report = sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    assert report["unchanged"] == 1
    assert patient(client, "p1") == before
    assert (before["paymentsTotal"], before["paymentsCount"]) == (Decimal("10.00"), 1)


def test_sync_payments_dry_run_keeps_patient_totals(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    before = {external_id: patient(client, external_id) for external_id in ("p1", "p2")}
    report = sync(
        client,
        "payments",
        [payment_record("m1", "p2", Decimal("50.00")), payment_record("m2", "p1", Decimal("1.00"))],
        query="?dry_run=true",
    )
    assert report["dryRun"] is True
    assert (report["updated"], report["created"]) == (1, 1)
    assert {external_id: patient(client, external_id) for external_id in ("p1", "p2")} == before
    assert stored_payments(client) == {"m1": seeded}


# --------------------------------------------------------------------------- timestamps


def test_sync_payments_insert_sets_created_and_updated_to_sync_start(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(client, "payments", [payment_record("m1", "p1")])
    payment = stored_payments(client)["m1"]
    started = stamp(report["startedAt"])
    assert stamp(payment["created"]) == started
    assert stamp(payment["updated"]) == started


def test_sync_payments_amount_change_moves_updated_not_created(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(client, "payments", [payment_record("m1", "p1", Decimal("11.00"))])
    payment = stored_payments(client)["m1"]
    assert stamp(payment["created"]) == stamp(seeded["created"])
    assert stamp(payment["updated"]) == stamp(report["startedAt"])
    assert stamp(payment["updated"]) > stamp(seeded["updated"])


def test_sync_payments_unchanged_resend_keeps_updated(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    payment = stored_payments(client)["m1"]
    assert (payment["created"], payment["updated"]) == (seeded["created"], seeded["updated"])


def test_sync_payments_restore_keeps_id_and_created(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    sync(client, "payments", [])
    report = sync(client, "payments", [payment_record("m1", "p1", Decimal("10.00"))])
    payment = stored_payments(client)["m1"]
    assert payment["id"] == seeded["id"]
    assert stamp(payment["created"]) == stamp(seeded["created"])
    assert stamp(payment["updated"]) == stamp(report["startedAt"])


# --------------------------------------------------------------------------- rule 6


def test_sync_payments_rejects_every_occurrence_of_duplicated_external_id(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(
        client,
        "payments",
        [
            payment_record("m1", "p1", "1.00"),
            payment_record("m2", "p1", "2.00"),
            payment_record("m1", "p1", "1.00"),
        ],
    )
    assert (report["created"], report["rejected"]) == (1, 2)
    assert [(e["index"], e["externalId"]) for e in report["errors"]] == [(0, "m1"), (2, "m1")]
    assert all("externalId" in e["messages"] for e in report["errors"])
    assert stored_payments(client).keys() == {"m2"}


def test_sync_payments_rejects_duplicates_even_when_one_occurrence_is_invalid(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    report = sync(
        client,
        "payments",
        [payment_record("m1", "p1", Decimal("20.00")), payment_record("m1", "p1", "abc")],
    )
    assert (report["rejected"], report["updated"], report["deleted"]) == (2, 0, 0)
    first, second = report["errors"]
    assert (first["index"], list(first["messages"])) == (0, ["externalId"])
    assert (second["index"], set(second["messages"])) == (1, {"amount", "externalId"})
    assert stored_payments(client) == {"m1": seeded}


def test_sync_payments_integer_and_string_external_id_are_duplicates(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    report = sync(client, "payments", [payment_record(7, "p1"), payment_record("7", "p1")])
    assert (report["created"], report["rejected"]) == (0, 2)
    assert stored_payments(client) == {}


# --------------------------------------------------------------------------- report counts


def test_sync_payments_mixed_upload_counts_every_element_once(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record(f"m{n}", "p1", n) for n in range(1, 5)])
    sync(client, "payments", [payment_record(f"m{n}", "p1", n) for n in range(1, 4)])
    records = [
        payment_record("m1", "p1", 1),  # unchanged
        payment_record("m2", "p2", 2),  # updated (moved)
        payment_record("m4", "p1", 4),  # restored
        payment_record("m5", "p2", "5.55"),  # created
        payment_record("m6", "p1", Decimal("0.001")),  # rejected: precision
        payment_record("m7", "ghost", 7),  # rejected: rule 7
        payment_record("m8", "p1", 8),  # rejected: rule 6
        payment_record("m8", "p1", 8),  # rejected: rule 6
        {"externalId": None},  # rejected: unreadable
    ]  # m3 absent: deleted
    report = sync(client, "payments", records)
    counts = {name: report[name] for name in (*REPORT_OUTCOMES, "deleted")}
    assert counts == {
        "created": 1,
        "updated": 1,
        "restored": 1,
        "unchanged": 1,
        "rejected": 5,
        "deleted": 1,
    }
    assert sum(report[name] for name in REPORT_OUTCOMES) == report["received"] == len(records)
    assert [e["index"] for e in report["errors"]] == [4, 5, 6, 7, 8]
    assert report["errors"][-1]["externalId"] is None
    assert stored_payments(client).keys() == {"m1", "m2", "m4", "m5"}


@pytest.mark.postgresql_only
@pytest.mark.parametrize("app_config", [{"SYNC_WORK_MEM": "200MB"}])
def test_a_sync_runs_with_the_configured_work_mem(client: FlaskClient) -> None:
    seen: list[str] = []
    build_plan = merge.build_plan

    def watching(connection: sa.Connection, *args: Any, **kwargs: Any) -> Any:
        seen.append(connection.scalar(sa.text("SHOW work_mem")))
        return build_plan(connection, *args, **kwargs)

    sync(client, "patients", [patient_record("p1")])
    with mock.patch.object(merge, "build_plan", watching):
        sync(client, "payments", [payment_record("m1", "p1")])
    assert seen == ["200MB"]


# --------------------------------------------------------------------------- the plan


def test_sync_deletes_exactly_the_absent_rows_whatever_the_other_elements_do(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1")])
    names = ("same", "changed", "twice", "rejected", "restored", "absent")
    sync(client, "payments", [payment_record(name, "p1", "1.00") for name in names])
    without_restored = [payment_record(name, "p1", "1.00") for name in names if name != "restored"]
    assert sync(client, "payments", without_restored)["deleted"] == 1
    report = sync(
        client,
        "payments",
        [
            payment_record("same", "p1", "1.00"),
            payment_record("changed", "p1", "2.00"),
            payment_record("twice", "p1", "1.00"),
            payment_record("twice", "p1", "1.00"),
            payment_record("rejected", "p1", "abc"),
            payment_record("restored", "p1", "1.00"),
            payment_record("new", "p1", "1.00"),
        ],
    )
    counts = {name: report[name] for name in (*REPORT_OUTCOMES, "deleted")}
    assert counts == {
        "created": 1,
        "updated": 1,
        "restored": 1,
        "unchanged": 1,
        "rejected": 3,
        "deleted": 1,
    }
    assert stored_payments(client).keys() == {
        "same",
        "changed",
        "twice",
        "rejected",
        "restored",
        "new",
    }


def test_a_resend_plans_no_rows(client: FlaskClient) -> None:
    planned: list[int] = []
    build_plan = merge.build_plan

    def watching(*args: Any, **kwargs: Any) -> int:
        planned.append(build_plan(*args, **kwargs))
        return planned[-1]

    sync(client, "patients", [patient_record("p1")])
    records = [payment_record(f"m{n}", "p1", f"{n}.00") for n in range(1, 6)]
    with mock.patch.object(merge, "build_plan", watching):
        first = sync(client, "payments", records)
        again = sync(client, "payments", records)
    assert (first["created"], again["unchanged"], again["deleted"]) == (5, 5, 0)
    assert planned == [5, 0]
