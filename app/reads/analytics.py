"""Analytics for dashboards (SPEC §3): the spread of patients' totals, its histogram, the syncs.

Every figure is computed set-based, in one statement per answer, now or as
of an instant: from the totals each patients row carries (live), or from
the versions that held then (``as_of``, app/reads/as_of.py). Money stays
exact throughout: sums and ranks in SQL on NUMERIC (integer cents on
SQLite), the mean and the histogram's edges in Python from exact integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.dialect import Bind, dialect_of
from app.db.types import CENT, Money
from app.models import Patient, SyncRun
from app.reads.as_of import live_patients_with_totals_at, payment_totals_at

PERCENTILES = (50, 90, 99)
# Edges whose width is not a terminating decimal are rounded to this many places.
INEXACT_EDGE_PLACES = 6
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Totals:
    """Where the figures come from: live patients' totals, and every live payment.

    ``patients`` has a row per live patient: ``total`` and ``payments``
    (how many live payments it has). ``payments`` is one row: ``payments``
    and ``amount`` of every live payment, whatever its patient's state
    (payments follow their own snapshot, SPEC §2 rule 7).
    """

    patients: sa.FromClause
    payments: sa.Select[Any]


def live_totals() -> Totals:
    """The replica now: every patients row carries its live payments' count and total."""
    # A subquery, not a CTE: each reader of it is planned on the table itself, so
    # min, max and the ranks are reads of the index on live totals.
    patients = (
        sa.select(Patient.payments_total.label("total"), Patient.payments_count.label("payments"))
        .where(Patient.deleted.is_(None))
        .subquery("live_totals")
    )
    # Summing the rows' counts and totals (deleted patients' included) replaces
    # a scan of every payment.
    payments = sa.select(
        sa.func.coalesce(sa.func.sum(Patient.payments_count), 0).label("payments"),
        sa.type_coerce(sa.func.coalesce(sa.func.sum(Patient.payments_total), 0), Money()).label(
            "amount"
        ),
    )
    return Totals(patients, payments)


def totals_at(at: datetime) -> Totals:
    """The replica as it stood at ``at``, from the versions live then."""
    per_patient = payment_totals_at(at)
    live = live_patients_with_totals_at(at, per_patient)
    # A CTE: computed once however many readers (aggregates, ranks, bounds) it has.
    patients = sa.select(
        live.c.payments_total.label("total"), live.c.payments_count.label("payments")
    ).cte("live_totals")
    payments = sa.select(
        sa.func.coalesce(sa.func.sum(per_patient.c.n), 0).label("payments"),
        sa.type_coerce(sa.func.coalesce(sa.func.sum(per_patient.c.total), 0), Money()).label(
            "amount"
        ),
    )
    return Totals(patients, payments)


def totals(at: datetime | None) -> Totals:
    """The figures' sources now (``at`` None) or as of ``at``."""
    return live_totals() if at is None else totals_at(at)


@dataclass(frozen=True)
class Summary:
    """GET /analytics/summary: counts, the amount, and the spread of live patients' totals.

    Before any data every count is 0 and every amount 0.00 (SPEC §3).
    """

    patients: int
    payments: int
    total_amount: Decimal
    patients_without_payments: int
    minimum: Decimal
    maximum: Decimal
    mean: Decimal
    percentiles: dict[int, Decimal]


def summary(session: orm.Session, source: Totals) -> Summary:
    """The summary of ``source``, in one statement.

    The percentiles are nearest-rank (the total at rank ceil(p/100 * n) of
    the sorted totals), the mean the exact quotient rounded half to even to
    the cent.
    """
    totals = source.patients.c.total
    patients = (
        sa.select(
            sa.func.count().label("patients"),
            sa.func.count().filter(source.patients.c.payments == 0).label("without"),
            sa.func.min(totals).label("minimum"),
            sa.func.max(totals).label("maximum"),
            sa.type_coerce(sa.func.sum(totals), Money()).label("sum"),
        )
        .select_from(source.patients)
        .subquery("patient_figures")
    )
    payments = source.payments.subquery("payment_figures")
    ranks = (
        sa.type_coerce(
            dialect_of(session).nearest_rank(totals, patients.c.patients, percent), Money()
        ).label(f"p{percent}")
        for percent in PERCENTILES
    )
    # Two aggregates without GROUP BY: one row each, joined; the ranks read the
    # totals in order, skipping to each one.
    row = session.execute(
        sa.select(patients, payments, *ranks).select_from(patients.join(payments, sa.true()))
    ).one()
    count = int(row.patients)
    return Summary(
        patients=count,
        payments=int(row.payments),
        total_amount=row.amount,
        patients_without_payments=int(row.without),
        minimum=_or_zero(row.minimum),
        maximum=_or_zero(row.maximum),
        mean=mean(row.sum, count),
        percentiles={p: _or_zero(getattr(row, f"p{p}")) for p in PERCENTILES},
    )


def _or_zero(amount: Decimal | None) -> Decimal:
    return ZERO if amount is None else amount


