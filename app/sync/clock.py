"""A sync's time comes from the database, not from the host that runs it (SPEC §5).

Syncs may run from any host; their times order history (``validFrom``,
``validTo``), so a host whose clock is behind would write a version that
ends before it began. The database's clock is the one clock every host
shares. Read under the sync lock and kept later than the last recorded
sync, a sync's time follows the order in which syncs were applied even if
that clock itself is stepped back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.db.clock import database_now
from app.models import SyncRun

_TICK = timedelta(microseconds=1)
_RUNS = SyncRun.__table__.c
# The sync recorded finished last: ids follow acceptance, and an accepted
# sync may finish after a later one (SPEC §2, asynchronous syncs).
_LAST_SYNC_START = (
    sa.select(_RUNS.started_at)
    .where(_RUNS.applied_seq.is_not(None))
    .order_by(_RUNS.applied_seq.desc())
    .limit(1)
)


def sync_time(connection: sa.Connection) -> datetime:
    """The time of a sync about to be recorded: now, and later than every sync before it.

    Call it under the sync lock: syncs are recorded finished in
    ``applied_seq`` order there, so the last one's start is the one to stay
    after.
    """
    now = database_now(connection)
    last = connection.execute(_LAST_SYNC_START).scalar()
    return now if last is None else max(now, last + _TICK)
