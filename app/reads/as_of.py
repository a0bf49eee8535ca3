"""Reads as of an instant (SPEC §5 ``as_of``): the replica as it stood then, from its versions.

A record's version at instant ``at`` is the kept version with
``valid_from <= at < valid_to`` or, if none, its row when the row began at
or before ``at``. Everything the live reads compute (totals, filters,
sorts) is computed over those versions instead, so an answer is exactly the
one the same request would have given at that instant.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.types import Money
from app.entities import PATIENTS, PAYMENT_PATIENT, PAYMENTS, Entity
from app.models import HistoryHorizon, Patient, PatientVersion, Payment, PaymentVersion
from app.reads.live import in_cents


def horizon(session: orm.Session) -> datetime | None:
    """The instant before which history was pruned, or None if it never was."""
    return session.scalar(sa.select(HistoryHorizon.pruned_before))


def pruned_horizon(session: orm.Session, at: datetime) -> datetime | None:
    """The horizon if ``at`` lies before it (the versions that held then are gone), else None."""
    pruned_before = horizon(session)
    return pruned_before if pruned_before is not None and at < pruned_before else None


def _held(entity: Entity) -> tuple[str, ...]:
    """The columns each version of ``entity`` holds: externalId, its own synced fields,
    then those held as another table's row id (a payment's patient)."""
    own = (field.stored_column for field in entity.own)
    return ("external_id", *own, *(field.stored_column for field, _ in entity.joined))


_PATIENT_FIELDS = _held(PATIENTS)
_PAYMENT_FIELDS = _held(PAYMENTS)


def _versions_at(
    model: Any,
    kept: Any,
    fields: tuple[str, ...],
    at: datetime,
    *,
    now_where: tuple[sa.ColumnElement[bool], ...] = (),
    kept_where: tuple[sa.ColumnElement[bool], ...] = (),
    with_created: bool = True,
) -> sa.Subquery:
    """Each record's version at ``at``: id, fields, created, updated (its start), deleted.

    ``now_where`` and ``kept_where`` narrow the rows and the kept versions
    read (to one patient's, say), so that an index can find them. Without
    ``with_created`` there is no ``created`` column, and no join of every
    version with its row to read it (what totals need: at 1M payments the
    join is a third of an as_of aggregation).
    """
    now = sa.select(
        model.id, *(getattr(model, name) for name in fields), model.updated, model.deleted
    ).where(model.updated <= at, *now_where)
    past = sa.select(
        kept.record_id, *(getattr(kept, name) for name in fields), kept.valid_from, kept.deleted
    ).where(kept.valid_from <= at, kept.valid_to > at, *kept_where)
    versions = sa.union_all(now, past).subquery("versions_at")
    if not with_created:
        return sa.select(versions).subquery("at")
    # created never changes: the row has it.
    return (
        sa.select(
            versions.c.id,
            *(versions.c[name] for name in fields),
            model.created,
            versions.c.updated,
            versions.c.deleted,
        )
        .join(model, model.id == versions.c.id)
        .subquery("at")
    )


def _live_payments_at(
    at: datetime, patient_id: sa.ColumnElement[Any] | None = None, *, with_created: bool = True
) -> sa.Subquery:
    """Payments live at ``at``, optionally only those of the patient ``patient_id`` then
    (``with_created``: as _versions_at)."""
    narrowed: dict[str, tuple[sa.ColumnElement[bool], ...]] = {}
    if patient_id is not None:
        # A row deleted now was either deleted at ``at`` too or is read from its
        # kept version, so only live rows matter: the live-payments index has them.
        narrowed = {
            "now_where": (Payment.patient_id == patient_id, Payment.deleted.is_(None)),
            "kept_where": (PaymentVersion.patient_id == patient_id,),
        }
    payments = _versions_at(
        Payment, PaymentVersion, _PAYMENT_FIELDS, at, with_created=with_created, **narrowed
    )
    return sa.select(payments).where(payments.c.deleted.is_(None)).subquery("live_payments_at")


def _stored_patient_id(external_id: str) -> sa.ScalarSelect[Any]:
    """The id of the patient ever stored under ``external_id``, as a subquery."""
    return sa.select(Patient.id).where(Patient.external_id == external_id).scalar_subquery()


def live_patients_at(
    at: datetime, payment_min: Decimal | None = None, payment_max: Decimal | None = None
) -> tuple[sa.Select[Any], sa.Subquery]:
    """Live patients at ``at`` with the totals of their payments live then, filtered.

    Returns the query and the subquery whose columns it selects (sort keys
    are built over them).
    """
    listed = _with_totals(
        _versions_at(Patient, PatientVersion, _PATIENT_FIELDS, at),
        _live_payments_at(at, with_created=False),
    )
    query = sa.select(listed)
    if payment_min is not None:
        query = query.where(listed.c.payments_total >= in_cents(payment_min, ROUND_CEILING))
    if payment_max is not None:
        query = query.where(listed.c.payments_total <= in_cents(payment_max, ROUND_FLOOR))
    return query, listed


def _with_totals(patients: sa.Subquery, payments: sa.Subquery) -> sa.Subquery:
    """The live ones of ``patients`` with the count and total of their ``payments``."""
    return _with_payment_totals(patients, _payment_totals(payments).subquery("totals"))


def _payment_totals(payments: sa.Subquery) -> sa.Select[Any]:
    """Each patient's count (``n``) and total (``total``) of ``payments``."""
    return sa.select(
        payments.c.patient_id,
        sa.func.sum(payments.c.amount).label("total"),
        sa.func.count().label("n"),
    ).group_by(payments.c.patient_id)


def _with_payment_totals(patients: sa.Subquery, totals: sa.FromClause) -> sa.Subquery:
    """The live ones of ``patients`` with their count and total from ``totals``."""
    return (
        sa.select(
            patients.c.id,
            *(patients.c[name] for name in _PATIENT_FIELDS),
            sa.type_coerce(sa.func.coalesce(totals.c.total, 0), Money(None, 2)).label(
                "payments_total"
            ),
            sa.func.coalesce(totals.c.n, 0).label("payments_count"),
            patients.c.created,
            patients.c.updated,
        )
        .outerjoin(totals, totals.c.patient_id == patients.c.id)
        .where(patients.c.deleted.is_(None))
        .subquery("patients_at")
    )


def payment_totals_at(at: datetime) -> sa.CTE:
    """Each patient's count (``n``) and total (``total``) of the payments live at ``at``.

    Patients deleted then included: a payment follows the payments snapshot
    alone (SPEC §2 rule 7), so it counts among the live payments whatever
    its patient's state.
    """
    return _payment_totals(_live_payments_at(at, with_created=False)).cte("payment_totals_at")


def live_patients_with_totals_at(at: datetime, totals: sa.FromClause) -> sa.Subquery:
    """Patients live at ``at``, each with ``payments_total`` and ``payments_count`` from
    ``totals`` (payment_totals_at of the same instant)."""
    return _with_payment_totals(_versions_at(Patient, PatientVersion, _PATIENT_FIELDS, at), totals)


def live_patient_at(session: orm.Session, external_id: str, at: datetime) -> sa.Row[Any] | None:
    """One patient live at ``at``, with its totals then, or None."""
    return session.execute(one_patient_at(external_id, at)).first()


def one_patient_at(external_id: str, at: datetime) -> sa.Select[Any]:
    """The patient ``external_id`` if live at ``at``, with its totals then.

    Only that patient's versions and payments are read, through indexes.
    """
    record = _stored_patient_id(external_id)
    patients = _versions_at(
        Patient,
        PatientVersion,
        _PATIENT_FIELDS,
        at,
        now_where=(Patient.id == record,),
        kept_where=(PatientVersion.record_id == record,),
    )
    return sa.select(_with_totals(patients, _live_payments_at(at, record, with_created=False)))


def live_payments_at(
    at: datetime, patient_external_id: str | None = None
) -> tuple[sa.Select[Any], sa.Subquery]:
    """Payments live at ``at`` with their patient's externalId, optionally of one patient."""
    payments = _live_payments_at(
        at, None if patient_external_id is None else _stored_patient_id(patient_external_id)
    )
    listed = (
        sa.select(
            payments.c.id,
            payments.c.external_id,
            *(payments.c[field.stored_column] for field in PAYMENTS.own),
            Patient.external_id.label(PAYMENT_PATIENT.column),
            payments.c.created,
            payments.c.updated,
        )
        .join(Patient, Patient.id == payments.c[PAYMENT_PATIENT.stored_column])
        .subquery("payments_at")
    )
    query = sa.select(listed)
    if patient_external_id is not None:
        query = query.where(listed.c[PAYMENT_PATIENT.column] == patient_external_id)
    return query, listed


def live_payment_at(session: orm.Session, external_id: str, at: datetime) -> sa.Row[Any] | None:
    """One payment live at ``at``, or None."""
    query, listed = live_payments_at(at)
    return session.execute(query.where(listed.c.external_id == external_id)).first()
