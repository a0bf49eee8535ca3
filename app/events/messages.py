"""The messages of SPEC §6: one per change of a sync, then one ``sync.applied``.

A message names what changed, never a value: the record (entity and
externalId), the op, and the keys of the fields that changed. No name, date
of birth, amount or patient id travels; a consumer that needs the values
reads them through the API with its token.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.changes import Change
from app.sync.report import COUNTED_OUTCOMES

# Fixed forever: every eventId is derived from it, so a change keeps its id
# across redeliveries, relay restarts and position resets.
EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "events.patient-payments")
SYNC_APPLIED = "sync.applied"
# The report counts a sync.applied message carries (SPEC §2's report, without its errors).
SYNC_COUNTS = ("received", *COUNTED_OUTCOMES)
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# The report counts that each make one change event per record (SPEC §5).
CHANGE_OUTCOMES = ("created", "updated", "deleted", "restored")


@dataclass(frozen=True, slots=True)
class AppliedSync:
    """What the messages of one applied sync say about it: id, entity, time, counts.

    ``occurred_at`` is the sync's start, the instant every row it wrote
    carries, in ISO 8601 (made once per sync, not per message).
    """

    id: int
    entity: str
    occurred_at: str
    counts: dict[str, int]

    @classmethod
    def of(cls, sync_id: int, entity: str, started_at: datetime,
           counts: dict[str, int]) -> AppliedSync:
        """The sync that started at ``started_at``, with its report ``counts``."""
        return cls(sync_id, entity, started_at.isoformat(timespec="microseconds"), counts)

    @property
    def change_count(self) -> int:
        """How many change events the sync has: one per record it created or changed."""
        return sum(self.counts[name] for name in CHANGE_OUTCOMES)


@dataclass(frozen=True, slots=True)
class Event:
    """One message and the routing key it is published with."""

    routing_key: str
    message: dict[str, Any]

    @property
    def event_id(self) -> str:
        """The message's eventId (also its AMQP message_id)."""
        return str(self.message["eventId"])

    def body(self) -> bytes:
        """The message as compact JSON (ASCII, so valid UTF-8 whatever the externalId)."""
        return _ENCODER.encode(self.message).encode()


def event_id(sync_id: int, entity: str, record_id: int | None = None) -> str:
    """The stable id of the change of one record in one sync, or of the sync's sync.applied.

    A UUID derived from (sync, entity, record): the same on every
    publication, so consumers de-duplicate by it; opaque, so that it exposes
    no row id.
    """
    name = f"{sync_id}:sync" if record_id is None else f"{sync_id}:{entity}:{record_id}"
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, name))


def change_event(sync: AppliedSync, record_id: int, external_id: str, change: Change) -> Event:
    """The event of one change: routing key ``<entity>.<op>``, and no values."""
    return Event(f"{sync.entity}.{change.op}", {
        "eventId": event_id(sync.id, sync.entity, record_id),
        "syncId": sync.id,
        "entity": sync.entity,
        "externalId": external_id,
        "op": change.op,
        "changedFields": list(change.changed_fields),
        "occurredAt": sync.occurred_at,
    })


def sync_applied_event(sync: AppliedSync) -> Event:
    """The event that closes a sync's changes: its report counts, and nothing else.

    It has every key a change event has (SPEC §6), so one consumer parses
    both: no record (``externalId`` null), no fields (``changedFields`` empty).
    """
    return Event(SYNC_APPLIED, {
        "eventId": event_id(sync.id, sync.entity),
        "syncId": sync.id,
        "entity": sync.entity,
        "externalId": None,
        "op": "applied",
        "changedFields": [],
        "counts": {name: sync.counts[name] for name in SYNC_COUNTS},
        "occurredAt": sync.occurred_at,
    })
