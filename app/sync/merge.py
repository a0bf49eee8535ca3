"""Set-based statements that apply a staged snapshot, one per merge rule (SPEC §2).

Each function takes the stage built by ``staging.create_stage`` and the sync's
timestamp, runs one statement and returns the number of rows it wrote. They
never commit: the engine owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.models import Patient, Payment
from app.sync.report import RecordError
from app.sync.staging import TOUCHED_PATIENTS
from app.types import UTCDateTime

PATIENTS = Patient.__table__
PAYMENTS = Payment.__table__
TARGETS = {"patients": PATIENTS, "payments": PAYMENTS}
# The columns a valid staged record writes into its target row.
MERGED_FIELDS: dict[str, tuple[str, ...]] = {
    "patients": ("first_name", "last_name", "middle_name", "date_of_birth"),
    "payments": ("amount", "patient_id"),
}


def _staged(stage: sa.Table, target: sa.Table) -> sa.ColumnElement[bool]:
    return stage.c.external_id == target.c.external_id


# Hash joins and aggregates over a million staged rows spill to disk with the
# default 4MB; this applies to the sync's own transaction only.
SYNC_WORK_MEM = "128MB"


def tune_transaction(connection: sa.Connection) -> None:
    """Give the sync's transaction the memory its set-based statements need (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SET LOCAL work_mem = '{SYNC_WORK_MEM}'"))


def count_live(connection: sa.Connection, target: sa.Table) -> int:
    """Live rows of the target table."""
    query = sa.select(sa.func.count()).select_from(target).where(target.c.deleted.is_(None))
    return connection.scalar(query) or 0


def _absent(target: sa.Table, stage: sa.Table) -> sa.ColumnElement[bool]:
    return sa.and_(target.c.deleted.is_(None),
                   ~sa.exists().where(_staged(stage, target)))


def soft_delete_absent(connection: sa.Connection, target: sa.Table, stage: sa.Table,
                       now: datetime) -> int:
    """Rule 3: a live row whose externalId is absent from the upload is soft-deleted.

    Rejected records are staged too (valid = false), so their rows count as
    present and stay as they are (rule 5).
    """
    statement = (sa.update(target).where(_absent(target, stage))
                 .values(deleted=now, updated=now))
    return connection.execute(statement).rowcount


def update_changed(connection: sa.Connection, target: sa.Table, stage: sa.Table,
                   fields: tuple[str, ...], now: datetime) -> int:
    """Rule 2: a valid record matching a live row is written only if some field differs."""
    differs = sa.or_(*(target.c[name].is_distinct_from(stage.c[name]) for name in fields))
    statement = (sa.update(target)
                 .where(_staged(stage, target), stage.c.valid, target.c.deleted.is_(None), differs)
                 .values({name: stage.c[name] for name in fields} | {"updated": now}))
    return connection.execute(statement).rowcount


def restore_deleted(connection: sa.Connection, target: sa.Table, stage: sa.Table,
                    fields: tuple[str, ...], now: datetime) -> int:
    """Rule 4: a valid record matching a soft-deleted row restores it; id and created are kept."""
    statement = (sa.update(target)
                 .where(_staged(stage, target), stage.c.valid, target.c.deleted.is_not(None))
                 .values({name: stage.c[name] for name in fields}
                         | {"deleted": None, "updated": now}))
    return connection.execute(statement).rowcount


def insert_new(connection: sa.Connection, target: sa.Table, stage: sa.Table,
               fields: tuple[str, ...], now: datetime) -> int:
    """Rule 1: a valid record with an unknown externalId is inserted, created = updated = now."""
    stamp = sa.literal(now, UTCDateTime())
    rows = (sa.select(stage.c.external_id, *(stage.c[name] for name in fields), stamp, stamp)
            .where(stage.c.valid, ~sa.exists().where(_staged(stage, target)))
            .order_by(stage.c.idx))
    statement = sa.insert(target).from_select(
        ["external_id", *fields, "created", "updated"], rows)
    return connection.execute(statement).rowcount


