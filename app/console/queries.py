"""SQL the console needs and the API does not: figures, the totals histogram, version lists.

Everything else the console shows comes from the API's own queries
(app/queries.py, app/history_queries.py), so both answer the same question
the same way. Each function here is one statement, whatever the data size.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import orm

from app import queries
from app.models import Patient, Payment, PaymentVersion, SyncRun
from app.types import Money


class Figures(NamedTuple):
    """Live patients, live payments and the amount those payments add up to."""

    patients: int
    payments: int
    amount: Decimal


def figures(session: orm.Session) -> Figures:
    """The replica's headline figures, from the patients table alone.

    Each patient row carries the count and total of its live payments
    (deleted patients included: their payments stay live, SPEC §2 rule 7),
    so summing them over 100k patients replaces a scan of 1M payments.
    """
    live = sa.func.count().filter(Patient.deleted.is_(None))
    patients, payments, amount = session.execute(sa.select(
        live, sa.func.coalesce(sa.func.sum(Patient.payments_count), 0),
        sa.type_coerce(sa.func.coalesce(sa.func.sum(Patient.payments_total), 0),
                       Money(None, 2)))).one()
    return Figures(int(patients), int(payments), amount)


def last_syncs(session: orm.Session) -> list[dict[str, Any]]:
    """The report (without its errors) of the newest applied sync of each entity."""
    newest = (sa.select(sa.func.max(SyncRun.id)).where(SyncRun.dry_run.is_(False))
              .group_by(SyncRun.entity))
    dialect = session.get_bind().dialect.name
    rows = session.execute(queries.sync_runs(dialect).where(SyncRun.id.in_(newest))).all()
    return [row.report for row in rows]


class TotalsSpread(NamedTuple):
    """The smallest and largest total of the live patients, and how many there are."""

    low: Decimal | None
    high: Decimal | None
    patients: int


def totals_spread(session: orm.Session) -> TotalsSpread:
    """Min, max and count of live patients' totals (two ends of an index, and a count)."""
    total = Patient.payments_total
    low, high, count = session.execute(
        sa.select(sa.func.min(total), sa.func.max(total), sa.func.count())
        .where(Patient.deleted.is_(None))).one()
    return TotalsSpread(low, high, int(count))


def totals_histogram(session: orm.Session, width: Decimal) -> dict[int, int]:
    """Live patients per bucket ``n`` of totals in [n * width, (n + 1) * width).

    One GROUP BY over integer arithmetic in cents, which both databases do
    exactly: SQLite stores money as integer cents already (app/types.py),
    PostgreSQL's NUMERIC times 100 is a whole number. Integer division
    truncates toward zero, so negative totals (refunds) are floored by hand.
    """
    cents = _total_cents(session.get_bind().dialect.name)
    step = int(width * 100)
    bucket = sa.case((cents >= 0, cents // step), else_=-((-cents + (step - 1)) // step))
    rows = session.execute(sa.select(bucket.label("bucket"), sa.func.count())
                           .where(Patient.deleted.is_(None)).group_by(bucket)).all()
    return {int(index): int(count) for index, count in rows}


def _total_cents(dialect: str) -> sa.ColumnElement[int]:
    """A live patient's total as an integer number of cents."""
    if dialect == "sqlite":
        return sa.type_coerce(Patient.__table__.c.payments_total, sa.BigInteger())
    return sa.cast(Patient.__table__.c.payments_total * 100, sa.BigInteger())


def payment_versions(payment_ids: list[int]) -> sa.Select[Any]:
    """Every version of each payment in ``payment_ids``, oldest first per payment.

    The versions of one patient's payments in one statement (not one per
    payment); each carries its patient's externalId in that version, as
    ``queries.payment_history`` does for a single payment.
    """
    owner = orm.aliased(Patient)
    ids = payment_ids
    now = (sa.select(Payment.id.label("record_id"), Payment.external_id,
                     owner.external_id.label("patient_external_id"), Payment.amount,
                     Payment.deleted, Payment.updated.label("valid_from"),
                     sa.null().label("valid_to"), Payment.sync_id)
           .join(owner, owner.id == Payment.patient_id).where(Payment.id.in_(ids)))
    kept = (sa.select(PaymentVersion.record_id, PaymentVersion.external_id,
                      owner.external_id.label("patient_external_id"), PaymentVersion.amount,
                      PaymentVersion.deleted, PaymentVersion.valid_from,
                      PaymentVersion.valid_to, PaymentVersion.sync_id)
            .join(owner, owner.id == PaymentVersion.patient_id)
            .where(PaymentVersion.record_id.in_(ids)))
    # The kept versions first: a union takes its column types from its first part.
    versions = sa.union_all(kept, now).subquery("versions")
    return sa.select(versions).order_by(versions.c.record_id, versions.c.valid_from)
