"""Every version of one record (SPEC §5): its row, the current version, and the kept ones."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import (
    Patient,
    PatientVersion,
    Payment,
    PaymentVersion,
)

_PATIENT_FIELDS = (
    "external_id",
    "first_name",
    "last_name",
    "middle_name",
    "date_of_birth",
    "deleted",
)


def patient_history(record_id: int) -> sa.Subquery:
    """Every version of one patient (SPEC §5): its row (the current one) and the kept ones."""
    now = sa.select(
        *(Patient.__table__.c[name] for name in _PATIENT_FIELDS),
        Patient.updated.label("valid_from"),
        sa.null().label("valid_to"),
        Patient.sync_id,
    ).where(Patient.id == record_id)
    kept = sa.select(
        *(PatientVersion.__table__.c[name] for name in _PATIENT_FIELDS),
        PatientVersion.valid_from,
        PatientVersion.valid_to,
        PatientVersion.sync_id,
    ).where(PatientVersion.record_id == record_id)
    # The kept versions first: a union takes its column types from its first part.
    return sa.union_all(kept, now).subquery("versions")


def payment_history(record_id: int) -> sa.Subquery:
    """Every version of one payment, each with its patient's externalId in that version."""
    owner = orm.aliased(Patient)
    now = (
        sa.select(
            Payment.external_id,
            owner.external_id.label("patient_external_id"),
            Payment.amount,
            Payment.deleted,
            Payment.updated.label("valid_from"),
            sa.null().label("valid_to"),
            Payment.sync_id,
        )
        .join(owner, owner.id == Payment.patient_id)
        .where(Payment.id == record_id)
    )
    kept = (
        sa.select(
            PaymentVersion.external_id,
            owner.external_id.label("patient_external_id"),
            PaymentVersion.amount,
            PaymentVersion.deleted,
            PaymentVersion.valid_from,
            PaymentVersion.valid_to,
            PaymentVersion.sync_id,
        )
        .join(owner, owner.id == PaymentVersion.patient_id)
        .where(PaymentVersion.record_id == record_id)
    )
    # The kept versions first: a union takes its column types from its first part.
    return sa.union_all(kept, now).subquery("versions")
