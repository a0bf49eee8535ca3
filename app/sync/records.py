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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import marshmallow as ma

from app.models import EXTERNAL_ID_LENGTH, NAME_LENGTH
from app.snapshot import OversizedRecord
from app.sync.entity import Entity, Fields
from app.sync.record_schemas import ExternalIdField
from app.sync.report import RecordError

_EXTERNAL_ID = ExternalIdField()


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


def validate_snapshot(
    entity: Entity,
    records: Iterable[Any],
    sink: StageSink,
    max_errors: int,
    summary: ValidationSummary | None = None,
) -> ValidationSummary:
    """Validate every element of ``records`` into ``sink``: the entity's fast path, else its schema.

    An OversizedRecord (an element the reader skipped for its size) is
    rejected like any invalid record, its externalId protecting the stored row.
    ``summary``: what validating the upload's first ``received`` elements
    found (blocks validated elsewhere); the rest goes on from it.
    """
    schema = entity.schema
    columns = entity.staged_names
    fast_path = entity.fast_path
    summary = ValidationSummary() if summary is None else summary
    index = summary.received - 1
    for index, record in enumerate(records, summary.received):
        accepted = fast_path(record)
        if accepted is not None:
            sink.add(index, accepted[0], True, accepted[1:])
            continue
        if type(record) is OversizedRecord:
            # The reader counts characters: bytes for ASCII, up to 4 bytes each in UTF-8.
            _reject(
                summary,
                sink,
                index,
                _readable_id(record.external_id),
                {"_schema": [f"Record is larger than {record.limit} bytes."]},
                max_errors,
            )
            continue
        try:
            data = schema.load(record)
        except ma.ValidationError as error:
            _reject(
                summary,
                sink,
                index,
                readable_external_id(record),
                _as_messages(error.messages),
                max_errors,
            )
        else:
            sink.add(index, data["external_id"], True, tuple(data[name] for name in columns))
    summary.received = index + 1
    return summary


def _reject(
    summary: ValidationSummary,
    sink: StageSink,
    index: int,
    external_id: str | None,
    messages: dict[str, list[str]],
    max_errors: int,
) -> None:
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
        return {
            str(key): list(value) if isinstance(value, list) else [str(value)]
            for key, value in messages.items()
        }
    return {"_schema": [str(message) for message in messages]}


# --------------------------------------------------------------------------- fast path
# An entity's fast path returns (external_id, *fields) for a record that is
# certainly valid, or None to send it to marshmallow. Plain printable ASCII is
# a subset of what the schema accepts as a name or id, and needs no further
# storability checks.


def plain_text(value: Any, limit: int = NAME_LENGTH) -> bool:
    """Whether ``value`` is a string the schema certainly accepts as a name (or an id)."""
    return (
        type(value) is str and 0 < len(value) <= limit and value.isascii() and value.isprintable()
    )


def fast_external_id(value: Any) -> str | None:
    """``value`` as an externalId when it is certainly valid, else None."""
    # plain_text's checks, inlined: two of these run for every payment of a snapshot.
    if type(value) is str:
        plain = 0 < len(value) <= EXTERNAL_ID_LENGTH and value.isascii() and value.isprintable()
        return value if plain else None
    if type(value) is int:
        text = str(value)
        return text if len(text) <= EXTERNAL_ID_LENGTH else None
    return None
