"""The replica as it stands now: live patients and payments, and the version naming that state."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.types import CENT, TOTAL_LIMIT
from app.entities import PAYMENT_PATIENT
from app.models import (
    DataVersion,
    HistoryHorizon,
    Patient,
    Payment,
    SyncRun,
)

PATIENT_COLUMNS = [column for column in Patient.__table__.c if column.name != "deleted"]


PAYMENT_COLUMNS = [
    column
    for column in Payment.__table__.c
    if column.name not in ("deleted", PAYMENT_PATIENT.stored_column)
]


def live_patients(
    payment_min: Decimal | None = None, payment_max: Decimal | None = None
) -> sa.Select[Any]:
    """Live patients whose live payments total lies within the inclusive bounds."""
    if payment_min is None and payment_max is None:
        return _LIVE_PATIENTS
    query = within_bounds(_LIVE_PATIENTS, payment_min is not None, payment_max is not None)
    return query.params(bounds_of(payment_min, payment_max))


_LIVE_PATIENTS = sa.select(*PATIENT_COLUMNS).where(Patient.deleted.is_(None))


@functools.lru_cache(maxsize=16)
def within_bounds(query: sa.Select[Any], has_min: bool, has_max: bool) -> sa.Select[Any]:
    """``query`` (of live patients) with bounds on the total as the bind parameters
    ``payment_min`` and ``payment_max``; bind ``bounds_of``'s values.

    Built once per statement and shape: a page reusing one statement costs
    SQLAlchemy no building and no cache key (those of the rows' JSON alone
    were a fifth of an uncached page's Python time under gunicorn).
    """
    if has_min:
        query = query.where(Patient.payments_total >= sa.bindparam("payment_min"))
    if has_max:
        query = query.where(Patient.payments_total <= sa.bindparam("payment_max"))
    return query


def bounds_of(payment_min: Decimal | None, payment_max: Decimal | None) -> dict[str, Decimal]:
    """The values of ``within_bounds``'s bind parameters for these bounds."""
    bounds = {}
    if payment_min is not None:
        bounds["payment_min"] = in_cents(payment_min, ROUND_CEILING)
    if payment_max is not None:
        bounds["payment_max"] = in_cents(payment_max, ROUND_FLOOR)
    return bounds


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
        sa.select(*PAYMENT_COLUMNS, Patient.external_id.label(PAYMENT_PATIENT.column))
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


# What reads run on: a request's session, or a connection of their own (app/api/fast_pages.py).
Reader = orm.Session | sa.Connection


def data_version(reader: Reader) -> str | None:
    """The token naming the current state of the replica's data (None if its row is gone).

    Triggers replace it with a fresh random value on every committed change,
    by any route, so it is never reused for a different state.
    """
    # Core on the session's connection: it runs on every read, cache hits
    # included, and the ORM's statement handling costs more than the query.
    return connection_of(reader).scalar(DATA_VERSION)


def connection_of(reader: Reader) -> sa.Connection:
    """The connection ``reader`` runs its statements on."""
    return reader if isinstance(reader, sa.Connection) else reader.connection()


DATA_VERSION = sa.select(DataVersion.__table__.c.token).where(DataVersion.__table__.c.id == 1)


def pin_instant(reader: Reader) -> tuple[datetime | None, str | None]:
    """The instant that names the current data, for a cursor's pin (None before any data),
    and the data version it names, read in the same statement.

    The start of the newest applied sync: every row the data holds was
    written at or before it, and no applied sync began after it. Pruning
    keeps that sync's record (SPEC §5); after a prune whose horizon lies
    later, the horizon names the same data (no sync began in between: a
    prune holds the sync lock and refuses the future), and unlike the
    sync's start it can still be read ``as_of``. So a pin never depends on
    records retention may delete.
    """
    *moments, version = connection_of(reader).execute(_PIN_INSTANT).one()
    known = [moment for moment in moments if moment is not None]
    return (max(known) if known else None), version


_PIN_INSTANT = sa.select(
    sa.select(sa.func.max(SyncRun.__table__.c.started_at))
    .where(
        SyncRun.__table__.c.dry_run.is_(False),
        # A queued sync's started_at is its acceptance: it has changed nothing yet.
        SyncRun.__table__.c.state == "applied",
    )
    .scalar_subquery(),
    sa.select(HistoryHorizon.__table__.c.pruned_before).scalar_subquery(),
    DATA_VERSION.scalar_subquery(),
)


def schema_revisions(session: orm.Session) -> set[str]:
    """The Alembic revisions the database is at (empty if it was never migrated).

    An unreachable database raises (OperationalError), so that it is never
    mistaken for an unmigrated one.
    """
    if not sa.inspect(session.connection()).has_table("alembic_version"):
        return set()
    return set(session.scalars(sa.text("SELECT version_num FROM alembic_version")))
