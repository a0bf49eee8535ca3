"""An initial load builds its table's indexes and keys once, in bulk (issue 21).

A sync that creates at least SYNC_BULK_LOAD_MIN_ROWS rows, more than its
table holds, drops the table's secondary indexes, unique constraints and
foreign keys inside its transaction and builds them again before it commits
(app/db/deferred_indexes.py). These tests set the threshold to 1, so that a
few records take that path, and check that nothing of the schema or the
answers differs from a load row by row.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.sync import merge
from tests.support.helpers import get_all, patient_record, payment_record, sync

PATIENTS = [patient_record(f"p{n}", firstName=f"Zoë{n}") for n in range(1, 4)]
PAYMENTS = [
    payment_record("m1", "p1", "10.00"),
    payment_record("m2", "p1", "2.50"),
    payment_record("m3", "p2", "7.25"),
    payment_record("m4", "p9", "1.00"),  # no such patient: rejected (rule 7)
    payment_record("m5", "p3", "0.01"),
]

# Each index and constraint of the synced tables: (name, definition, the index's oid).
Schema = dict[str, tuple[str, int]]


def schema(app: Flask) -> Schema:
    """The indexes and constraints of patients and payments, as the catalog has them."""
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indexrelid::int"
                " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid IN ('patients'::regclass, 'payments'::regclass)"
                " UNION ALL SELECT conname, pg_get_constraintdef(oid), conindid::int"
                " FROM pg_constraint"
                " WHERE conrelid IN ('patients'::regclass, 'payments'::regclass)"
            )
        ).all()
    return {f"{name}:{kind}": (definition, oid) for kind, (name, definition, oid) in _tagged(rows)}


def _tagged(rows: list[Any]) -> list[tuple[str, Any]]:
    # An index and the constraint it backs share a name: tell them apart.
    return [("index" if "INDEX" in row[1] else "constraint", row) for row in rows]


def definitions(described: Schema) -> dict[str, str]:
    """The schema without the oids: what must be the same after a load in bulk."""
    return {name: definition for name, (definition, _oid) in described.items()}


def rebuilt(before: Schema, after: Schema) -> set[str]:
    """Names of the indexes a load dropped and built again (a new oid)."""
    return {name for name, (_definition, oid) in after.items() if oid and oid != before[name][1]}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Every load of more rows than its table holds goes in bulk."""
    return {"SYNC_BULK_LOAD_MIN_ROWS": 1}


def test_a_load_in_bulk_answers_as_a_load_row_by_row(client: FlaskClient) -> None:
    patients = sync(client, "patients", PATIENTS)
    payments = sync(client, "payments", PAYMENTS)

    assert (patients["created"], payments["created"], payments["rejected"]) == (3, 4, 1)
    assert [error["index"] for error in payments["errors"]] == [3]
    by_id = {p["externalId"]: p for p in get_all(client, "/patients")}
    assert {key: (p["paymentsTotal"], p["paymentsCount"]) for key, p in by_id.items()} == {
        "p1": (Decimal("12.50"), 2),
        "p2": (Decimal("7.25"), 1),
        "p3": (Decimal("0.01"), 1),
    }
    assert [p["externalId"] for p in get_all(client, "/payments")] == ["m1", "m2", "m3", "m5"]


@pytest.mark.postgresql_only
def test_a_load_in_bulk_builds_every_index_and_key_again_as_defined(
    app: Flask, client: FlaskClient
) -> None:
    before = schema(app)

    sync(client, "patients", PATIENTS)
    after_patients = schema(app)
    sync(client, "payments", PAYMENTS)
    after = schema(app)

    assert definitions(after) == definitions(before)
    assert rebuilt(before, after_patients) == {
        "ix_patients_live_total_desc_id:index",
        "ix_patients_live_total_id:index",
        "ix_patients_name_search_trgm:index",
        "uq_patients_external_id:index",
        "uq_patients_external_id:constraint",
    }
    # The payments load rebuilt its own table's, and the patients' on their totals,
    # which it moved.
    assert rebuilt(after_patients, after) == {
        "ix_payments_live_patient_id_id:index",
        "uq_payments_external_id:index",
        "uq_payments_external_id:constraint",
        "ix_patients_live_total_id:index",
        "ix_patients_live_total_desc_id:index",
    }


