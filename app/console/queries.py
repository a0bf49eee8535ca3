"""SQL the console needs and the API does not: figures, the totals histogram, timelines.

Everything else the console shows comes from the API's own queries
(app/reads/live.py, app/reads/as_of.py), so both answer the same question
the same way. Each function here is one statement, whatever the data size;
a timeline's parts are read a window at a time (console/versions.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_clock
from app.db.dialect import dialect_of
from app.db.types import Money, UTCDateTime
from app.entities import PATIENTS, PAYMENT_PATIENT, PAYMENTS
from app.models import Patient, PatientVersion, Payment, PaymentVersion, SyncRun
from app.reads import syncs


class Figures(NamedTuple):
    """Live patients, live payments, the amount those payments add up to, and when.

    ``now`` is the database's clock as the figures were read: what the page
    calls now, the same on every node (SPEC §8).
    """

    patients: int
    payments: int
    amount: Decimal
    now: datetime


def figures(session: orm.Session) -> Figures:
    """The replica's headline figures, from the patients table alone.

    Each patient row carries the count and total of its live payments
    (deleted patients included: their payments stay live, SPEC §2 rule 7),
    so summing them over 100k patients replaces a scan of 1M payments.
    """
    live = sa.func.count().filter(Patient.deleted.is_(None))
    patients, payments, amount, now = session.execute(
        sa.select(
            live,
            sa.func.coalesce(sa.func.sum(Patient.payments_count), 0),
            sa.type_coerce(
                sa.func.coalesce(sa.func.sum(Patient.payments_total), 0), Money(None, 2)
            ),
            database_clock(session.connection()),
        )
    ).one()
    return Figures(int(patients), int(payments), amount, now)


def last_syncs(session: orm.Session) -> list[dict[str, Any]]:
    """The report (without its errors) of the newest applied sync of each entity.

    Newest by the order syncs were applied in: an asynchronous sync may be
    applied after one accepted later (a larger id).
    """
    newest = (
        sa.select(sa.func.max(SyncRun.applied_seq))
        .where(SyncRun.dry_run.is_(False), SyncRun.state == "applied")
        .group_by(SyncRun.entity)
    )
    rows = session.execute(syncs.sync_runs(session).where(SyncRun.applied_seq.in_(newest))).all()
    return [syncs.summary_json(row) for row in rows]


class TotalsSpread(NamedTuple):
    """The smallest and largest total of the live patients, and how many there are."""

    low: Decimal | None
    high: Decimal | None
    patients: int


def totals_spread(session: orm.Session) -> TotalsSpread:
    """Min, max and count of live patients' totals (two ends of an index, and a count)."""
    total = Patient.payments_total
    low, high, count = session.execute(
        sa.select(sa.func.min(total), sa.func.max(total), sa.func.count()).where(
            Patient.deleted.is_(None)
        )
    ).one()
    return TotalsSpread(low, high, int(count))


