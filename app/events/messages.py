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

from app.entities import OPS
from app.reads.changes import Change
from app.sync.report import COUNTED_OUTCOMES

# Fixed forever: the eventIds of syncs recorded before they had a uid (migration
# a7b9c1d3e5f7) are derived from it, and keep the ids they were published with.
LEGACY_EVENT_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "events.patient-payments")
SYNC_APPLIED = "sync.applied"
# The report counts a sync.applied message carries (SPEC §2's report, without its errors).
SYNC_COUNTS = ("received", *COUNTED_OUTCOMES)
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# The report counts that each make one change event per record (SPEC §5): one per op.
CHANGE_OUTCOMES = OPS


@dataclass(frozen=True, slots=True)
class AppliedSync:
    """What the messages of one applied sync say about it: id, entity, time, counts.

    ``occurred_at`` is the sync's start, the instant every row it wrote
    carries, in ISO 8601 (made once per sync, not per message). ``uid`` is
    the random identity the sync was recorded with (None for syncs recorded
    before syncs had one).
    """

    id: int
    entity: str
    occurred_at: str
    counts: dict[str, int]
    uid: str | None = None
    # Its place in the order syncs were applied (sync_runs.applied_seq), which the feed follows.
    seq: int | None = None

    @classmethod
    def of(
        cls,
        sync_id: int,
        entity: str,
        started_at: datetime,
        counts: dict[str, int],
        uid: str | None = None,
        seq: int | None = None,
    ) -> AppliedSync:
        """The sync that started at ``started_at``, with its report ``counts``."""
        return cls(sync_id, entity, started_at.isoformat(timespec="microseconds"), counts, uid, seq)

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


def event_id(sync: AppliedSync, record_id: int | None = None) -> str:
    """The stable id of the change of one record in ``sync``, or of its sync.applied.

    A UUID derived from the sync's random uid and the record: the same on
    every publication, so consumers de-duplicate by it, and never the id of
    another change, even from another database or a restore of an older
    backup, where sync ids repeat (SPEC §6). Opaque: it exposes no row id.
    """
    if sync.uid is None:
        name = f"{sync.id}:sync" if record_id is None else f"{sync.id}:{sync.entity}:{record_id}"
        return str(uuid.uuid5(LEGACY_EVENT_ID_NAMESPACE, name))
    name = "sync" if record_id is None else f"{sync.entity}:{record_id}"
    return str(uuid.uuid5(uuid.UUID(sync.uid), name))


def change_event(sync: AppliedSync, record_id: int, external_id: str, change: Change) -> Event:
    """The event of one change: routing key ``<entity>.<op>``, and no values."""
    return Event(
        f"{sync.entity}.{change.op}",
        {
            "eventId": event_id(sync, record_id),
            "syncId": sync.id,
            "entity": sync.entity,
            "externalId": external_id,
            "op": change.op,
            "changedFields": list(change.changed_fields),
            "occurredAt": sync.occurred_at,
        },
    )


def sync_applied_event(sync: AppliedSync) -> Event:
    """The event that closes a sync's changes: its report counts, and nothing else.

    It has every key a change event has (SPEC §6), so one consumer parses
    both: no record (``externalId`` null), no fields (``changedFields`` empty).
    """
    return Event(
        SYNC_APPLIED,
        {
            "eventId": event_id(sync),
            "syncId": sync.id,
            "entity": sync.entity,
            "externalId": None,
            "op": "applied",
            "changedFields": [],
            "counts": {name: sync.counts[name] for name in SYNC_COUNTS},
            "occurredAt": sync.occurred_at,
        },
    )
