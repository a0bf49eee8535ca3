"""Per-record validation of a snapshot (SPEC §2), with no database access.

Turns the uploaded array into the rows to stage and the rejections to report.
Duplicated externalIds (rule 6) are cross-record but need no database, so
they are settled here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma

from app.schemas import ExternalIdField, PatientRecordSchema, PaymentRecordSchema
from app.sync.report import RecordError

ENTITIES = ("patients", "payments")

# The order of the staged columns after (index, external_id).
STAGED_FIELDS: dict[str, tuple[str, ...]] = {
    "patients": ("first_name", "last_name", "middle_name", "date_of_birth"),
    "payments": ("patient_external_id", "amount"),
}

_SCHEMAS: dict[str, ma.Schema] = {
    "patients": PatientRecordSchema(),
    "payments": PaymentRecordSchema(),
}
_EXTERNAL_ID = ExternalIdField()


@dataclass
class ValidatedSnapshot:
    """The upload split into valid rows and rejections.

    ``rows`` are ``(index, external_id, *STAGED_FIELDS)`` tuples. ``protected``
    holds the externalIds of rejected records that could be read: rule 5 keeps
    their stored rows exactly as they are. ``errors`` holds the first
    ``max_errors`` rejections in upload order; ``rejected`` counts them all.
    """

    received: int = 0
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    protected: list[tuple[int, str]] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    rejected: int = 0


def validate_snapshot(entity: str, records: Iterable[Any], max_errors: int) -> ValidatedSnapshot:
    """Validate every element of a snapshot; duplicates reject every occurrence (rule 6)."""
    schema = _SCHEMAS[entity]
    columns = STAGED_FIELDS[entity]
    loaded: list[tuple[str | None, dict[str, Any] | None, dict[str, list[str]] | None]] = []
    occurrences: Counter[str] = Counter()
    for record in records:
        try:
            data = schema.load(record)
        except ma.ValidationError as error:
            external_id = readable_external_id(record)
            loaded.append((external_id, None, _as_messages(error.messages)))
        else:
            external_id = data["external_id"]
            loaded.append((external_id, data, None))
        if external_id is not None:
            occurrences[external_id] += 1

    result = ValidatedSnapshot(received=len(loaded))
    for index, (external_id, data, messages) in enumerate(loaded):
        if external_id is not None and occurrences[external_id] > 1:
            messages = dict(messages or {})
            messages["externalId"] = [*messages.get("externalId", []),
                                      f"Duplicate externalId '{external_id}': it occurs "
                                      f"{occurrences[external_id]} times in this upload."]
        if messages is None and data is not None:
            result.rows.append((index, external_id, *(data[name] for name in columns)))
            continue
        result.rejected += 1
        if external_id is not None:
            result.protected.append((index, external_id))
        if len(result.errors) < max_errors:
            result.errors.append(RecordError(index, external_id, messages or {}))
    return result


def readable_external_id(record: Any) -> str | None:
    """The record's externalId if it is valid on its own, else None."""
    if not isinstance(record, dict) or "externalId" not in record:
        return None
    try:
        return _EXTERNAL_ID.deserialize(record["externalId"])
    except ma.ValidationError:
        return None


def _as_messages(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        return {str(key): list(value) if isinstance(value, list) else [str(value)]
                for key, value in messages.items()}
    return {"_schema": [str(message) for message in messages]}
