"""Set-based statements that apply a staged snapshot, one per merge rule (SPEC §2).

The stage is first joined once with the stored rows into a *plan*: per
element, its stored row (if any), whether that row is soft-deleted, and
whether any field differs. Every rule is then one statement over the plan,
joined to the target by primary key. Functions return the number of rows
they wrote and never commit: the engine owns the transaction.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.models import Patient, Payment
from app.sync.records import STAGED_FIELDS
from app.sync.report import RecordError
from app.sync.staging import PLANS
from app.types import UTCDateTime

PATIENTS = Patient.__table__
PAYMENTS = Payment.__table__
TARGETS = {"patients": PATIENTS, "payments": PAYMENTS}
# The columns a valid record writes into its target row.
MERGED_FIELDS: dict[str, tuple[str, ...]] = {
    "patients": STAGED_FIELDS["patients"],
    "payments": ("amount", "patient_id"),
}
# Hash joins and aggregates over a million staged rows spill to disk with the
# default 4MB; this applies to the sync's own transaction only.
SYNC_WORK_MEM = "128MB"
# Refresh planner statistics inside the sync when it rewrote this share of a
# table, so the next statements and the first readers get good plans.
ANALYZE_SHARE = 0.1


def tune_transaction(connection: sa.Connection) -> None:
    """Give the sync's transaction the memory its set-based statements need (PostgreSQL)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SET LOCAL work_mem = '{SYNC_WORK_MEM}'"))


def count_live(connection: sa.Connection, target: sa.Table) -> int:
    """Live rows of the target table."""
    query = sa.select(sa.func.count()).select_from(target).where(target.c.deleted.is_(None))
    return connection.scalar(query) or 0


