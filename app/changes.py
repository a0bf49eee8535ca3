"""What one change of a sync was (SPEC §5): its op and the synced fields it changed.

Shared by the changes feed of the API and the event relay, so that a
consumer sees the same op and ``changedFields`` by either route. Rows come
from ``queries.sync_changes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.queries import PATIENT_CHANGE_FIELDS

# How a change names each entity's synced fields: (JSON key, column of the change row).
CHANGE_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "patients": tuple(
        zip(
            ("firstName", "lastName", "middleName", "dateOfBirth"),
            PATIENT_CHANGE_FIELDS,
            strict=True,
        )
    ),
    "payments": (("patientId", "patient_external_id"), ("amount", "amount")),
}


@dataclass(frozen=True, slots=True)
class Change:
    """A change row's op, its two sides by JSON key, and the keys that differ."""

    op: str
    before: dict[str, Any]
    after: dict[str, Any]
    changed_fields: list[str]


def describe(row: Any) -> Change:
    """Classify one change row.

    The op is ``created`` when the record did not exist before the sync,
    ``deleted``/``restored`` when its deleted mark was set/cleared, else
    ``updated``. ``changed_fields`` names the synced fields that differ from
    the version the sync replaced, deleted or not: all of them for a created
    record, none for a deleted one.
    """
    keys = CHANGE_KEYS[row.entity]
    after = {key: getattr(row, f"after_{column}") for key, column in keys}
    before = {key: getattr(row, f"before_{column}") for key, column in keys}
    was_deleted = row.existed and row.before_deleted is not None
    op = op_of(row.existed, was_deleted, row.after_deleted is not None)
    changed = [key for key, _ in keys if not row.existed or before[key] != after[key]]
    return Change(op, before, after, changed)


def op_of(existed: bool, was_deleted: bool, is_deleted: bool) -> str:
    """What a new version of a record was: ``created`` when the record did not exist,
    ``deleted``/``restored`` when its deleted mark was set/cleared, else ``updated``."""
    if not existed:
        return "created"
    if is_deleted and not was_deleted:
        return "deleted"
    if was_deleted and not is_deleted:
        return "restored"
    return "updated"
