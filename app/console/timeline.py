"""A record's versions as a timeline: what each sync made of it, and which fields it changed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.changes import op_of

# (label, column) of the synced fields each timeline compares.
PATIENT_FIELDS = (("First name", "first_name"), ("Last name", "last_name"),
                  ("Middle name", "middle_name"), ("Date of birth", "date_of_birth"))
PAYMENT_FIELDS = (("Amount", "amount"), ("Patient", "patient_external_id"))


@dataclass(frozen=True)
class Change:
    """One field a version changed: its value before and after."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Version:
    """One version: when it held, the sync that made it, its op, its changes and its values."""

    valid_from: datetime
    valid_to: datetime | None
    sync_id: int | None
    op: str
    changes: tuple[Change, ...]
    values: tuple[tuple[str, Any], ...]

    def held_at(self, moment: datetime) -> bool:
        """Whether this version was the record's state at ``moment``."""
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)


Timeline = list[Version]


def timeline(rows: Iterable[Any], fields: Sequence[tuple[str, str]]) -> Timeline:
    """Versions newest first from ``rows`` in any order (one record's)."""
    ordered = sorted(rows, key=lambda row: row.valid_from)
    versions: list[Version] = []
    previous = None
    for row in ordered:
        values = tuple((label, getattr(row, column)) for label, column in fields)
        if previous is None:
            op, changes = ("deleted" if row.deleted else "created"), ()
        else:
            changes = tuple(Change(label, getattr(previous, column), getattr(row, column))
                            for label, column in fields
                            if getattr(previous, column) != getattr(row, column))
            op = op_of(True, previous.deleted is not None, row.deleted is not None)
        versions.append(Version(row.valid_from, row.valid_to, row.sync_id, op, changes, values))
        previous = row
    return versions[::-1]


def patient_timeline(rows: Iterable[Any]) -> Timeline:
    """A patient's versions, newest first."""
    return timeline(rows, PATIENT_FIELDS)


def payment_timelines(rows: Iterable[Any]) -> dict[str, Timeline]:
    """The versions of several payments (rows of console.queries.payment_versions), by externalId.

    Keyed by the payment's current externalId (its newest version's).
    """
    by_record: dict[int, list[Any]] = {}
    for row in rows:
        by_record.setdefault(row.record_id, []).append(row)
    timelines = {}
    for versions in by_record.values():
        line = timeline(versions, PAYMENT_FIELDS)
        newest = max(versions, key=lambda row: row.valid_from)
        timelines[newest.external_id] = line
    return timelines
