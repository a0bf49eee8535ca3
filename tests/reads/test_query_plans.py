"""The hot read queries are served by their indexes (PostgreSQL plans).

Sequential scans are disabled for the EXPLAIN so that the test checks what
matters at any size: that an index matching the query's shape exists and is
usable. If a query or an index drifts so that none fits, the planner falls
back to a sequential scan anyway and the test fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.reads import live
from app.reads.as_of import live_payments_at, one_patient_at
from app.reads.changes import sync_changes
from app.reads.orderings import PATIENT_SORTS, PAYMENTS_BY_ID, by_record, payments_by_id
from tests.support.helpers import patient_record, payment_record, sync
from tests.support.plans import plan_nodes, rows_read

pytestmark = pytest.mark.postgresql_only


def indexes_used(app: Flask, query: sa.Select[Any]) -> set[str]:
    with app.app_context():
        sql = str(query.compile(db.engine, compile_kwargs={"literal_binds": True}))
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        [plan] = db.session.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()
        db.session.rollback()
    nodes = plan_nodes(plan["Plan"])
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], nodes
    return {n["Index Name"] for n in nodes if "Index Name" in n}


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """A few patients with payments, so the tables have statistics."""
    sync(client, "patients", [patient_record(f"p{i}") for i in range(50)])
    sync(
        client, "payments", [payment_record(f"m{i}", f"p{i % 50}", Decimal(i)) for i in range(200)]
    )


def page(query: sa.Select[Any], sort_key: Any, cursor: list[Any] | None = None) -> sa.Select[Any]:
    if cursor is not None:
        query = query.where(sort_key.after(cursor))
    return query.order_by(*sort_key.order_by()).limit(101)


def test_range_filter_sorted_by_total_uses_the_total_index(app: Flask, seeded: None) -> None:
    query = page(
        live.live_patients(Decimal(100), Decimal(200)),
        PATIENT_SORTS["paymentsTotal"],
        [Decimal(150), 10],
    )
    # On 50 rows the two total indexes cost the planner nearly the same (the
    # descending one read backwards, then an incremental sort of the ties), and
    # which one it picks has flipped with autovacuum's timing; either serves the
    # range from the index, which is what this test is for.
    used = indexes_used(app, query)
    assert used
    assert used <= {"ix_patients_live_total_id", "ix_patients_live_total_desc_id"}


def test_top_payers_use_the_descending_total_index(app: Flask, seeded: None) -> None:
    query = page(live.live_patients(), PATIENT_SORTS["-paymentsTotal"], [Decimal(150), 10])
    assert indexes_used(app, query) == {"ix_patients_live_total_desc_id"}


def test_range_filter_sorted_by_id_uses_an_index(app: Flask, seeded: None) -> None:
    query = page(live.live_patients(Decimal(100), Decimal(200)), PATIENT_SORTS["id"], [10])
    used = indexes_used(app, query)
    assert used
    assert used <= {"pk_patients", "ix_patients_live_total_id", "ix_patients_live_total_desc_id"}


def test_payments_of_a_patient_use_the_patient_index(app: Flask, seeded: None) -> None:
    query = page(live.live_payments("p7"), PAYMENTS_BY_ID, [3])
    assert "ix_payments_live_patient_id_id" in indexes_used(app, query)
    assert "uq_patients_external_id" in indexes_used(app, query)


@pytest.mark.parametrize("which", ["initial-load", "re-sync"])
@pytest.mark.parametrize("after", [None, 150], ids=["first-page", "deep-page"])
def test_a_page_of_changes_reads_about_a_page_of_rows(
    app: Flask, client: FlaskClient, which: str, after: int | None
) -> None:
    # The initial load creates 300 payments; the re-sync changes every amount
    # and creates 100 more. A page of 6 must not read the sync's rows beyond
    # its window from the live table, which has no index on sync_id: a scan
    # for it reads every row.
    sync(client, "patients", [patient_record(f"p{i}") for i in range(10)])
    syncs = {
        "initial-load": sync(
            client,
            "payments",
            [payment_record(f"m{i}", f"p{i % 10}", Decimal(i)) for i in range(300)],
        ),
        "re-sync": sync(
            client,
            "payments",
            [payment_record(f"m{i}", f"p{i % 10}", Decimal(i + 1)) for i in range(400)],
        ),
    }
    sync_id, limit = syncs[which]["syncId"], 6
    first_id = client.get("/payments?limit=1").get_json()[0]["id"]
    after_id = None if after is None else first_id + after
    changes, parameters = sync_changes(
        "payments", sync_id, after_record_id=after_id, limit=limit + 1
    )
    query = page(
        sa.select(changes), by_record(changes), None if after_id is None else [after_id]
    ).limit(limit + 1)
    query = query.params(parameters)
    with app.app_context():
        assert len(db.session.execute(query).all()) == limit + 1
    assert rows_read(app, query, "payments") <= 2 * (limit + 1)


def test_one_patient_as_of_reads_only_its_own_versions(app: Flask, seeded: None) -> None:
    at = datetime.now(UTC)
    used = indexes_used(app, one_patient_at("p1", at))
    assert {
        "ix_payment_versions_patient_id_valid_from",
        "ix_payments_live_patient_id_id",
        "ix_patient_versions_record_id_valid_from",
    } <= used


def test_one_patients_payments_as_of_read_only_its_own_versions(app: Flask, seeded: None) -> None:
    query, listed = live_payments_at(datetime.now(UTC), "p1")
    used = indexes_used(app, page(query, payments_by_id(listed.c)))
    assert {"ix_payment_versions_patient_id_valid_from", "ix_payments_live_patient_id_id"} <= used