@pytest.mark.postgresql_only
def test_the_foreign_key_built_again_is_enforced(app: Flask, client: FlaskClient) -> None:
    sync(client, "patients", PATIENTS)
    sync(client, "payments", PAYMENTS)

    with app.app_context(), pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.execute(
            sa.text(
                "INSERT INTO payments (external_id, amount, patient_id, created, updated)"
                " VALUES ('orphan', 1, -1, now(), now())"
            )
        )


@pytest.mark.postgresql_only
def test_a_re_sync_of_a_few_new_rows_keeps_the_indexes(app: Flask, client: FlaskClient) -> None:
    sync(client, "patients", PATIENTS)
    sync(client, "payments", PAYMENTS)
    before = schema(app)

    report = sync(client, "payments", [*PAYMENTS, payment_record("m6", "p2", "3.00")])

    assert report["created"] == 1
    assert rebuilt(before, schema(app)) == set()


@pytest.mark.postgresql_only
def test_a_dry_run_in_bulk_leaves_the_schema_as_it_was(app: Flask, client: FlaskClient) -> None:
    sync(client, "patients", PATIENTS)
    before = schema(app)

    report = sync(client, "payments", PAYMENTS, query="?dry_run=true")

    assert report["created"] == 4
    assert schema(app) == before
    assert client.get("/payments").get_json() == []


@pytest.mark.postgresql_only
def test_a_table_a_reader_holds_is_loaded_row_by_row_without_waiting_for_it(
    app: Flask, client: FlaskClient, postgres_url: str
) -> None:
    sync(client, "patients", PATIENTS)
    before = schema(app)
    reader = sa.create_engine(postgres_url)
    try:
        with reader.connect() as connection, connection.begin():
            # A long read (a CSV export, say) holds the table until it ends.
            connection.execute(sa.text("LOCK TABLE payments IN ACCESS SHARE MODE"))
            report = sync(client, "payments", PAYMENTS)
    finally:
        reader.dispose()

    assert report["created"] == 4
    assert rebuilt(before, schema(app)) == set()
    assert client.get("/patients/p1").get_json()["paymentsTotal"] == Decimal("12.50")


def stored_ids(app: Flask, table: str) -> dict[str, int]:
    """externalId → id of every row of ``table``."""
    with app.app_context():
        rows = db.session.execute(sa.text(f"SELECT external_id, id FROM {table}")).all()
    return dict(rows)


@pytest.mark.postgresql_only
def test_a_load_in_bulk_numbers_its_rows_in_upload_order(app: Flask, client: FlaskClient) -> None:
    sync(client, "patients", PATIENTS)
    sync(client, "payments", PAYMENTS)

    ids = stored_ids(app, "payments")
    assert sorted(ids, key=ids.__getitem__) == ["m1", "m2", "m3", "m5"]
    # Each takes the id its index gives: the rejected m4 leaves its id unused.
    assert [ids[key] - ids["m1"] for key in ("m2", "m3", "m5")] == [1, 2, 4]


@pytest.mark.postgresql_only
def test_a_load_in_bulk_takes_ids_above_the_tables_and_below_the_next_rows(
    app: Flask, client: FlaskClient
) -> None:
    sync(client, "patients", PATIENTS)
    sync(client, "payments", PAYMENTS[:1])
    # Three new rows beside one stored: in bulk.
    in_bulk = sync(client, "payments", PAYMENTS)
    # One new row beside four: row by row, its id from the sequence.
    after = sync(client, "payments", [*PAYMENTS, payment_record("m6", "p2", "3.00")])

    ids = stored_ids(app, "payments")
    assert ids["m1"] < ids["m2"] < ids["m3"] < ids["m5"] < ids["m6"]
    for report, created in ((in_bulk, ["m2", "m3", "m5"]), (after, ["m6"])):
        changes = get_all(client, f"/syncs/{report['syncId']}/changes")
        assert [(c["externalId"], c["op"]) for c in changes] == [(k, "created") for k in created]


