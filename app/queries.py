"""Read-side query builders: filters, totals and lookups. Views call these, never SQL."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import orm

from app.models import (
    DataVersion,
    HistoryHorizon,
    Patient,
    PatientVersion,
    Payment,
    PaymentVersion,
    SyncRun,
)
from app.types import CENT, TOTAL_LIMIT

PATIENT_COLUMNS = [column for column in Patient.__table__.c if column.name != "deleted"]
PAYMENT_COLUMNS = [
    column for column in Payment.__table__.c if column.name not in ("deleted", "patient_id")
]


def live_patients(
    payment_min: Decimal | None = None, payment_max: Decimal | None = None
) -> sa.Select[Any]:
    """Live patients whose live payments total lies within the inclusive bounds."""
    query = sa.select(*PATIENT_COLUMNS).where(Patient.deleted.is_(None))
    if payment_min is not None:
        query = query.where(Patient.payments_total >= in_cents(payment_min, ROUND_CEILING))
    if payment_max is not None:
        query = query.where(Patient.payments_total <= in_cents(payment_max, ROUND_FLOOR))
    return query


def in_cents(bound: Decimal, rounding: str) -> Decimal:
    """A bound any database can bind that selects exactly the totals ``bound`` does.

    Totals are whole cents, so ``total >= 25.005`` holds exactly when
    ``total >= 25.01`` (ceiling for a minimum, floor for a maximum); and no
    total reaches TOTAL_LIMIT, so any bound beyond it acts as TOTAL_LIMIT.
    """
    if bound.copy_abs() >= TOTAL_LIMIT:
        return TOTAL_LIMIT.copy_sign(bound)
    with localcontext(prec=64):
        return bound.quantize(CENT, rounding=rounding)


def live_patient(session: orm.Session, external_id: str) -> sa.Row[Any] | None:
    """One live patient by externalId, or None."""
    return session.execute(live_patients().where(Patient.external_id == external_id)).first()


def live_payments(patient_external_id: str | None = None) -> sa.Select[Any]:
    """Live payments with their patient's externalId, optionally for one patient."""
    query = (
        sa.select(*PAYMENT_COLUMNS, Patient.external_id.label("patient_external_id"))
        .join(Patient, Payment.patient_id == Patient.id)
        .where(Payment.deleted.is_(None))
    )
    if patient_external_id is not None:
        query = query.where(Patient.external_id == patient_external_id)
    return query


def live_payment(session: orm.Session, external_id: str) -> sa.Row[Any] | None:
    """One live payment by its own externalId, or None."""
    return session.execute(live_payments().where(Payment.external_id == external_id)).first()


def stored_patient_id(session: orm.Session, external_id: str) -> int | None:
    """The id of the patient ever stored under ``external_id``, deleted or not."""
    return session.scalar(sa.select(Patient.id).where(Patient.external_id == external_id))


def stored_payment_id(session: orm.Session, external_id: str) -> int | None:
    """The id of the payment ever stored under ``external_id``, deleted or not."""
    return session.scalar(sa.select(Payment.id).where(Payment.external_id == external_id))


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


# The synced fields of each entity as a change shows them (SPEC §5), by column.
PATIENT_CHANGE_FIELDS = ("first_name", "last_name", "middle_name", "date_of_birth")
PAYMENT_CHANGE_FIELDS = ("patient_id", "amount")


def sync_entity(session: orm.Session, sync_id: int) -> str | None:
    """The entity a recorded sync synced, or None if there is no such sync."""
    return session.scalar(sa.select(SyncRun.entity).where(SyncRun.id == sync_id))


class ChangesQuery(NamedTuple):
    """A sync's changes: the statement (built once per entity) and the values it is run with."""

    changes: sa.Subquery
    parameters: dict[str, int]


# Bounds that leave a page unlimited in either direction (ids are 32-bit).
_NO_RECORD_BEFORE, _NO_LIMIT = -(2**31), 2**62


