"""Hot-path JSON for list and detail responses.

The marshmallow schemas in app.api.schemas describe these shapes for the OpenAPI
document; these functions produce the same dictionaries from result rows
without marshmallow's per-field machinery, which costs more than the query
itself on a 100-row page (tests hold them equal to the schemas' dump).
"""

from __future__ import annotations

from datetime import date
from typing import Any


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def patient_json(row: Any) -> dict[str, Any]:
    """A patients row as PatientSchema dumps it."""
    return {
        "id": row.id,
        "externalId": row.external_id,
        "firstName": row.first_name,
        "lastName": row.last_name,
        "middleName": row.middle_name,
        "dateOfBirth": _iso(row.date_of_birth),
        "paymentsTotal": row.payments_total,
        "paymentsCount": row.payments_count,
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
    }


def payment_json(row: Any) -> dict[str, Any]:
    """A payments row (with its patient's externalId) as PaymentSchema dumps it."""
    return {
        "id": row.id,
        "externalId": row.external_id,
        "patientId": row.patient_external_id,
        "amount": row.amount,
        "created": row.created.isoformat(),
        "updated": row.updated.isoformat(),
    }


def _version(row: Any) -> dict[str, Any]:
    return {
        "deleted": _iso(row.deleted),
        "validFrom": row.valid_from.isoformat(),
        "validTo": _iso(row.valid_to),
        "syncId": row.sync_id,
    }


def patient_version_json(row: Any) -> dict[str, Any]:
    """One version of a patient as PatientVersionSchema dumps it."""
    return {
        "externalId": row.external_id,
        "firstName": row.first_name,
        "lastName": row.last_name,
        "middleName": row.middle_name,
        "dateOfBirth": _iso(row.date_of_birth),
        **_version(row),
    }


def payment_version_json(row: Any) -> dict[str, Any]:
    """One version of a payment as PaymentVersionSchema dumps it."""
    return {
        "externalId": row.external_id,
        "patientId": row.patient_external_id,
        "amount": row.amount,
        **_version(row),
    }
