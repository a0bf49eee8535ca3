"""The relay's stored position: the last event the broker confirmed (SPEC §6).

Events are ordered by sync, then by record id within a sync, and each
sync's ``sync.applied`` comes last; a Position names one point in that order.
It is stored only after the broker confirmed every event up to it, so a
relay that dies at any moment resumes there: nothing confirmed is lost, and
what was published but not confirmed is published again (at least once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


START = Position()
_COLUMNS = (
    EventRelayPosition.sync_id,
    EventRelayPosition.record_id,
    EventRelayPosition.sync_complete,
    EventRelayPosition.sync_events,
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
    """The sync_runs with events after ``position``: later syncs, and its own if unfinished."""
    if position.sync_complete:
        return SyncRun.id > position.sync_id
    return SyncRun.id >= position.sync_id


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
    result = connection.execute(
        sa.update(table)
        .where(
            table.id == ROW_ID,
            *(getattr(table, name) == value for name, value in _values(expected).items()),
        )
        .values(
            **_values(new),
            published_total=table.published_total + published,
            publish_rate=rate,
            updated_at=database_now(connection),
        )
    )
    return result.rowcount == 1


def _values(position: Position) -> dict[str, int | bool]:
    return {
        "sync_id": position.sync_id,
        "record_id": position.record_id,
        "sync_complete": position.sync_complete,
        "sync_events": position.sync_events,
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
            sa.select(sa.func.count()).where(
                SyncRun.dry_run.is_(False), SyncRun.started_at < before, unpublished(relay)
            )
        )
        or 0
    )