def sync_changes(
    entity: str, sync_id: int, *, after_record_id: int | None = None, limit: int | None = None
) -> ChangesQuery:
    """Every record sync ``sync_id`` changed: the version it made and the one it replaced.

    The version a sync made is the record's row if no later sync replaced
    it, else a kept version; the one it replaced is the kept version it
    ended. Columns: ``record_id``, ``external_id``, then for each field and
    for ``deleted`` an ``after_`` and a ``before_`` column, and ``existed``
    (whether there was a version before). Run any select over ``changes``
    with ``parameters``.

    The records are those whose version the sync ended (index (ended_by,
    record_id)) and those it created (a primary-key range recorded with the
    sync): two index scans in ``record_id`` order. A page passes its keyset
    (``after_record_id``) and ``limit`` so that each scan stops early; the
    planner would not merge two ordered scans of a UNION ALL by itself. The
    live table is never scanned for ``sync_id``: it has no index, since one
    would make every update non-HOT.
    """
    return ChangesQuery(
        _changes_statement(entity),
        {
            "changes_sync_id": sync_id,
            "changes_after": _NO_RECORD_BEFORE if after_record_id is None else after_record_id,
            "changes_limit": _NO_LIMIT if limit is None else limit,
        },
    )


@functools.cache
def _changes_statement(entity: str) -> sa.Subquery:
    """The changes statement of ``entity``, with its values as bind parameters.

    Built once: constructing it costs more than running a page of it.
    """
    sync_id = sa.bindparam("changes_sync_id", type_=sa.Integer())
    target, versions = (
        (Patient.__table__, PatientVersion.__table__)
        if entity == "patients"
        else (Payment.__table__, PaymentVersion.__table__)
    )
    fields = (
        *(PATIENT_CHANGE_FIELDS if entity == "patients" else PAYMENT_CHANGE_FIELDS),
        "deleted",
    )
    changed = sa.union_all(
        *(
            _window(branch)
            for branch in (_replaced(versions, fields, sync_id), _created(target, fields, sync_id))
        )
    ).subquery("changed")
    # What the sync made: a kept version if a later sync replaced it, else the row.
    kept, row = versions.alias("kept"), target.alias("row")
    query = (
        sa.select(
            sa.literal(entity).label("entity"),
            changed.c.record_id,
            sa.func.coalesce(kept.c.external_id, row.c.external_id).label("external_id"),
            changed.c.existed,
        )
        .outerjoin(
            kept, sa.and_(kept.c.record_id == changed.c.record_id, kept.c.sync_id == sync_id)
        )
        .outerjoin(row, sa.and_(row.c.id == changed.c.record_id, row.c.sync_id == sync_id))
        .where(sa.or_(kept.c.record_id.is_not(None), row.c.id.is_not(None)))
    )
    for name in fields:
        after = sa.case((kept.c.record_id.is_not(None), kept.c[name]), else_=row.c[name])
        query = query.add_columns(
            after.label(f"after_{name}"), changed.c[name].label(f"before_{name}")
        )
    if entity == "payments":
        # Changes show a payment's patient by its externalId, as reads do.
        for side in ("after", "before"):
            owner = Patient.__table__.alias(f"{side}_owner")
            query = query.outerjoin(
                owner, owner.c.id == query.selected_columns[f"{side}_patient_id"]
            ).add_columns(owner.c.external_id.label(f"{side}_patient_external_id"))
    return query.subquery("changes")


def _window(records: sa.Select[Any]) -> sa.Select[Any]:
    """One branch of the changed records, from after a keyset position, at most a limit."""
    record_id = records.selected_columns.record_id
    return (
        records.where(record_id > sa.bindparam("changes_after", type_=sa.Integer()))
        .order_by(record_id)
        .limit(sa.bindparam("changes_limit", type_=sa.BigInteger()))
        .subquery()
        .select()
    )