def analyze(connection: sa.Connection, table: sa.Table) -> None:
    """Refresh the planner's statistics for ``table`` (PostgreSQL only)."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ANALYZE {table.name}"))


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


def build_plan(connection: sa.Connection, entity: str, stage: sa.Table) -> sa.Table:
    """Join every staged element once with its stored row (and, for payments, its patient).

    A payment whose patientId matches no live patient becomes invalid here
    and is flagged ``unknown_patient`` (rule 7).
    """
    target, plan = TARGETS[entity], PLANS[entity]
    fields = MERGED_FIELDS[entity]
    source = stage.outerjoin(target, target.c.external_id == stage.c.external_id)
    valid: sa.ColumnElement[bool] = stage.c.valid
    values: dict[str, sa.ColumnElement]
    if entity == "payments":
        live_patient = sa.and_(PATIENTS.c.external_id == stage.c.patient_external_id,
                               PATIENTS.c.deleted.is_(None))
        source = source.outerjoin(PATIENTS, live_patient)
        unknown = sa.and_(stage.c.valid, PATIENTS.c.id.is_(None))
        valid = sa.and_(stage.c.valid, PATIENTS.c.id.is_not(None))
        values = {"amount": stage.c.amount, "patient_id": PATIENTS.c.id,
                  "patient_external_id": stage.c.patient_external_id,
                  "unknown_patient": unknown, "old_patient_id": target.c.patient_id,
                  "old_amount": target.c.amount}
    else:
        values = {name: stage.c[name] for name in fields}
    differs = sa.or_(*(target.c[name].is_distinct_from(values[name]) for name in fields))
    values |= {"idx": stage.c.idx, "external_id": stage.c.external_id, "valid": valid,
               "target_id": target.c.id, "target_deleted": target.c.deleted.is_not(None),
               "changed": sa.and_(target.c.id.is_not(None), differs)}
    plan.create(connection)
    rows = sa.select(*(values[name].label(name) for name in values)).select_from(source)
    connection.execute(sa.insert(plan).from_select(list(values), rows))
    if connection.dialect.name == "postgresql":
        analyze(connection, plan)
    else:
        # SQLite has no hash joins: the anti-join of the soft delete needs this.
        connection.execute(sa.text(f"CREATE INDEX ix_{plan.name} ON {plan.name} (target_id)"))
    return plan


def reject_unknown_patients(connection: sa.Connection, plan: sa.Table,
                            max_errors: int) -> tuple[int, list[RecordError]]:
    """Rule 7: report payments whose patientId matches no live patient.

    ``build_plan`` already made them invalid; their stored rows stay in the
    plan, so rule 5 protects them. Returns the count and the first errors.
    """
    rejected = connection.scalar(
        sa.select(sa.func.count()).where(plan.c.unknown_patient)) or 0
    if not rejected:
        return 0, []
    first = connection.execute(
        sa.select(plan.c.idx, plan.c.external_id, plan.c.patient_external_id)
        .where(plan.c.unknown_patient).order_by(plan.c.idx).limit(max_errors)).all()
    return rejected, [RecordError(index, external_id, {
        "patientId": [f"No live patient with externalId '{patient_external_id}'."]})
        for index, external_id, patient_external_id in first]


def soft_delete_absent(connection: sa.Connection, target: sa.Table, plan: sa.Table,
                       now: datetime) -> int:
    """Rule 3: a live row whose externalId is absent from the upload is soft-deleted.

    Rejected records are in the plan too (valid = false), so their rows count
    as present and stay as they are (rule 5).
    """
    planned = sa.exists().where(plan.c.target_id == target.c.id)
    statement = (sa.update(target).where(target.c.deleted.is_(None), ~planned)
                 .values(deleted=now, updated=now))
    return connection.execute(statement).rowcount


def update_changed(connection: sa.Connection, target: sa.Table, plan: sa.Table,
                   fields: tuple[str, ...], now: datetime) -> int:
    """Rule 2: a valid record matching a live row is written only if some field differs."""
    statement = (sa.update(target)
                 .where(target.c.id == plan.c.target_id, plan.c.valid, plan.c.changed,
                        sa.not_(plan.c.target_deleted))
                 .values({name: plan.c[name] for name in fields} | {"updated": now}))
    return connection.execute(statement).rowcount


def restore_deleted(connection: sa.Connection, target: sa.Table, plan: sa.Table,
                    fields: tuple[str, ...], now: datetime) -> int:
    """Rule 4: a valid record matching a soft-deleted row restores it; id and created are kept."""
    statement = (sa.update(target)
                 .where(target.c.id == plan.c.target_id, plan.c.valid, plan.c.target_deleted)
                 .values({name: plan.c[name] for name in fields}
                         | {"deleted": None, "updated": now}))
    return connection.execute(statement).rowcount


def insert_new(connection: sa.Connection, target: sa.Table, plan: sa.Table,
               fields: tuple[str, ...], now: datetime) -> int:
    """Rule 1: a valid record with an unknown externalId is inserted, created = updated = now."""
    stamp = sa.literal(now, UTCDateTime())
    rows = (sa.select(plan.c.external_id, *(plan.c[name] for name in fields), stamp, stamp)
            .where(plan.c.valid, plan.c.target_id.is_(None))
            .order_by(plan.c.idx))
    statement = sa.insert(target).from_select(
        ["external_id", *fields, "created", "updated"], rows)
    return connection.execute(statement).rowcount


def refresh_payment_totals(connection: sa.Connection, plan: sa.Table, now: datetime) -> int:
    """Move paymentsTotal/paymentsCount by exactly what this payments sync changed.

    Each written payment adds its new amount to its (new) patient; each live
    payment that changed takes its old amount off its old patient; each
    payment deleted now takes its amount off. A restored payment was not
    counted, so it only adds. Summing these deltas per patient touches only
    the changed payments, not every payment of every touched patient.
    """
    written = sa.and_(plan.c.valid, sa.or_(plan.c.target_id.is_(None), plan.c.changed,
                                          plan.c.target_deleted))
    replaced = sa.and_(plan.c.valid, plan.c.changed, sa.not_(plan.c.target_deleted))
    deltas = sa.union_all(
        sa.select(plan.c.patient_id.label("patient_id"), plan.c.amount.label("amount"),
                  sa.literal(1).label("n")).where(written),
        sa.select(plan.c.old_patient_id, -plan.c.old_amount, sa.literal(-1)).where(replaced),
        sa.select(PAYMENTS.c.patient_id, -PAYMENTS.c.amount, sa.literal(-1))
        .where(PAYMENTS.c.deleted == now),
    ).subquery()
    sums = (sa.select(deltas.c.patient_id, sa.func.sum(deltas.c.amount).label("total"),
                      sa.func.sum(deltas.c.n).label("n"))
            .group_by(deltas.c.patient_id)
            .having(sa.or_(sa.func.sum(deltas.c.amount) != 0, sa.func.sum(deltas.c.n) != 0))
            .subquery())
    statement = (sa.update(PATIENTS)
                 .where(PATIENTS.c.id == sums.c.patient_id)
                 .values(payments_total=PATIENTS.c.payments_total + sums.c.total,
                         payments_count=PATIENTS.c.payments_count + sums.c.n))
    return connection.execute(statement).rowcount