# Rule 6 in a load into an empty table: checked after the fact (app/sync/engine.py).
# Each upload, and the indexes of the two occurrences of m1 in it.
DUPLICATED_UPLOADS = {
    "both valid": ([PAYMENTS[0], PAYMENTS[1], payment_record("m1", "p2", "3.00")], [0, 2]),
    "one with a bad amount": ([PAYMENTS[0], PAYMENTS[1], payment_record("m1", "p1", "x")], [0, 2]),
    "one with an unknown patient": ([PAYMENTS[0], PAYMENTS[1], payment_record("m1", "p9")], [0, 2]),
    "both invalid": (
        [PAYMENTS[1], payment_record("m1", "p9"), payment_record("m1", "p1", "x")],
        [1, 2],
    ),
}


@pytest.mark.parametrize(
    ("upload", "duplicates"), DUPLICATED_UPLOADS.values(), ids=DUPLICATED_UPLOADS.keys()
)
def test_a_load_into_an_empty_table_rejects_every_occurrence_of_a_duplicate(
    client: FlaskClient, upload: list[dict[str, Any]], duplicates: list[int]
) -> None:
    sync(client, "patients", PATIENTS)

    report = sync(client, "payments", upload)

    assert (report["created"], report["rejected"]) == (1, 2)
    assert [error["index"] for error in report["errors"]] == duplicates
    assert all("externalId" in error["messages"] for error in report["errors"])
    assert [p["externalId"] for p in get_all(client, "/payments")] == ["m2"]
    assert client.get("/patients/p1").get_json()["paymentsTotal"] == Decimal("2.50")


def test_a_duplicated_upload_into_an_empty_table_leaves_nothing_of_the_first_attempt(
    app: Flask, client: FlaskClient
) -> None:
    sync(client, "patients", PATIENTS)
    report = sync(client, "payments", DUPLICATED_UPLOADS["both valid"][0])

    changes = get_all(client, f"/syncs/{report['syncId']}/changes")
    assert [(c["externalId"], c["op"]) for c in changes] == [("m2", "created")]
    assert list(stored_ids(app, "payments")) == ["m2"]
    with app.app_context():
        versions = db.session.scalar(sa.text("SELECT count(*) FROM payment_versions"))
    assert versions == 0


def test_an_initial_load_without_duplicates_does_not_count_every_external_id(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(client, "patients", PATIENTS)

    def counted(*args: Any) -> None:
        raise AssertionError("rule 6 counted every externalId of an initial load")

    monkeypatch.setattr(merge, "reject_duplicates", counted)
    report = sync(client, "payments", PAYMENTS)

    assert (report["created"], report["rejected"]) == (4, 1)


@pytest.mark.postgresql_only
def test_a_duplicate_is_rejected_when_a_reader_keeps_the_load_row_by_row(
    app: Flask, client: FlaskClient, postgres_url: str
) -> None:
    sync(client, "patients", PATIENTS)
    reader = sa.create_engine(postgres_url)
    try:
        with reader.connect() as connection, connection.begin():
            connection.execute(sa.text("LOCK TABLE payments IN ACCESS SHARE MODE"))
            report = sync(client, "payments", DUPLICATED_UPLOADS["both valid"][0])
    finally:
        reader.dispose()

    assert (report["created"], report["rejected"]) == (1, 2)
    assert list(stored_ids(app, "payments")) == ["m2"]


def test_a_patients_load_into_an_empty_table_rejects_every_occurrence_of_a_duplicate(
    client: FlaskClient,
) -> None:
    report = sync(client, "patients", [*PATIENTS, patient_record("p1", firstName="Ann")])

    assert (report["created"], report["rejected"]) == (2, 2)
    assert [error["index"] for error in report["errors"]] == [0, 3]
    assert [p["externalId"] for p in get_all(client, "/patients")] == ["p2", "p3"]
