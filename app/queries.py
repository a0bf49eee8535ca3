"""Read-side query builders: filters, totals and lookups. Views call these, never SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import Patient, Payment, SyncRun

PATIENT_COLUMNS = [column for column in Patient.__table__.c if column.name != "deleted"]
PAYMENT_COLUMNS = [column for column in Payment.__table__.c
                   if column.name not in ("deleted", "patient_id")]


def live_patients(payment_min: Decimal | None = None,
                  payment_max: Decimal | None = None) -> sa.Select[Any]:
    """Live patients whose live payments total lies within the inclusive bounds."""
    query = sa.select(*PATIENT_COLUMNS).where(Patient.deleted.is_(None))
    if payment_min is not None:
        query = query.where(Patient.payments_total >= payment_min)
    if payment_max is not None:
        query = query.where(Patient.payments_total <= payment_max)
    return query


def live_patient(session: orm.Session, external_id: str) -> sa.Row[Any] | None:
    """One live patient by externalId, or None."""
    return session.execute(live_patients().where(Patient.external_id == external_id)).first()


def live_payments(patient_external_id: str | None = None) -> sa.Select[Any]:
    """Live payments with their patient's externalId, optionally for one patient."""
    query = (sa.select(*PAYMENT_COLUMNS, Patient.external_id.label("patient_external_id"))
             .join(Patient, Payment.patient_id == Patient.id)
             .where(Payment.deleted.is_(None)))
    if patient_external_id is not None:
        query = query.where(Patient.external_id == patient_external_id)
    return query


def sync_runs() -> sa.Select[Any]:
    """Recorded syncs with their stored reports."""
    return sa.select(SyncRun.id, SyncRun.report)


def sync_report(session: orm.Session, sync_id: int) -> dict[str, Any] | None:
    """The stored report of one sync, or None."""
    return session.scalar(sa.select(SyncRun.report).where(SyncRun.id == sync_id))


def data_version(session: orm.Session) -> int:
    """The id of the newest sync: it changes whenever the replica's data may have."""
    return session.scalar(sa.select(sa.func.max(SyncRun.id))) or 0


def schema_revisions(session: orm.Session) -> set[str]:
    """The Alembic revisions the database is at (empty if it was never migrated)."""
    try:
        return set(session.scalars(sa.text("SELECT version_num FROM alembic_version")))
    except sa.exc.DBAPIError:
        session.rollback()
        return set()
