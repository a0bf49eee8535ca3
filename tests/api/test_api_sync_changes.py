"""GET /syncs/<syncId>/changes: what each sync changed, op by op (SPEC §5)."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import (
    error_code,
    get_all,
    patient_record,
    payment_record,
    random_syncs,
    sync,
)

OPS = ("created", "updated", "deleted", "restored")

# The shape of the random sync sequences these tests replay.
SYNC_SEQUENCE: dict[str, Any] = {"rounds": 10, "patients": 8, "payments": 12, "keep": 0.7}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget and no mass-delete guard: random sequences delete a lot."""
    return {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6}


def changes(client: FlaskClient, sync_id: int, limit: int = 7) -> list[dict[str, Any]]:
    """Every change of a sync, following the Link pages."""
    return get_all(client, f"/syncs/{sync_id}/changes?limit={limit}")


def test_changes_of_a_sync_show_before_after_and_changed_fields(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client, "payments", [payment_record("m1", "p1", "4.46"), payment_record("m2", "p1", "1.00")]
    )
    report = sync(
        client, "payments", [payment_record("m1", "p2", "5.00"), payment_record("m3", "p1", "2.00")]
    )
    by_id = {change["externalId"]: change for change in changes(client, report["syncId"])}
    assert by_id["m1"] == {
        "entity": "payments",
        "externalId": "m1",
        "op": "updated",
        "before": {"externalId": "m1", "patientId": "p1", "amount": Decimal("4.46")},
        "after": {"externalId": "m1", "patientId": "p2", "amount": Decimal("5.00")},
        "changedFields": ["patientId", "amount"],
    }
    assert (by_id["m2"]["op"], by_id["m2"]["after"], by_id["m2"]["changedFields"]) == (
        "deleted",
        None,
        [],
    )
    assert (by_id["m3"]["op"], by_id["m3"]["before"]) == ("created", None)


def test_restore_shows_no_before_and_what_changed_since_the_delete(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a", lastName="Old"), patient_record("b")])
    sync(client, "patients", [patient_record("b")])
    report = sync(client, "patients", [patient_record("a", lastName="New"), patient_record("b")])
    [change] = changes(client, report["syncId"])
    assert (change["op"], change["before"], change["changedFields"]) == (
        "restored",
        None,
        ["lastName"],
    )
    assert change["after"]["lastName"] == "New"


def test_a_dry_run_lists_no_changes(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a")])
    report = sync(client, "patients", [patient_record("b")], query="?dry_run=true")
    assert (report["created"], report["deleted"]) == (1, 1)
    assert changes(client, report["syncId"]) == []


def test_changes_of_an_unknown_sync_are_404(client: FlaskClient) -> None:
    response = client.get("/syncs/999999999/changes")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("seed", range(3))
def test_per_op_counts_equal_the_reports_after_random_syncs(client: FlaskClient, seed: int) -> None:
    reports = [
        sync(client, entity, records)
        for entity, records in random_syncs(random.Random(seed), **SYNC_SEQUENCE)
    ]
    for report in reports:
        counted = Counter(change["op"] for change in changes(client, report["syncId"]))
        assert {op: counted[op] for op in OPS} == {op: report[op] for op in OPS}, report


@pytest.mark.parametrize("seed", range(2))
def test_the_newest_changes_end_at_what_reads_answer(client: FlaskClient, seed: int) -> None:
    reports = [
        sync(client, entity, records)
        for entity, records in random_syncs(random.Random(seed), **SYNC_SEQUENCE)
    ]
    last = reports[-1]
    live = {p["externalId"]: p for p in get_all(client, "/payments?limit=5")}
    for change in changes(client, last["syncId"]):
        if change["op"] == "deleted":
            assert change["externalId"] not in live
        else:
            shown = live[change["externalId"]]
            assert (change["after"]["patientId"], change["after"]["amount"]) == (
                shown["patientId"],
                shown["amount"],
            )
