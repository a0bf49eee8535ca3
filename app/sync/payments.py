"""The payments entity (SPEC §2): a record's amount and patient, and the totals it moves.

Only payments have rule 7 (a payment's patientId must name a live patient)
and derived data on another table (each patient's paymentsTotal and
paymentsCount): both are this entity's own steps of the merge.
"""

from __future__ import annotations

import re
from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from itertools import permutations
from typing import Any

import sqlalchemy as sa

from app import entities
from app.db.dialect import dialect_of
from app.db.types import CENT, Money
from app.models import Patient, Payment
from app.sync import merge
from app.sync.entity import Entity, Fields, PlanSource, Rejections
from app.sync.record_schemas import MAX_ABS_AMOUNT, PaymentRecordSchema
from app.sync.records import fast_external_id
from app.sync.report import RecordError
from app.sync.staging import copy_text

PATIENTS = Patient.__table__
PAYMENTS = Payment.__table__
_TOTALS = (PATIENTS.c.payments_total.name, PATIENTS.c.payments_count.name)
# Each patient's total and count moved by one payments sync (``refresh_payment_totals``).
_SUMS = sa.Table(
    "sync_payment_sums",
    sa.MetaData(),
    sa.Column("patient_id", sa.Integer, nullable=False),
    sa.Column("total", Money(None, 2), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


def fast_payment(record: Any) -> Fields | None:
    """(externalId, patientId, amount) of a certainly valid payment, else None."""
    if type(record) is not dict:
        return None
    external_id = fast_external_id(record.get("externalId"))
    patient = fast_external_id(record.get("patientId"))
    amount = record.get("amount")
    if external_id is None or patient is None:
        return None
    if type(amount) is int:
        amount = Decimal(amount)
    elif type(amount) is not Decimal or not amount.is_finite():
        return None
    if amount.copy_abs() >= MAX_ABS_AMOUNT:  # abs() would overflow on 1e1000000
        return None
    cents = amount.quantize(CENT)
    return (external_id, patient, cents) if cents == amount else None


def copy_line(fields: Fields) -> str:
    """The staged fields of one payment as COPY text."""
    patient_external_id, amount = fields
    return f"{copy_text(patient_external_id)}\t{amount}"


# A payment in its plainest form, as JSON text: an object of exactly externalId,
# patientId and amount, in any order, with a little whitespace. Each id is 1 to 255
# printable ASCII characters other than '"' and '\\' (so JSON reads it as written,
# fast_external_id takes it, and copy_text leaves it as is); the amount is a number with
# exactly two decimals under 10^10 (so it is stored as written). Possessive quantifiers:
# what each may take never starts what follows it. An element is at most 758 characters
# (2 braces, 31 of names, 3 colons, 2 commas, 2 * 257 + 14 of values, 12 * 16 of
# whitespace), within PLAIN_ELEMENT_CHARS.
_WS = r"[ \t\n\r]{0,16}+"
_PLAIN_VALUES = {
    "externalId": r'"([ !#-\[\]-~]{1,255}+)"',
    "patientId": r'"([ !#-\[\]-~]{1,255}+)"',
    "amount": r"(-?(?:0|[1-9][0-9]{0,9}+)\.[0-9]{2})",
}
_FIELDS = ("externalId", "patientId", "amount")


def _plain_shape(order: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[int, ...]]:
    """The pattern of a plain payment with its keys in ``order``, followed by a comma.

    And where the externalId, patientId and amount are among its groups.
    """
    pairs = f"{_WS},{_WS}".join(f'"{key}"{_WS}:{_WS}{_PLAIN_VALUES[key]}' for key in order)
    pattern = re.compile(rf"\{{{_WS}{pairs}{_WS}\}}{_WS},{_WS}")
    return pattern, tuple(order.index(field) for field in _FIELDS)


_PLAIN_SHAPES = [_plain_shape(order) for order in permutations(_FIELDS)]
# StageText.body of a valid payment (tests/sync/test_parallel_parse.py holds them equal).
_PLAIN_LINE = "{}\tt\t{}\t{}\n"


def plain_block(text: str) -> tuple[int, str] | None:
    """(elements, stage lines) of ``text`` if it is nothing but plain payments, each then a comma.

    Without decoding: one pattern (the first element's key order) splits the
    whole block, in C. A block with anything else in it is None: its
    elements are decoded and validated one by one as any others.
    """
    shape = next((shape for shape in _PLAIN_SHAPES if shape[0].match(text) is not None), None)
    if shape is None:
        return None
    pattern, (external_id, patient_id, amount) = shape
    parts = pattern.split(text)
    # [text before the first match, its 3 groups, text before the next, ...]: all between empty.
    if any(parts[0::4]):
        return None
    ids = parts[1 + external_id :: 4]
    patients, amounts = parts[1 + patient_id :: 4], parts[1 + amount :: 4]
    return len(ids), "".join(map(_PLAIN_LINE.format, ids, patients, amounts))


def plan_source(stage: sa.Table, target: sa.Table) -> PlanSource:
    """Each staged payment with its stored row and its live patient (rule 7).

    A payment whose patientId matches no live patient becomes invalid here
    and is flagged ``unknown_patient``; the stored row's values come along,
    which the totals deltas need.
    """
    live_patient = sa.and_(
        PATIENTS.c.external_id == stage.c.patient_external_id, PATIENTS.c.deleted.is_(None)
    )
    source = stage.outerjoin(target, target.c.external_id == stage.c.external_id).outerjoin(
        PATIENTS, live_patient
    )
    return PlanSource(
        source=source,
        valid=sa.and_(stage.c.valid, PATIENTS.c.id.is_not(None)),
        values={
            "amount": stage.c.amount,
            "patient_id": PATIENTS.c.id,
            "patient_external_id": stage.c.patient_external_id,
            "unknown_patient": sa.and_(stage.c.valid, PATIENTS.c.id.is_(None)),
            "old_patient_id": target.c.patient_id,
            "old_amount": target.c.amount,
        },
    )


def reject_unknown_patients(
    connection: sa.Connection, plan: sa.Table, max_errors: int
) -> Rejections:
    """Rule 7: report payments whose patientId matches no live patient.

    ``plan_source`` already made them invalid; their stored rows stay in the
    plan, so rule 5 protects them. Returns the count and the first errors.
    """
    rejected = connection.scalar(sa.select(sa.func.count()).where(plan.c.unknown_patient)) or 0
    if not rejected:
        return 0, []
    first = connection.execute(
        sa.select(plan.c.idx, plan.c.external_id, plan.c.patient_external_id)
        .where(plan.c.unknown_patient)
        .order_by(plan.c.idx)
        .limit(max_errors)
    ).all()
    return rejected, [
        RecordError(
            index,
            external_id,
            {"patientId": [f"No live patient with externalId '{patient_external_id}'."]},
        )
        for index, external_id, patient_external_id in first
    ]


def refresh_payment_totals(connection: sa.Connection, plan: sa.Table, now: datetime) -> int:
    """Move paymentsTotal/paymentsCount by exactly what this payments sync changed.

    Each written payment adds its new amount to its (new) patient; each live
    payment that changed takes its old amount off its old patient; each
    payment deleted now takes its amount off. A restored payment was not
    counted, so it only adds. Summing these deltas per patient touches only
    the changed payments, not every payment of every touched patient.
    """
    written = sa.and_(
        plan.c.valid, sa.or_(plan.c.target_id.is_(None), plan.c.changed, plan.c.target_deleted)
    )
    replaced = sa.and_(plan.c.valid, plan.c.changed, sa.not_(plan.c.target_deleted))
    deltas = sa.union_all(
        sa.select(
            plan.c.patient_id.label("patient_id"),
            plan.c.amount.label("amount"),
            sa.literal(1).label("n"),
        ).where(written),
        sa.select(plan.c.old_patient_id, -plan.c.old_amount, sa.literal(-1)).where(replaced),
        sa.select(PAYMENTS.c.patient_id, -PAYMENTS.c.amount, sa.literal(-1)).where(
            PAYMENTS.c.deleted == now
        ),
    ).subquery()
    sums = (
        sa.select(
            deltas.c.patient_id,
            sa.func.sum(deltas.c.amount).label("total"),
            sa.func.sum(deltas.c.n).label("n"),
        )
        .group_by(deltas.c.patient_id)
        .having(sa.or_(sa.func.sum(deltas.c.amount) != 0, sa.func.sum(deltas.c.n) != 0))
    )
    # Kept as a table the planner has statistics for: it then joins the sums
    # to the patients by hash, in the table's order, where the estimate of a
    # subquery (200 rows) had it look up each of 100,000 patients by key:
    # 0.5 s against 1.0 s.
    _SUMS.create(connection)
    connection.execute(sa.insert(_SUMS).from_select(["patient_id", "total", "n"], sums))
    dialect_of(connection).ready_for_joins(connection, _SUMS, "patient_id")
    statement = (
        sa.update(PATIENTS)
        .where(PATIENTS.c.id == _SUMS.c.patient_id)
        .values(
            payments_total=PATIENTS.c.payments_total + _SUMS.c.total,
            payments_count=PATIENTS.c.payments_count + _SUMS.c.n,
        )
    )
    moved = connection.execute(statement).rowcount
    _SUMS.drop(connection)
    return moved


def update_totals(
    connection: sa.Connection, plan: sa.Table, now: datetime, loaded_in_bulk: bool
) -> None:
    """Move the totals, and refresh the patients' statistics if many of them moved.

    After a load in bulk (an initial load, which moves most patients' totals),
    the two indexes on the totals are built once afterwards too, and the
    update, which then changes no indexed column, is HOT: the patients' pages
    are half free for it (migration a1c3e5f7b9d2), so their other indexes
    are not entered again. Readers wait no longer for it: the load already
    holds the patients table, whose foreign key it dropped
    (app/db/deferred_indexes.py).
    """
    deferred = (
        dialect_of(connection).indexes_deferred(connection, PATIENTS, _TOTALS)
        if loaded_in_bulk
        else nullcontext(False)
    )
    with deferred:
        moved = refresh_payment_totals(connection, plan, now)
    if moved > merge.ANALYZE_SHARE * max(merge.count_live(connection, PATIENTS), 1):
        merge.analyze(connection, PATIENTS)


PAYMENTS_ENTITY = Entity(
    name=entities.PAYMENTS.name,
    target=entities.PAYMENTS.table,
    versions=entities.PAYMENTS.versions,
    schema=PaymentRecordSchema(),
    fast_path=fast_payment,
    staged=(("patient_external_id", sa.Text), ("amount", Money(12, 2))),
    copy_line=copy_line,
    merged=("amount", "patient_id"),
    plan_columns=(
        ("amount", Money(12, 2)),
        ("patient_id", sa.Integer),
        ("patient_external_id", sa.Text),
        ("unknown_patient", sa.Boolean),
        ("old_patient_id", sa.Integer),
        ("old_amount", Money(12, 2)),
    ),
    plan_source=plan_source,
    plain_block=plain_block,
    reject_in_plan=reject_unknown_patients,
    after_merge=update_totals,
)
