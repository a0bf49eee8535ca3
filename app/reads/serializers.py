"""Hot-path JSON for list and detail responses, shaped by each entity's description.

The marshmallow schemas in app.api.schemas describe these shapes for the OpenAPI
document; these functions produce the same dictionaries from result rows
without marshmallow's per-field machinery, which costs more than the query
itself on a 100-row page (tests hold them equal to the schemas' dump). Both
take their fields, in order, from app/entities.py.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.entities import PATIENTS, PAYMENTS, Entity, Field
from app.reads import csv_sql
from app.reads.analytics import PERCENTILES, Bucket, Summary
from app.reads.changes import describe
from app.reads.json_sql import JsonText, json_object, money, timestamp

Writer = Callable[[Any], dict[str, Any]]
# (JSON key, row attribute, whether the value is written by its isoformat()) of each key.
Shape = Sequence[tuple[str, str, bool]]


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _writer(shape: Shape) -> Writer:
    """A function writing a row as the object of ``shape``, keys in order.

    One attrgetter call fetches every value: a row's attributes cost more
    than the dictionary, so they are read once each, in C.
    """
    keys = tuple(key for key, _, _ in shape)
    values_of = operator.attrgetter(*(column for _, column, _ in shape))
    instants = tuple(key for key, _, is_instant in shape if is_instant)

    def write(row: Any) -> dict[str, Any]:
        written = dict(zip(keys, values_of(row), strict=True))
        for key in instants:
            value = written[key]
            if value is not None:
                written[key] = value.isoformat()
        return written

    return write


def _shown(field: Field) -> tuple[str, str, bool]:
    return field.key, field.column, field.kind == "date"


def record_shape(entity: Entity) -> Shape:
    """A record's answer (SPEC §3): id, externalId, synced fields, extras, created, updated."""
    return (
        ("id", "id", False),
        ("externalId", "external_id", False),
        *(_shown(field) for field in (*entity.fields, *entity.extras)),
        ("created", "created", True),
        ("updated", "updated", True),
    )


def version_shape(entity: Entity) -> Shape:
    """One version's answer (SPEC §5): externalId, synced fields, when it held, which sync."""
    return (
        ("externalId", "external_id", False),
        *(_shown(field) for field in entity.fields),
        ("deleted", "deleted", True),
        ("validFrom", "valid_from", True),
        ("validTo", "valid_to", True),
        ("syncId", "sync_id", False),
    )


def record_json_sql(entity: Entity) -> Callable[[Any], sa.ColumnElement[str]]:
    """The record's object as ``record_shape`` writes it, written by PostgreSQL from a
    select's ``columns``."""

    def value(field: Field, columns: Any) -> sa.ColumnElement[Any] | JsonText:
        column = getattr(columns, field.column)
        return money(column) if field.kind == "money" else column

    def write(columns: Any) -> sa.ColumnElement[str]:
        return json_object(
            [
                ("id", columns.id),
                ("externalId", columns.external_id),
                *((field.key, value(field, columns)) for field in (*entity.fields, *entity.extras)),
                ("created", timestamp(columns.created)),
                ("updated", timestamp(columns.updated)),
            ]
        )

    return write


def record_csv_sql(entity: Entity) -> Callable[[Any], sa.ColumnElement[str]]:
    """The record's object as a CSV line (its keys' cells, in ``record_shape``'s order),
    written by PostgreSQL from a select's ``columns`` (app/reads/csv_sql.py)."""
    cell = {
        "text": csv_sql.quoted,
        "date": csv_sql.day,
        "money": csv_sql.money_text,
        "integer": csv_sql.number,
    }

    def write(columns: Any) -> sa.ColumnElement[str]:
        return csv_sql.csv_line(
            [
                csv_sql.number(columns.id),
                csv_sql.quoted(columns.external_id),
                *(
                    cell[field.kind](getattr(columns, field.column))
                    for field in (*entity.fields, *entity.extras)
                ),
                csv_sql.timestamp(columns.created),
                csv_sql.timestamp(columns.updated),
            ]
        )

    return write


