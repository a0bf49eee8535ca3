"""Hot-path JSON for list and detail responses.

The marshmallow schemas in app.api.schemas describe these shapes for the OpenAPI
document; these functions produce the same dictionaries from result rows
without marshmallow's per-field machinery, which costs more than the query
itself on a 100-row page (tests hold them equal to the schemas' dump).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.reads import csv_sql
from app.reads.analytics import PERCENTILES, Bucket, Summary
from app.reads.changes import describe
from app.reads.json_sql import Field, json_object, money, timestamp

# The keys of each listing's JSON objects, in their order: a CSV export's header row
# (tests hold them equal to the functions' dictionaries).
PATIENT_KEYS = (
    "id",
    "externalId",
    "firstName",
    "lastName",
    "middleName",
    "dateOfBirth",
    "paymentsTotal",
    "paymentsCount",
    "created",
    "updated",
)
PAYMENT_KEYS = ("id", "externalId", "patientId", "amount", "created", "updated")
SYNC_CHANGE_KEYS = ("entity", "externalId", "op", "before", "after", "changedFields")


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _patient_fields(row: Any) -> dict[str, Any]:
    """A patient's synced fields, in every shape that shows them."""
    return {
        "externalId": row.external_id,
        "firstName": row.first_name,
        "lastName": row.last_name,
        "middleName": row.middle_name,
        "dateOfBirth": _iso(row.date_of_birth),
    }


def _payment_fields(row: Any) -> dict[str, Any]:
    """A payment's synced fields (its patient by externalId), in every shape that shows them."""
    return {
        "externalId": row.external_id,
        "patientId": row.patient_external_id,
        "amount": row.amount,
    }


def patient_json(row: Any) -> dict[str, Any]:
    """A patients row as PatientSchema dumps it."""
    return {
        "id": row.id,
        **_patient_fields(row),
        "paymentsTotal": row.payments_total,
        "paymentsCount": row.payments_count,
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
    }


def patient_json_sql(columns: Any) -> sa.ColumnElement[str]:
    """patient_json's object, written by PostgreSQL from a patients select's ``columns``."""
    return json_object(
        [
            ("id", columns.id),
            *_patient_fields_sql(columns),
            ("paymentsTotal", money(columns.payments_total)),
            ("paymentsCount", columns.payments_count),
            ("created", timestamp(columns.created)),
            ("updated", timestamp(columns.updated)),
        ]
    )


def _patient_fields_sql(columns: Any) -> list[Field]:
    return [
        ("externalId", columns.external_id),
        ("firstName", columns.first_name),
        ("lastName", columns.last_name),
        ("middleName", columns.middle_name),
        ("dateOfBirth", columns.date_of_birth),
    ]


def patient_csv_sql(columns: Any) -> sa.ColumnElement[str]:
    """patient_json's object as a CSV line (PATIENT_KEYS' cells), written by PostgreSQL."""
    return csv_sql.csv_line(
        [
            csv_sql.number(columns.id),
            csv_sql.quoted(columns.external_id),
            csv_sql.quoted(columns.first_name),
            csv_sql.quoted(columns.last_name),
            csv_sql.quoted(columns.middle_name),
            csv_sql.day(columns.date_of_birth),
            csv_sql.money_text(columns.payments_total),
            csv_sql.number(columns.payments_count),
            csv_sql.timestamp(columns.created),
            csv_sql.timestamp(columns.updated),
        ]
    )


def payment_json(row: Any) -> dict[str, Any]:
    """A payments row (with its patient's externalId) as PaymentSchema dumps it."""
    return {
        "id": row.id,
        **_payment_fields(row),
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
    }


def payment_json_sql(columns: Any) -> sa.ColumnElement[str]:
    """payment_json's object, written by PostgreSQL from a payments select's ``columns``."""
    return json_object(
        [
            ("id", columns.id),
            ("externalId", columns.external_id),
            ("patientId", columns.patient_external_id),
            ("amount", money(columns.amount)),
            ("created", timestamp(columns.created)),
            ("updated", timestamp(columns.updated)),
        ]
    )


def payment_csv_sql(columns: Any) -> sa.ColumnElement[str]:
    """payment_json's object as a CSV line (PAYMENT_KEYS' cells), written by PostgreSQL."""
    return csv_sql.csv_line(
        [
            csv_sql.number(columns.id),
            csv_sql.quoted(columns.external_id),
            csv_sql.quoted(columns.patient_external_id),
            csv_sql.money_text(columns.amount),
            csv_sql.timestamp(columns.created),
            csv_sql.timestamp(columns.updated),
        ]
    )


def _version(row: Any) -> dict[str, Any]:
    return {
        "deleted": _iso(row.deleted),
        "validFrom": row.valid_from.isoformat(),
        "validTo": _iso(row.valid_to),
        "syncId": row.sync_id,
    }


def patient_version_json(row: Any) -> dict[str, Any]:
    """One version of a patient as PatientVersionSchema dumps it."""
    return {**_patient_fields(row), **_version(row)}


def payment_version_json(row: Any) -> dict[str, Any]:
    """One version of a payment as PaymentVersionSchema dumps it."""
    return {**_payment_fields(row), **_version(row)}


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
            None if change.op in ("created", "restored") else _shown(row.external_id, change.before)
        ),
        "after": None if change.op == "deleted" else _shown(row.external_id, change.after),
        "changedFields": change.changed_fields,
    }


def _shown(external_id: str, fields: dict[str, Any]) -> dict[str, Any]:
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