def mean(total: Decimal | None, count: int) -> Decimal:
    """``total / count`` rounded half to even to the cent, exactly (0.00 for no patients).

    In integer cents: Decimal division would round to its precision first,
    and a second rounding to the cent could then go the wrong way.
    """
    if not count or total is None:
        return ZERO
    cents = int(total.scaleb(2).to_integral_exact())
    quotient = Fraction(cents, count)
    # round() of a Fraction is half to even.
    return Decimal(round(quotient)).scaleb(-2).quantize(CENT)


@dataclass(frozen=True)
class Bucket:
    """One bar of the histogram: totals from ``low`` up to ``high`` (the last one inclusive)."""

    low: Decimal
    high: Decimal
    patients: int


def histogram(session: orm.Session, source: Totals, buckets: int) -> list[Bucket]:
    """Live patients per bucket of totals: ``buckets`` equal widths over [min, max] (SPEC §3).

    A total t counts in bucket floor((t - min) / w), w = (max - min) / buckets,
    computed exactly in SQL as floor(buckets * (t - min) / (max - min)); the
    maximum, which would open a bucket of its own, counts in the last. When
    every total is equal there is one bucket, and with no live patients one
    bucket from 0.00 to 0.00 holding none: the first edge is always the
    summary's min and the last its max, and the counts add up to the live
    patients. One statement: a GROUP BY of at most ``buckets + 1`` rows.
    """
    rows = session.execute(_bucket_counts(session, source, buckets)).all()
    low, high = rows[0].low, rows[0].high
    if low is None or high is None:
        return [Bucket(ZERO, ZERO, 0)]
    if low == high:
        return [Bucket(low, high, sum(int(row.patients) for row in rows))]
    counts = [0] * buckets
    for row in rows:
        counts[min(int(row.bucket), buckets - 1)] += int(row.patients)
    edges = bucket_edges(low, high, buckets)
    return [Bucket(edges[index], edges[index + 1], count) for index, count in enumerate(counts)]


def _bucket_counts(session: orm.Session, source: Totals, buckets: int) -> sa.Select[Any]:
    """(low, high, bucket, patients) per non-empty bucket; one row of NULLs without patients.

    Grouped by the bucket number alone (the bounds joined afterwards): hashing
    two NUMERIC keys more per row cost a third of the statement.
    """
    totals = source.patients.c.total
    bounds = (
        sa.select(sa.func.min(totals).label("low"), sa.func.max(totals).label("high"))
        .select_from(source.patients)
        .cte("bounds")
    )
    # Arithmetic on the stored values (NUMERIC, or SQLite's cents): the quotient
    # of two differences is the same in either unit. nullif: all equal, one bucket.
    span = sa.type_coerce(bounds.c.high, sa.Numeric()) - sa.type_coerce(bounds.c.low, sa.Numeric())
    offset = sa.type_coerce(totals, sa.Numeric()) - sa.type_coerce(bounds.c.low, sa.Numeric())
    bucket = sa.func.coalesce(
        dialect_of(session).whole_quotient(
            sa.literal(buckets, sa.Integer()) * offset, sa.func.nullif(span, 0)
        ),
        0,
    ).label("bucket")
    counted = (
        sa.select(bucket, sa.func.count().label("patients"))
        .select_from(source.patients.join(bounds, sa.true()))
        .group_by(bucket)
        .subquery("counted")
    )
    return sa.select(bounds.c.low, bounds.c.high, counted.c.bucket, counted.c.patients).select_from(
        bounds.outerjoin(counted, sa.true())
    )


def bucket_edges(low: Decimal, high: Decimal, buckets: int) -> list[Decimal]:
    """The ``buckets + 1`` edges low + i * w, w = (high - low) / buckets.

    Exact when w is a terminating decimal (every edge with as many places as
    w needs, at least two), else rounded half to even to six places.
    """
    width = (Fraction(high) - Fraction(low)) / buckets
    places = _terminating_places(width.denominator)
    if places is None:
        places = INEXACT_EDGE_PLACES
    places = max(places, 2)
    scale = 10**places
    return [
        Decimal(round((Fraction(low) + index * width) * scale)).scaleb(-places)
        for index in range(buckets + 1)
    ]


def _terminating_places(denominator: int) -> int | None:
    """The decimal places 1/denominator needs, or None if its expansion never ends."""
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    return max(twos, fives) if denominator == 1 else None


def sync_trend(bind: Bind, after: int | None = None) -> sa.Select[Any]:
    """Recorded syncs (those after sync ``after``, if given): what GET /analytics/syncs lists.

    Each with its state, times and its report without the errors (the
    counts), in acceptance order (ids), unfinished ones included.
    """
    report = dialect_of(bind).json_without(SyncRun.report, "errors")
    query = sa.select(
        SyncRun.id,
        SyncRun.entity,
        SyncRun.state,
        SyncRun.dry_run,
        SyncRun.started_at,
        SyncRun.finished_at,
        sa.type_coerce(report, SyncRun.report.type).label("report"),
    )
    return query if after is None else query.where(SyncRun.id > after)
