"""Patients snapshot semantics: merge rules 1-6, validation, timestamps, guard, dry run."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import patient_record, post_snapshot, sync


def stored(client: FlaskClient, external_id: str) -> dict[str, Any] | None:
    response = client.get(f"/patients/{external_id}")
    return response.get_json() if response.status_code == 200 else None


def live_ids(client: FlaskClient) -> list[str]:
    return [p["externalId"] for p in client.get("/patients?limit=1000").get_json()]


# --------------------------------------------------------------------------- merge rules


def test_sync_creates_unknown_patients(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert (report["created"], report["received"]) == (2, 2)
    assert live_ids(client) == ["a", "b"]


def test_sync_updates_patient_whose_fields_differ(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a", firstName="Ada")])
    report = sync(client, "patients", [patient_record("a", firstName="Augusta")])
    assert (report["updated"], report["unchanged"], report["created"]) == (1, 0, 0)
    assert stored(client, "a")["firstName"] == "Augusta"


@pytest.mark.parametrize(
    "change",
    [
        {"lastName": "Byron"},
        {"middleName": "King"},
        {"dateOfBirth": "1815-12-11"},
        {"dateOfBirth": None},
    ],
)
def test_sync_detects_a_change_in_any_field(client: FlaskClient, change: dict) -> None:
    sync(client, "patients", [patient_record("a", middleName=None)])
    report = sync(client, "patients", [patient_record("a", middleName=None) | change])
    assert report["updated"] == 1


def test_sync_counts_identical_patient_as_unchanged(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a")])
    report = sync(client, "patients", [patient_record("a")])
    assert (report["unchanged"], report["updated"]) == (1, 0)


def test_sync_soft_deletes_patients_missing_from_snapshot(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    report = sync(client, "patients", [patient_record("a")])
    assert report["deleted"] == 1
    assert live_ids(client) == ["a"]
    assert stored(client, "b") is None


def test_sync_restores_soft_deleted_patient_keeping_id_and_created(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    before = stored(client, "b")
    sync(client, "patients", [patient_record("a")])
    report = sync(client, "patients", [patient_record("a"), patient_record("b", lastName="New")])
    assert (report["restored"], report["created"]) == (1, 0)
    after = stored(client, "b")
    assert (after["id"], after["created"]) == (before["id"], before["created"])
    assert after["lastName"] == "New"
    assert after["updated"] == report["startedAt"]


def test_sync_rejected_record_protects_its_stored_row(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a", firstName="Ada")])
    before = stored(client, "a")
    report = sync(client, "patients", [patient_record("a", firstName="")])
    assert (report["rejected"], report["deleted"], report["updated"]) == (1, 0, 0)
    assert stored(client, "a") == before


def test_sync_rejects_every_occurrence_of_a_duplicated_external_id(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a", firstName="Ada")])
    before = stored(client, "a")
    report = sync(
        client,
        "patients",
        [
            patient_record("a", firstName="One"),
            patient_record("b"),
            patient_record("a", firstName="Two"),
        ],
    )
    assert (report["rejected"], report["created"], report["deleted"]) == (2, 1, 0)
    assert [(e["index"], e["externalId"]) for e in report["errors"]] == [(0, "a"), (2, "a")]
    assert all("externalId" in e["messages"] for e in report["errors"])
    assert stored(client, "a") == before


def test_sync_treats_integer_and_string_external_id_as_duplicates(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record(7), patient_record("7")])
    assert report["rejected"] == 2


def test_sync_stores_integer_external_id_as_its_decimal_string(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(42)])
    assert stored(client, "42")["externalId"] == "42"


# --------------------------------------------------------------------------- validation

INVALID_PATIENTS = [
    ("externalId", {"externalId": None}),
    ("externalId", {"externalId": ""}),
    ("externalId", {"externalId": 1.5}),
    ("externalId", {"externalId": True}),
    ("externalId", {"externalId": {"id": 1}}),
    ("externalId", {"externalId": [1]}),
    ("externalId", {"externalId": "x" * 256}),
    ("externalId", {"externalId": "a\x00b"}),
    ("firstName", {"firstName": ""}),
    ("firstName", {"firstName": None}),
    ("firstName", {"firstName": 5}),
    ("firstName", {"firstName": "x" * 256}),
    ("lastName", {"lastName": ""}),
    ("middleName", {"middleName": ""}),
    ("middleName", {"middleName": 3}),
    ("dateOfBirth", {"dateOfBirth": "2021-1-5"}),
    ("dateOfBirth", {"dateOfBirth": "2021-02-30"}),
    ("dateOfBirth", {"dateOfBirth": "2021-02-03T00:00:00"}),
    ("dateOfBirth", {"dateOfBirth": "03/02/2021"}),
    ("dateOfBirth", {"dateOfBirth": 20210203}),
]


@pytest.mark.parametrize(("field", "override"), INVALID_PATIENTS)
def test_sync_rejects_invalid_patient_field(
    client: FlaskClient, field: str, override: dict
) -> None:
    report = sync(client, "patients", [patient_record("ok"), patient_record("bad") | override])
    assert (report["created"], report["rejected"]) == (1, 1)
    error = report["errors"][0]
    assert error["index"] == 1
    assert field in error["messages"]


@pytest.mark.parametrize("missing", ["externalId", "firstName", "lastName"])
def test_sync_rejects_patient_missing_required_field(client: FlaskClient, missing: str) -> None:
    record = patient_record("a")
    del record[missing]
    report = sync(client, "patients", [record])
    assert report["rejected"] == 1
    assert missing in report["errors"][0]["messages"]


@pytest.mark.parametrize("element", [None, 5, "a", [], True])
def test_sync_rejects_elements_that_are_not_objects(client: FlaskClient, element: Any) -> None:
    report = sync(client, "patients", [element])
    assert report["rejected"] == 1
    assert report["errors"][0] == {
        "index": 0,
        "externalId": None,
        "messages": report["errors"][0]["messages"],
    }
    assert report["errors"][0]["messages"]


def test_sync_reports_null_external_id_when_it_cannot_be_read(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record(None)])
    assert report["errors"][0]["externalId"] is None


def test_sync_reports_external_id_of_rejected_record_when_readable(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a", lastName=None)])
    assert report["errors"][0]["externalId"] == "a"


def test_sync_stores_names_and_ids_exactly_as_sent(client: FlaskClient) -> None:
    record = patient_record(
        " x/é ",
        firstName="  Zoë\t",
        lastName="O'Brien-Łukasz 🙂",
        middleName="x" * 255,
        dateOfBirth="2094-02-01",
    )
    sync(client, "patients", [record])
    [patient] = client.get("/patients").get_json()
    assert (
        patient["externalId"],
        patient["firstName"],
        patient["lastName"],
        patient["middleName"],
        patient["dateOfBirth"],
    ) == (" x/é ", "  Zoë\t", "O'Brien-Łukasz 🙂", "x" * 255, "2094-02-01")


def test_sync_accepts_missing_optional_fields_and_ignores_unknown_keys(client: FlaskClient) -> None:
    record = {"externalId": "a", "firstName": "A", "lastName": "B", "shoeSize": 44}
    report = sync(client, "patients", [record])
    assert report["created"] == 1
    patient = stored(client, "a")
    assert (patient["middleName"], patient["dateOfBirth"]) == (None, None)


def test_sync_lists_errors_in_upload_order_and_truncates(client: FlaskClient, app) -> None:
    app.config["SYNC_MAX_ERRORS"] = 3
    records = [patient_record(f"p{i}", firstName="" if i % 2 else "A") for i in range(10)]
    report = sync(client, "patients", records)
    assert report["rejected"] == 5
    assert [e["index"] for e in report["errors"]] == [1, 3, 5]
    assert report["errorsTruncated"] is True


def test_sync_report_is_not_truncated_when_errors_fit(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a", firstName="")])
    assert report["errorsTruncated"] is False


# --------------------------------------------------------------------------- timestamps


def test_sync_insert_sets_created_and_updated_to_sync_start(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a")])
    patient = stored(client, "a")
    assert patient["created"] == patient["updated"] == report["startedAt"]
    assert report["startedAt"].endswith("+00:00")


def test_sync_change_moves_updated_but_never_created(client: FlaskClient) -> None:
    first = sync(client, "patients", [patient_record("a")])
    second = sync(client, "patients", [patient_record("a", lastName="Changed")])
    patient = stored(client, "a")
    assert patient["created"] == first["startedAt"]
    assert patient["updated"] == second["startedAt"]


def test_sync_unchanged_record_keeps_its_updated(client: FlaskClient) -> None:
    first = sync(client, "patients", [patient_record("a")])
    sync(client, "patients", [patient_record("a")])
    assert stored(client, "a")["updated"] == first["startedAt"]


def test_sync_shares_one_timestamp_across_all_rows(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record(f"p{i}") for i in range(5)])
    stamps = {p["updated"] for p in client.get("/patients").get_json()}
    assert stamps == {report["startedAt"]}


# --------------------------------------------------------------------------- guarantees


def test_sync_resend_is_idempotent(client: FlaskClient) -> None:
    records = [patient_record("a"), patient_record("b"), patient_record("c", firstName="")]
    sync(client, "patients", records)
    before = client.get("/patients").get_json()
    report = sync(client, "patients", records)
    assert report["unchanged"] == report["received"] - report["rejected"] == 2
    assert (report["created"], report["updated"], report["deleted"]) == (0, 0, 0)
    assert client.get("/patients").get_json() == before


def test_sync_counts_add_up_on_a_mixed_upload(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(x) for x in ("keep", "change", "drop", "back")])
    sync(client, "patients", [patient_record(x) for x in ("keep", "change", "drop")])
    report = sync(
        client,
        "patients",
        [
            patient_record("keep"),
            patient_record("change", lastName="Z"),
            patient_record("back"),
            patient_record("new"),
            patient_record("bad", firstName=""),
            patient_record("new"),
        ],
    )
    assert {
        k: report[k] for k in ("created", "updated", "restored", "unchanged", "rejected", "deleted")
    } == {"created": 0, "updated": 1, "restored": 1, "unchanged": 1, "rejected": 3, "deleted": 1}
    assert report["received"] == 6


def test_sync_dry_run_reports_and_changes_nothing(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    before = client.get("/patients").get_json()
    report = sync(
        client,
        "patients",
        [patient_record("a", lastName="Z"), patient_record("c")],
        query="?dry_run=true",
    )
    assert report["dryRun"] is True
    assert (report["updated"], report["created"], report["deleted"]) == (1, 1, 1)
    assert client.get("/patients").get_json() == before


def test_sync_dry_run_is_recorded_in_sync_history(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a")], query="?dry_run=true")
    # Stored as the POST returned it, its data position included (SPEC §8).
    assert report["dataPosition"]
    assert client.get(f"/syncs/{report['syncId']}").get_json() == report


def test_sync_accepts_an_empty_snapshot_below_the_guard(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a")])
    report = sync(client, "patients", [])
    assert (report["received"], report["deleted"]) == (0, 1)


@pytest.fixture
def guarded(app) -> None:
    """A small mass-delete guard: refuse deleting over half of at least 4 live rows."""
    app.config.update(SYNC_GUARD_MIN_ROWS=4, SYNC_MAX_DELETE_RATIO=0.5)


def test_sync_refuses_mass_delete_and_changes_nothing(client: FlaskClient, guarded) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(4)])
    before = client.get("/patients").get_json()
    response = post_snapshot(client, "patients", [patient_record("p0", lastName="Z")])
    assert response.status_code == 409
    body = response.get_json()["error"]
    assert body["code"] == "mass_delete_refused"
    assert (body["details"]["live"], body["details"]["wouldDelete"]) == (4, 3)
    assert client.get("/patients").get_json() == before


def test_sync_mass_delete_goes_through_with_force(client: FlaskClient, guarded) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(4)])
    report = sync(client, "patients", [patient_record("p0")], query="?force=true")
    assert report["deleted"] == 3
    assert live_ids(client) == ["p0"]


def test_sync_guard_allows_deleting_exactly_the_ratio(client: FlaskClient, guarded) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(4)])
    report = sync(client, "patients", [patient_record("p0"), patient_record("p1")])
    assert report["deleted"] == 2


def test_sync_guard_ignores_small_tables(client: FlaskClient, guarded) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(3)])
    report = sync(client, "patients", [])
    assert report["deleted"] == 3


def test_sync_refused_sync_is_not_recorded(client: FlaskClient, guarded) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(4)])
    post_snapshot(client, "patients", [])
    assert len(client.get("/syncs").get_json()) == 1


def test_sync_rejects_only_the_record_with_a_gigantic_integer_external_id(
    client: FlaskClient,
) -> None:
    body = (
        '[{"externalId": ' + "9" * 5000 + ', "firstName": "A", "lastName": "B"},'
        ' {"externalId": "ok", "firstName": "A", "lastName": "B"}]'
    ).encode()
    response = post_snapshot(client, "patients", body)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["created"], report["rejected"]) == (1, 1)
    assert "externalId" in report["errors"][0]["messages"]


def test_sync_stores_copy_special_characters_exactly(client: FlaskClient) -> None:
    tricky = ["\\N", "a\\b", "tab\there", "line\nbreak", "cr\rhere", "\\", "end\\"]
    sync(
        client,
        "patients",
        [patient_record(f"t{i}", firstName=name, middleName=name) for i, name in enumerate(tricky)],
    )
    stored_names = {
        p["externalId"]: (p["firstName"], p["middleName"])
        for p in client.get("/patients").get_json()
    }
    assert stored_names == {f"t{i}": (name, name) for i, name in enumerate(tricky)}