def reject_duplicates(connection: sa.Connection, stage: sa.Table,
                      max_errors: int) -> tuple[int, list[RecordError]]:
    """Rule 6: an externalId that occurs more than once rejects every occurrence.

    Counts every staged element, the already rejected ones included. Returns
    how many valid rows this rejected and the first ``max_errors`` occurrences
    in upload order (already rejected ones too, so their messages combine).
    """
    occurrences = (sa.select(stage.c.external_id, sa.func.count().label("n"))
                   .group_by(stage.c.external_id).having(sa.func.count() > 1))
    if connection.execute(occurrences.limit(1)).first() is None:
        return 0, []
    duplicated = occurrences.subquery()
    first = connection.execute(
        sa.select(stage.c.idx, stage.c.external_id, duplicated.c.n)
        .join(duplicated, duplicated.c.external_id == stage.c.external_id)
        .order_by(stage.c.idx).limit(max_errors)).all()
    errors = [RecordError(index, external_id, {"externalId": [
        f"Duplicate externalId '{external_id}': it occurs {n} times in this upload."]})
        for index, external_id, n in first]
    rejected = connection.execute(
        sa.update(stage)
        .where(stage.c.valid, stage.c.external_id.in_(sa.select(duplicated.c.external_id)))
        .values(valid=False)).rowcount
    return rejected, errors


def reject_unknown_patients(connection: sa.Connection, stage: sa.Table,
                            max_errors: int) -> tuple[int, list[RecordError]]:
    """Rule 7: resolve each payment's patient; reject those with no live patient.

    Returns how many were rejected and the first ``max_errors`` of them in
    upload order. Rejected rows stay staged (valid = false) so rule 5 protects
    their stored rows.
    """
    connection.execute(
        sa.update(stage)
        .where(PATIENTS.c.external_id == stage.c.patient_external_id,
               PATIENTS.c.deleted.is_(None), stage.c.valid)
        .values(patient_id=PATIENTS.c.id))
    unknown = sa.and_(stage.c.valid, stage.c.patient_id.is_(None))
    first = connection.execute(
        sa.select(stage.c.idx, stage.c.external_id, stage.c.patient_external_id)
        .where(unknown).order_by(stage.c.idx).limit(max_errors)).all()
    errors = [RecordError(index, external_id, {
        "patientId": [f"No live patient with externalId '{patient_external_id}'."]})
        for index, external_id, patient_external_id in first]
    rejected = connection.execute(sa.update(stage).where(unknown).values(valid=False)).rowcount
    return rejected, errors


def remember_moved_payments(connection: sa.Connection, stage: sa.Table) -> None:
    """Note the previous patients of payments that move to another patient.

    After the merge every written payment carries the sync's timestamp and its
    new patient, but a move also changes the old patient's total.
    """
    TOUCHED_PATIENTS.create(connection)
    moved = (sa.select(PAYMENTS.c.patient_id)
             .where(_staged(stage, PAYMENTS), stage.c.valid,
                    PAYMENTS.c.patient_id != stage.c.patient_id))
    connection.execute(sa.insert(TOUCHED_PATIENTS).from_select(["patient_id"], moved))


def refresh_payment_totals(connection: sa.Connection, now: datetime) -> int:
    """Recompute paymentsTotal/paymentsCount for every patient a payments sync touched.

    One aggregate over the touched patients' live payments, written only where
    it differs, so a sync that changes little costs little.
    """
    written = sa.select(PAYMENTS.c.patient_id).where(PAYMENTS.c.updated == now)
    connection.execute(sa.insert(TOUCHED_PATIENTS).from_select(["patient_id"], written))
    touched = sa.select(TOUCHED_PATIENTS.c.patient_id).distinct().subquery()
    sums = (sa.select(touched.c.patient_id,
                      sa.func.coalesce(sa.func.sum(PAYMENTS.c.amount), 0).label("total"),
                      sa.func.count(PAYMENTS.c.id).label("n"))
            .select_from(touched.outerjoin(PAYMENTS, sa.and_(
                PAYMENTS.c.patient_id == touched.c.patient_id, PAYMENTS.c.deleted.is_(None))))
            .group_by(touched.c.patient_id).subquery())
    statement = (sa.update(PATIENTS)
                 .where(PATIENTS.c.id == sums.c.patient_id,
                        sa.or_(PATIENTS.c.payments_total != sums.c.total,
                               PATIENTS.c.payments_count != sums.c.n))
                 .values(payments_total=sums.c.total, payments_count=sums.c.n))
    return connection.execute(statement).rowcount
