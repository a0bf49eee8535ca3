"""Pages PostgreSQL writes (app/reads/json_sql.py) equal the pages Python writes, value for value.

The hot listings are written by the database on PostgreSQL and by
app/reads/serializers.py elsewhere; a client must not be able to tell them
apart. Numbers are compared as their text (0.10 is not 0.1), timestamps as
strings, strings after JSON decoding (escapes may differ, values may not).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import simplejson
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import db
from app.reads import live
from app.reads.as_of import live_patients_at
from app.reads.serializers import patient_json, payment_json
from tests.support.helpers import patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only

AWKWARD_STRINGS = [
    'quote " backslash \\ slash /',
    "tab\tnewline\ncontrol\x01\x1f",
    "Zoë Ångström 山田 🙂",
    "</script><b>&amp;",
    "  spaced  ",
    "\u2028\u2029",
]


def exactly(body: bytes | str) -> Any:
    """Decoded JSON with every number kept as the text it was written as."""
    return simplejson.loads(body, parse_float=str, parse_int=str)


@pytest.fixture
def awkward_data(client: FlaskClient, app_ctx: None) -> str:
    """Patients and payments with every kind of value the pages write; returns a sync's start."""
    patients = [
        patient_record(f"p{n}", firstName=text, middleName=text if n % 2 else None)
        for n, text in enumerate(AWKWARD_STRINGS)
    ]
    first = sync(client, "patients", patients)
    sync(
        client,
        "payments",
        [
            payment_record(f"m{n}", "p0", amount)
            for n, amount in enumerate(["0.10", "12345678.90", "1", "0.01"])
        ],
    )
    db.session.execute(
        sa.text(
            "UPDATE patients SET created = '2026-01-02 03:04:05+00', "
            "updated = '2026-01-02 03:04:05.470240+00' WHERE external_id = 'p1'"
        )
    )
    db.session.commit()
    return first["startedAt"]


def python_page(app: Flask, query: sa.Select[Any], item: Callable[[Any], Any]) -> Any:
    rows = db.session.connection().execute(query).all()
    return exactly(app.json.dumps([item(row) for row in rows]))


def test_patients_pages_are_written_alike(
    app: Flask, client: FlaskClient, awkward_data: str
) -> None:
    written = exactly(client.get("/patients?limit=1000").data)
    assert written == python_page(app, live.live_patients().order_by(sa.text("id")), patient_json)
    assert {"0.00", "12345680.01"} <= {p["paymentsTotal"] for p in written}
    assert "2026-01-02T03:04:05+00:00" in {p["created"] for p in written}
    assert "2026-01-02T03:04:05.470240+00:00" in {p["updated"] for p in written}


def test_patients_pages_as_of_are_written_alike(
    app: Flask, client: FlaskClient, awkward_data: str
) -> None:
    at = awkward_data.replace("+", "%2B")
    written = exactly(client.get(f"/patients?limit=1000&as_of={at}").data)
    query, _ = live_patients_at(datetime.fromisoformat(awkward_data))
    assert written == python_page(app, query.order_by(sa.text("id")), patient_json)
    assert {p["paymentsTotal"] for p in written} == {"0.00"}


def test_payments_pages_are_written_alike(
    app: Flask, client: FlaskClient, awkward_data: str
) -> None:
    written = exactly(client.get("/payments?limit=1000").data)
    assert written == python_page(app, live.live_payments().order_by(sa.text("id")), payment_json)
    assert [p["amount"] for p in written] == ["0.10", "12345678.90", "1.00", "0.01"]


def test_a_page_decodes_to_the_stored_strings(client: FlaskClient, awkward_data: str) -> None:
    names = {p["firstName"] for p in client.get("/patients?limit=1000").get_json()}
    assert names == set(AWKWARD_STRINGS)


def test_totals_keep_two_decimals_after_a_payment_is_removed(
    client: FlaskClient, awkward_data: str
) -> None:
    sync(client, "payments", [payment_record("m0", "p0", Decimal("0.10"))])
    totals = {
        p["externalId"]: p["paymentsTotal"]
        for p in exactly(client.get("/patients?limit=1000").data)
    }
    assert totals["p0"] == "0.10"
    assert totals["p1"] == "0.00"