# The keys of each listing's JSON objects, in their order: a CSV export's header row.
PATIENT_KEYS = tuple(key for key, _, _ in record_shape(PATIENTS))
PAYMENT_KEYS = tuple(key for key, _, _ in record_shape(PAYMENTS))
SYNC_CHANGE_KEYS = ("entity", "externalId", "op", "before", "after", "changedFields")

patient_csv_sql = record_csv_sql(PATIENTS)
"""patient_json's object as a CSV line, written by PostgreSQL."""

payment_csv_sql = record_csv_sql(PAYMENTS)
"""payment_json's object as a CSV line, written by PostgreSQL."""

patient_json = _writer(record_shape(PATIENTS))
"""A patients row as PatientSchema dumps it."""

patient_json_sql = record_json_sql(PATIENTS)
"""patient_json's object, written by PostgreSQL from a patients select's ``columns``."""

payment_json = _writer(record_shape(PAYMENTS))
"""A payments row (with its patient's externalId) as PaymentSchema dumps it."""

payment_json_sql = record_json_sql(PAYMENTS)
"""payment_json's object, written by PostgreSQL from a payments select's ``columns``."""

patient_version_json = _writer(version_shape(PATIENTS))
"""One version of a patient as PatientVersionSchema dumps it."""

payment_version_json = _writer(version_shape(PAYMENTS))
"""One version of a payment as PaymentVersionSchema dumps it."""


def change_json(row: Any) -> dict[str, Any]:
    """One record a sync changed (SPEC §5): op, before, after and the fields that changed.

    ``before`` is null when the record did not exist before the sync (created,
    or restored from deleted), ``after`` when it does not after (deleted).
    """
    change = describe(row)
    return {
        "entity": row.entity,
        "externalId": row.external_id,
        "op": change.op,
        "before": (
            None if change.op in ("created", "restored") else _side(row.external_id, change.before)
        ),
        "after": None if change.op == "deleted" else _side(row.external_id, change.after),
        "changedFields": change.changed_fields,
    }


def _side(external_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Synced fields as the read API writes them."""
    return {
        "externalId": external_id,
        **{key: _iso(value) if isinstance(value, date) else value for key, value in fields.items()},
    }


def money_text(amount: Decimal) -> str:
    """An amount as analytics write it (SPEC §3): a decimal string, exactly two places."""
    return format(amount.quantize(_CENT), "f")


_CENT = Decimal("0.01")


def summary_json(summary: Summary) -> dict[str, Any]:
    """GET /analytics/summary's object: counts, and amounts as exact decimal strings."""
    return {
        "patients": summary.patients,
        "payments": summary.payments,
        "totalAmount": money_text(summary.total_amount),
        "patientsWithoutPayments": summary.patients_without_payments,
        "patientTotals": {
            "min": money_text(summary.minimum),
            "max": money_text(summary.maximum),
            "mean": money_text(summary.mean),
            **{f"p{p}": money_text(summary.percentiles[p]) for p in PERCENTILES},
        },
    }


def histogram_json(buckets: list[Bucket]) -> dict[str, Any]:
    """GET /analytics/histogram's object: edges as decimal strings, as precise as they are."""
    return {
        "buckets": [
            {
                "from": format(bucket.low, "f"),
                "to": format(bucket.high, "f"),
                "patients": bucket.patients,
            }
            for bucket in buckets
        ]
    }


# The counts of a report, in its order (SPEC §2).
_REPORT_COUNTS = ("received", "created", "updated", "restored", "unchanged", "rejected", "deleted")


def sync_trend_json(row: Any) -> dict[str, Any]:
    """One sync as GET /analytics/syncs lists it: state, start, duration and counts.

    Only an applied sync (a dry run included) has a report with counts; a
    queued or running one has not started, and a refused or failed one
    changed nothing: their counts are null, and so are the start and the
    duration of a sync that has not finished.
    """
    report = row.report
    unfinished = row.state in ("queued", "running")
    return {
        "syncId": row.id,
        "entity": row.entity,
        "state": row.state,
        "dryRun": row.dry_run,
        "startedAt": None if unfinished else report.get("startedAt", row.started_at.isoformat()),
        "durationSeconds": None
        if unfinished
        else (row.finished_at - row.started_at).total_seconds(),
        **{name: report.get(name) for name in _REPORT_COUNTS},
    }
