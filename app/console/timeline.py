"""A record's versions as a timeline: what each sync made of it, and which fields it changed.

Rows come a window at a time (console/versions.py), each with the version
it replaced beside it (``existed`` and ``before_*`` columns), so a version's
op and changes need nothing outside its own row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from app.entities import PATIENTS, PAYMENT_PATIENT, PAYMENTS
from app.reads.changes import op_of

# (label, column) of the synced fields each timeline compares.
PATIENT_FIELDS = PATIENTS.labelled
PAYMENT_FIELDS = PAYMENTS.labelled


@dataclass(frozen=True)
class Change:
    """One field a version changed: its value before and after."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Departure:
    """How a payment's time with a patient ended: ``moved`` to another patient, or ``deleted``."""

    op: str
    at: datetime
    sync_id: int | None
    to_patient: str | None


@dataclass(frozen=True)
class Version:
    """One version: when it held, the sync that made it, its op, its changes and its values.

    ``record`` names the payment on a patient's payments timeline (None on a
    record's own); ``departure`` says when the payment then left the patient.
    """

    valid_from: datetime
    valid_to: datetime | None
    sync_id: int | None
    op: str
    changes: tuple[Change, ...]
    values: tuple[tuple[str, Any], ...]
    record: str | None = None
    departure: Departure | None = None

    def held_at(self, moment: datetime) -> bool:
        """Whether this version was the record's state at ``moment``."""
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


Timeline = list[Version]


def _version(row: Any, fields: Sequence[tuple[str, str]], now: dict[str, Any]) -> Version:
    """One version from its values ``now`` and, if it replaced one (``existed``), the
    replaced version's values (the row's ``before_*`` columns)."""
    values = tuple((label, now[column]) for label, column in fields)
    if not row.existed:
        op, changes = ("deleted" if row.deleted else "created"), ()
    else:
        before = {column: getattr(row, f"before_{column}") for _, column in fields}
        changes = tuple(
            Change(label, before[column], now[column])
            for label, column in fields
            if before[column] != now[column]
        )
        op = op_of(True, row.before_deleted is not None, row.deleted is not None)
    return Version(row.valid_from, row.valid_to, row.sync_id, op, changes, values)


def patient_timeline(rows: Iterable[Any]) -> Timeline:
    """A patient's versions (rows of console.queries.with_patient_before), in the rows' order."""
    return [
        _version(row, PATIENT_FIELDS, {name: getattr(row, name) for _, name in PATIENT_FIELDS})
        for row in rows
    ]


def payments_timeline(rows: Iterable[Any], patient_id: int, patient: str) -> Timeline:
    """The versions of a patient's payments (rows of console.queries.with_payment_neighbours).

    Patient ``patient_id`` (externalId ``patient``) held each of them; a
    payment that came from another patient shows the move as a change, and
    one that then left (moved to another patient, or deleted) says so.
    """
    timeline = []
    for row in rows:
        now = {
            column: patient if column == PAYMENT_PATIENT.column else getattr(row, column)
            for _, column in PAYMENT_FIELDS
        }
        version = _version(row, PAYMENT_FIELDS, now)
        timeline.append(
            replace(version, record=row.external_id, departure=_departure(row, patient_id))
        )
    return timeline


def _departure(row: Any, patient_id: int) -> Departure | None:
    """How the payment left the patient after this version, if the next one is not the patient's.

    A later version of the patient's own is on the timeline already, except
    the row of a payment deleted for good: its live payments only are read.
    """
    if row.valid_to is None or row.after_patient_id is None:
        return None
    if row.after_patient_id != patient_id:
        return Departure("moved", row.valid_to, row.ended_by, row.after_patient_external_id)
    if row.after_is_row and row.after_deleted is not None:
        return Departure("deleted", row.valid_to, row.ended_by, None)
    return None