def totals_histogram(session: orm.Session, width: Decimal) -> dict[int, int]:
    """Live patients per bucket ``n`` of totals in [n * width, (n + 1) * width).

    One GROUP BY over integer arithmetic in cents, which both databases do
    exactly: SQLite stores money as integer cents already (app/db/types.py),
    PostgreSQL's NUMERIC times 100 is a whole number. Integer division
    truncates toward zero, so negative totals (refunds) are floored by hand.
    """
    cents = dialect_of(session).cents(Patient.__table__.c.payments_total)
    step = int(width * 100)
    bucket = sa.case((cents >= 0, cents // step), else_=-((-cents + (step - 1)) // step))
    rows = session.execute(
        sa.select(bucket.label("bucket"), sa.func.count())
        .where(Patient.deleted.is_(None))
        .group_by(bucket)
    ).all()
    return {int(index): int(count) for index, count in rows}


def patient_versions(record_id: int) -> list[sa.Select[Any]]:
    """The versions of one patient, as two parts for console.versions to window: the kept
    ones (index (record_id, valid_from)) and its row, the current one."""
    kept = PatientVersion.__table__
    row = Patient.__table__
    return [
        sa.select(
            kept.c.record_id,
            *(kept.c[name] for name in _PATIENT_FIELDS),
            kept.c.valid_from,
            kept.c.valid_to,
            kept.c.sync_id,
        ).where(kept.c.record_id == record_id),
        sa.select(
            row.c.id.label("record_id"),
            *(row.c[name] for name in _PATIENT_FIELDS),
            row.c.updated.label("valid_from"),
            sa.cast(sa.null(), UTCDateTime()).label("valid_to"),
            row.c.sync_id,
        ).where(row.c.id == record_id),
    ]


def with_patient_before(window: sa.Subquery) -> sa.Select[Any]:
    """Each version of ``window`` with the version it replaced (``before_*``; ``existed``).

    The version a sync replaced is the one it ended: a lookup in the index
    (ended_by, record_id) per row of the window, whatever the history's length.
    """
    before = PatientVersion.__table__.alias("before")
    return sa.select(
        window,
        before.c.record_id.is_not(None).label("existed"),
        *(before.c[name].label(f"before_{name}") for name in _PATIENT_FIELDS),
    ).select_from(
        window.outerjoin(
            before,
            sa.and_(
                before.c.record_id == window.c.record_id, before.c.ended_by == window.c.sync_id
            ),
        )
    )


# What a patient's timeline compares: its synced fields and deleted.
_PATIENT_FIELDS = (*PATIENTS.stored_columns, "deleted")
# What a payment's timeline on its patient's page reads of each version: its own fields
# (its patient is the page's), and the patient's externalId that timelines show.
_PAYMENT_OWN = tuple(field.stored_column for field in PAYMENTS.own)


def payment_versions(patient_id: int) -> list[sa.Select[Any]]:
    """Every version of a payment while it belonged to patient ``patient_id``, as two parts:
    the kept ones (index (patient_id, valid_from)) and its live payments' rows (index
    (patient_id, id) where live).

    A payment deleted while it belonged to the patient is there as its last
    live version, which the deletion ended (see with_payment_neighbours).
    """
    kept = PaymentVersion.__table__
    row = Payment.__table__
    return [
        sa.select(
            kept.c.record_id,
            kept.c.external_id,
            *(kept.c[name] for name in _PAYMENT_OWN),
            kept.c.deleted,
            kept.c.valid_from,
            kept.c.valid_to,
            kept.c.sync_id,
            kept.c.ended_by,
        ).where(kept.c.patient_id == patient_id),
        sa.select(
            row.c.id.label("record_id"),
            row.c.external_id,
            *(row.c[name] for name in _PAYMENT_OWN),
            row.c.deleted,
            row.c.updated.label("valid_from"),
            sa.cast(sa.null(), UTCDateTime()).label("valid_to"),
            row.c.sync_id,
            sa.cast(sa.null(), sa.Integer()).label("ended_by"),
        ).where(row.c.patient_id == patient_id, row.c.deleted.is_(None)),
    ]


def with_payment_neighbours(window: sa.Subquery) -> sa.Select[Any]:
    """Each payment version of ``window`` with the one before it and, for a kept one, after it.

    Before: the version its sync ended (``existed``, ``before_amount``,
    ``before_deleted``, ``before_patient_id``, ``before_patient_external_id``).
    After: the version made by the sync that ended it, kept or the row
    (``after_patient_id``, ``after_patient_external_id``, ``after_deleted``,
    ``after_is_row``), which tells whether the payment then moved to another
    patient or was deleted. Index lookups per row of the window: (ended_by,
    record_id), (sync_id, record_id) and primary keys.
    """
    before = PaymentVersion.__table__.alias("before")
    after = PaymentVersion.__table__.alias("after")
    after_row = Payment.__table__.alias("after_row")
    before_owner = Patient.__table__.alias("before_owner")
    after_owner = Patient.__table__.alias("after_owner")
    after_patient = sa.func.coalesce(after.c.patient_id, after_row.c.patient_id)
    joined = (
        window.outerjoin(
            before,
            sa.and_(
                before.c.record_id == window.c.record_id, before.c.ended_by == window.c.sync_id
            ),
        )
        .outerjoin(before_owner, before_owner.c.id == before.c.patient_id)
        .outerjoin(
            after,
            sa.and_(after.c.record_id == window.c.record_id, after.c.sync_id == window.c.ended_by),
        )
        .outerjoin(
            after_row,
            sa.and_(
                after.c.id.is_(None),
                after_row.c.id == window.c.record_id,
                after_row.c.sync_id == window.c.ended_by,
            ),
        )
        .outerjoin(after_owner, after_owner.c.id == after_patient)
    )
    return sa.select(
        window,
        before.c.record_id.is_not(None).label("existed"),
        *(before.c[name].label(f"before_{name}") for name in _PAYMENT_OWN),
        before.c.deleted.label("before_deleted"),
        before.c.patient_id.label("before_patient_id"),
        before_owner.c.external_id.label(f"before_{PAYMENT_PATIENT.column}"),
        after_patient.label("after_patient_id"),
        after_owner.c.external_id.label(f"after_{PAYMENT_PATIENT.column}"),
        sa.func.coalesce(after.c.deleted, after_row.c.deleted).label("after_deleted"),
        after_row.c.id.is_not(None).label("after_is_row"),
    ).select_from(joined)