def _replaced(
    versions: sa.Table, fields: tuple[str, ...], sync_id: sa.BindParameter[int]
) -> sa.Select[Any]:
    """The records whose version the sync replaced, with that version."""
    return sa.select(
        versions.c.record_id, sa.true().label("existed"), *(versions.c[name] for name in fields)
    ).where(versions.c.ended_by == sync_id)


def _created(
    target: sa.Table, fields: tuple[str, ...], sync_id: sa.BindParameter[int]
) -> sa.Select[Any]:
    """The records the sync created: ids in the range it recorded, with no version before.

    A row in the range that the sync did not make (a manual insert between
    two of its ids) has no version made by the sync, and sync_changes drops it.
    """
    run = sa.select(SyncRun.created_after_id, SyncRun.created_through_id).where(
        SyncRun.id == sync_id
    )
    after = run.with_only_columns(SyncRun.created_after_id).scalar_subquery()
    through = run.with_only_columns(SyncRun.created_through_id).scalar_subquery()
    return sa.select(
        target.c.id.label("record_id"),
        sa.false().label("existed"),
        # Typed: an untyped NULL would make the union's column text.
        *(sa.cast(sa.null(), target.c[name].type).label(name) for name in fields),
    ).where(target.c.id > after, target.c.id <= through)


def sync_runs(dialect: str, after: int | None = None) -> sa.Select[Any]:
    """Recorded syncs (those after sync ``after``, if given), reports without their errors.

    A report may list up to SYNC_MAX_ERRORS errors; a page of a hundred such
    reports would be megabytes, so the list carries counts and each item
    (GET /syncs/<id>) its errors. The errors are dropped in SQL, not after
    loading them.
    """
    if dialect == "postgresql":
        summary = SyncRun.report.op("-")("errors")
    else:
        summary = sa.func.json_remove(SyncRun.report, "$.errors")
    query = sa.select(SyncRun.id, sa.type_coerce(summary, SyncRun.report.type).label("report"))
    return query if after is None else query.where(SyncRun.id > after)


def sync_report(session: orm.Session, sync_id: int) -> dict[str, Any] | None:
    """The stored report of one sync, or None."""
    return session.scalar(sa.select(SyncRun.report).where(SyncRun.id == sync_id))


def data_version(session: orm.Session) -> str | None:
    """The token naming the current state of the replica's data (None if its row is gone).

    Triggers replace it with a fresh random value on every committed change,
    by any route, so it is never reused for a different state.
    """
    # Core on the session's connection: it runs on every read, cache hits
    # included, and the ORM's statement handling costs more than the query.
    return session.connection().scalar(_DATA_VERSION)


_DATA_VERSION = sa.select(DataVersion.__table__.c.token).where(DataVersion.__table__.c.id == 1)


def pin_instant(session: orm.Session) -> datetime | None:
    """The instant that names the current data, for a cursor's pin (None before any data).

    The start of the newest applied sync: every row the data holds was
    written at or before it, and no applied sync began after it. Pruning
    keeps that sync's record (SPEC §5); after a prune whose horizon lies
    later, the horizon names the same data (no sync began in between: a
    prune holds the sync lock and refuses the future), and unlike the
    sync's start it can still be read ``as_of``. So a pin never depends on
    records retention may delete.
    """
    row = session.connection().execute(_PIN_INSTANT).one()
    known = [moment for moment in row if moment is not None]
    return max(known) if known else None


_PIN_INSTANT = sa.select(
    sa.select(sa.func.max(SyncRun.__table__.c.started_at))
    .where(SyncRun.__table__.c.dry_run.is_(False))
    .scalar_subquery(),
    sa.select(HistoryHorizon.__table__.c.pruned_before).scalar_subquery(),
)


def schema_revisions(session: orm.Session) -> set[str]:
    """The Alembic revisions the database is at (empty if it was never migrated).

    An unreachable database raises (OperationalError), so that it is never
    mistaken for an unmigrated one.
    """
    if not sa.inspect(session.connection()).has_table("alembic_version"):
        return set()
    return set(session.scalars(sa.text("SELECT version_num FROM alembic_version")))
