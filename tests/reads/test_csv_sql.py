"""CSV lines written by PostgreSQL (app/reads/csv_sql.py) equal the Python writer's, byte for byte.

The same listings exported both ways on hostile values: quotes, commas, CR,
LF, spaces, Unicode, an empty middle name and a null one, dates of the first
millennium, amounts at both ends of NUMERIC(12,2), whole-second and
fractional timestamps, and as_of listings (whose totals are aggregates).
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.db.engine import snapshot_connection
from app.extensions import db
from app.reads.exports import Export, csv_chunks, patients_export, payments_export
from app.reads.listings import patients_listing, payments_listing
from tests.support.helpers import patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only

NAMES = ['"', ",", "\r", "\n", "a\r\nb", ' "x", ', "Zoë 😀", "", "=1+2", "\t", "plain"]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Syncs unthrottled."""
    return {"RATELIMIT_ENABLED": False}


def both_ways(app: Flask, export: Export) -> tuple[str, str]:
    """The export's CSV as PostgreSQL writes it, and as Python writes it."""
    assert export.line_sql is not None
    with app.app_context(), snapshot_connection(db.engine) as connection:
        by_database = "".join(text for _, text in csv_chunks(connection, export))
        by_python = "".join(
            text for _, text in csv_chunks(connection, replace(export, line_sql=None))
        )
    return by_database, by_python


def test_database_lines_equal_python_lines_on_hostile_values(
    app: Flask, client: FlaskClient
) -> None:
    patients = [
        patient_record(f"p{n}{name}", firstName=name or "x", lastName=f"L{name}", middleName=name)
        for n, name in enumerate(NAMES)
    ]
    patients.append(patient_record("old", dateOfBirth="0099-01-02", middleName=None))
    stored = sync(client, "patients", patients)["created"]
    amounts = ["-9999999999.99", "9999999999.99", "0", "0.1", "-0.01", "12.5"]
    sync(
        client,
        "payments",
        [payment_record(f"m{n}", patients[n]["externalId"], a) for n, a in enumerate(amounts)],
    )
    with app.app_context(), db.engine.begin() as connection:
        # A whole-second and a fractional timestamp (syncs write fractions).
        connection.execute(
            sa.text("UPDATE payments SET created = :at WHERE external_id = 'm0'"),
            {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
        )
    as_of = datetime.now(UTC)
    sync(client, "payments", [payment_record("m0", patients[1]["externalId"], "1.00")])
    exports = [
        patients_export(*patients_listing(None, None, "-paymentsTotal", None)),
        patients_export(*patients_listing(None, None, "id", as_of)),
        payments_export(*payments_listing(None, None)),
        payments_export(*payments_listing(None, as_of)),
    ]
    written = [both_ways(app, export) for export in exports]
    # The sync after as_of kept one payment: the as_of listings hold the others.
    records = [len(list(csv.reader(io.StringIO(text, newline="")))) for text, _ in written]
    assert records == [stored, stored, 1, len(amounts)]
    assert all(by_database == by_python for by_database, by_python in written)
