"""The relay's stored position: the last event the broker confirmed (SPEC §6).

Events are ordered by sync, in the order syncs were applied
(``sync_runs.applied_seq``: ids follow acceptance, and an asynchronous sync
may be applied after a later one), then by record id within a sync, and each
sync's ``sync.applied`` comes last; a Position names one point in that order.
It is stored only after the broker confirmed every event up to it, so a
relay that dies at any moment resumes there: nothing confirmed is lost, and
what was published but not confirmed is published again (at least once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_now
from app.db.dialect import dialect_of
from app.models import EventRelayPosition, SyncRun

ROW_ID = 1


@dataclass(frozen=True, slots=True)
class Position:
    """Every event up to here is confirmed.

    That is: every change of syncs before ``sync_id``, the changes of
    ``sync_id`` up to record ``record_id`` (``sync_events`` events), and,
    when ``sync_complete``, its ``sync.applied`` too. The start is "sync 0,
    complete": the next event is the first of the first applied sync.
    """

    sync_id: int = 0
    record_id: int = 0
    sync_complete: bool = True
    sync_events: int = 0
    # ``sync_id``'s place in the order syncs were applied (its applied_seq), which
    # the feed follows; None: looked up by ``sync_id`` (a position built by hand).
    # Not compared: the sync id names the place.
    sync_seq: int | None = field(default=None, compare=False)


START = Position(sync_seq=0)
_COLUMNS = (
    EventRelayPosition.sync_id,
    EventRelayPosition.record_id,
    EventRelayPosition.sync_complete,
    EventRelayPosition.sync_events,
    EventRelayPosition.sync_seq,
)


def ensure(connection: sa.Connection) -> None:
    """Create the position row at the start if there is none (the relay's first run)."""
    exists = connection.scalar(
        sa.select(EventRelayPosition.id).where(EventRelayPosition.id == ROW_ID)
    )
    if exists is None:
        connection.execute(
            sa.insert(EventRelayPosition).values(
                id=ROW_ID, **_values(START), published_total=0, updated_at=database_now(connection)
            )
        )


def stored(connection: sa.Connection) -> Position | None:
    """The stored position, or None if no relay ever ran on this database."""
    row = connection.execute(sa.select(*_COLUMNS).where(EventRelayPosition.id == ROW_ID)).first()
    return None if row is None else Position(*row)


def load(connection: sa.Connection) -> Position:
    """The stored position (the start if the row is missing)."""
    return stored(connection) or START


def unpublished(position: Position) -> sa.ColumnElement[bool]:
    """The applied syncs with events after ``position``: later ones, and its own if unfinished."""
    applied = sa.and_(SyncRun.dry_run.is_(False), SyncRun.state == "applied")
    if position.sync_complete:
        return sa.and_(applied, SyncRun.applied_seq > seq_of(position))
    return sa.and_(applied, SyncRun.applied_seq >= seq_of(position))


def seq_of(position: Position) -> int | sa.ColumnElement[int]:
    """``position``'s place in the order syncs were applied: stored, or looked up by its id.

    Syncs recorded before migration c9e1f3a5b7d9 have their id as their place.
    """
    if position.sync_seq is not None:
        return position.sync_seq
    own = sa.select(SyncRun.applied_seq).where(SyncRun.id == position.sync_id)
    return sa.func.coalesce(own.scalar_subquery(), position.sync_id)


def store(
    connection: sa.Connection, expected: Position, new: Position, published: int, rate: float = 0.0
) -> bool:
    """Move the position from ``expected`` to ``new`` after ``published`` confirmed events.

    ``rate`` is the events per second the relay confirmed lately (/metrics).

    A compare-and-set: False, and nothing written, if the stored position is
    no longer ``expected`` (someone moved it), so it never moves backwards.
    The caller commits.
    """
    table = EventRelayPosition
    # Not worth a WAL flush per window: a position lost in a database crash
    # only makes the relay publish that window again, which at least once allows.
    dialect_of(connection).relaxed_commit(connection)
    expected_values = _values(expected)
    if expected.sync_seq is None:
        # A position built by hand names its sync by id alone.
        del expected_values["sync_seq"]
    result = connection.execute(
        sa.update(table)
        .where(
            table.id == ROW_ID,
            *(getattr(table, name) == value for name, value in expected_values.items()),
        )
        .values(
            **_values(new),
            published_total=table.published_total + published,
            publish_rate=rate,
            updated_at=database_now(connection),
        )
    )
    return result.rowcount == 1


def _values(position: Position) -> dict[str, Any]:
    return {
        "sync_id": position.sync_id,
        "record_id": position.record_id,
        "sync_complete": position.sync_complete,
        "sync_events": position.sync_events,
        "sync_seq": seq_of(position),
    }


def unpublished_before(session: orm.Session, before: datetime) -> int:
    """Applied syncs begun before ``before`` the relay has not fully published (0: it never ran).

    The check a prune runs before dropping sync records (app.sync.prune).
    """
    relay = stored(session.connection())
    if relay is None:
        return 0
    return (
        session.scalar(
            sa.select(sa.func.count()).where(SyncRun.started_at < before, unpublished(relay))
        )
        or 0
    )
