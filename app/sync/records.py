"""Per-record validation of a snapshot (SPEC §2), with no database access.

Records stream in one at a time and go straight to a stage sink, so a
snapshot of millions of records is never held in memory. Each record first
meets a fast path that recognises the common, certainly valid shape with a
few type checks; anything else goes through the marshmallow schema, which is
the reference and produces the error messages. The fast path only ever
accepts what the schema accepts, with the same values (tests run both over
the same hostile inputs).

Cross-record rules (duplicates, unknown patients) need the whole upload and
are settled in SQL by ``merge``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import marshmallow as ma

from app.models import EXTERNAL_ID_LENGTH, NAME_LENGTH
from app.snapshot import OversizedRecord
from app.sync.record_schemas import (
    DATE_PATTERN,
    MAX_ABS_AMOUNT,
    ExternalIdField,
    PatientRecordSchema,
    PaymentRecordSchema,
)
from app.sync.report import RecordError
from app.types import CENT

ENTITIES = ("patients", "payments")

# The order of the staged columns after (index, external_id, valid).
STAGED_FIELDS: dict[str, tuple[str, ...]] = {
    "patients": ("first_name", "last_name", "middle_name", "date_of_birth"),
    "payments": ("patient_external_id", "amount"),
}

_SCHEMAS: dict[str, ma.Schema] = {
    "patients": PatientRecordSchema(),
    "payments": PaymentRecordSchema(),
}
_EXTERNAL_ID = ExternalIdField()

Fields = tuple[Any, ...]


class StageSink(Protocol):
    """Where validated records go: one row per element whose externalId is readable."""

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Stage one element; ``fields`` is None for a rejected one."""


@dataclass
class ValidationSummary:
    """What per-record validation found; ``errors`` holds the first ``max_errors``."""

    received: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)


def validate_snapshot(entity: str, records: Iterable[Any], sink: StageSink, max_errors: int,
                      *, fast: bool = True) -> ValidationSummary:
    """Validate every element of ``records`` into ``sink`` (``fast=False`` forces marshmallow).

    An OversizedRecord (an element the reader skipped for its size) is
    rejected like any invalid record, its externalId protecting the stored row.
    """
    schema = _SCHEMAS[entity]
    columns = STAGED_FIELDS[entity]
    fast_path = _FAST_PATHS[entity] if fast else _never
    summary = ValidationSummary()
    index = -1
    for index, record in enumerate(records):
        accepted = fast_path(record)
        if accepted is not None:
            sink.add(index, accepted[0], True, accepted[1:])
            continue
        if type(record) is OversizedRecord:
            # The reader counts characters: bytes for ASCII, up to 4 bytes each in UTF-8.
            _reject(summary, sink, index, _readable_id(record.external_id),
                    {"_schema": [f"Record is larger than {record.limit} bytes."]}, max_errors)
            continue
        try:
            data = schema.load(record)
        except ma.ValidationError as error:
            _reject(summary, sink, index, readable_external_id(record),
                    _as_messages(error.messages), max_errors)
        else:
            sink.add(index, data["external_id"], True, tuple(data[name] for name in columns))
    summary.received = index + 1
    return summary


def _reject(summary: ValidationSummary, sink: StageSink, index: int, external_id: str | None,
            messages: dict[str, list[str]], max_errors: int) -> None:
    """Count a rejected element; stage it (as invalid) when its externalId is readable."""
    summary.rejected += 1
    if external_id is not None:
        sink.add(index, external_id, False, None)
    if len(summary.errors) < max_errors:
        summary.errors.append(RecordError(index, external_id, messages))


def readable_external_id(record: Any) -> str | None:
    """The record's externalId if it is valid on its own, else None."""
    if not isinstance(record, dict) or "externalId" not in record:
        return None
    return _readable_id(record["externalId"])


def _readable_id(value: Any) -> str | None:
    """``value`` as an externalId if it is a valid one, else None."""
    try:
        return _EXTERNAL_ID.deserialize(value)
    except ma.ValidationError:
        return None


def _as_messages(messages: Any) -> dict[str, list[str]]:
    if isinstance(messages, dict):
        return {str(key): list(value) if isinstance(value, list) else [str(value)]
                for key, value in messages.items()}
    return {"_schema": [str(message) for message in messages]}


# --------------------------------------------------------------------------- fast path
# Each returns (external_id, *fields) for a record that is certainly valid, or
# None to send it to marshmallow. Plain printable ASCII is a subset of what the
# schema accepts as a name or id, and needs no further storability checks.


def _plain(value: Any, limit: int = NAME_LENGTH) -> bool:
    return (type(value) is str and 0 < len(value) <= limit
            and value.isascii() and value.isprintable())


def _fast_id(value: Any) -> str | None:
    if type(value) is int:
        text = str(value)
        return text if len(text) <= EXTERNAL_ID_LENGTH else None
    return value if _plain(value, EXTERNAL_ID_LENGTH) else None


def _fast_patient(record: Any) -> Fields | None:
    if type(record) is not dict:
        return None
    external_id = _fast_id(record.get("externalId"))
    first, last = record.get("firstName"), record.get("lastName")
    middle, born = record.get("middleName"), record.get("dateOfBirth")
    if external_id is None or not (_plain(first) and _plain(last)):
        return None
    if middle is not None and not _plain(middle):
        return None
    if born is not None:
        if type(born) is not str or not DATE_PATTERN.fullmatch(born):
            return None
        try:
            born = date.fromisoformat(born)
        except ValueError:
            return None
    return external_id, first, last, middle, born


def _fast_payment(record: Any) -> Fields | None:
    if type(record) is not dict:
        return None
    external_id = _fast_id(record.get("externalId"))
    patient = _fast_id(record.get("patientId"))
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


def _never(record: Any) -> None:
    return None


_FAST_PATHS: dict[str, Callable[[Any], Fields | None]] = {
    "patients": _fast_patient,
    "payments": _fast_payment,
}
