"""At most one relay publishes at a time (SPEC §6); a second one waits.

A session lock (app/db/dialect.py). On PostgreSQL: an advisory lock held by
the relay's own connection for as long as it runs. Every read of the feed
and every write of the position goes through that same connection, so a
relay whose connection dropped (and with it the lock) fails on its next
statement before it can move the position. On SQLite, which serves one
host: an exclusive lock on a file beside the database (none for an
in-memory database).
"""

from __future__ import annotations

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.db.locks import Lock

# Any fixed 64-bit key other than the sync lock's (app/sync/lock.py).
RELAY_LOCK_KEY = 0x5059_4D54_4556_4E54  # "PYMTEVNT"


def relay_lock(connection: sa.Connection) -> Lock:
    """The single-relay lock, tried without waiting; the caller decides how to wait."""
    return dialect_of(connection).session_lock(connection, RELAY_LOCK_KEY, "relay")
