"""At most one relay publishes at a time (SPEC §6); a second one waits.

On PostgreSQL: a session-level advisory lock, held by the relay's own
connection for as long as it runs. Every read of the feed and every write of
the position goes through that same connection, so a relay whose connection
dropped (and with it the lock) fails on its next statement before it can
move the position. On SQLite, which serves one host: an exclusive lock on a
file beside the database (none for an in-memory database).
"""

from __future__ import annotations

import contextlib
import fcntl
from typing import IO

import sqlalchemy as sa

# Any fixed 64-bit key other than the sync lock's (app/sync/lock.py).
RELAY_LOCK_KEY = 0x5059_4D54_4556_4E54  # "PYMTEVNT"


class RelayLock:
    """The single-relay lock, tried without waiting; the caller decides how to wait."""

    def __init__(self, connection: sa.Connection) -> None:
        self._connection = connection
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this relay now holds it."""
        connection = self._connection
        if connection.dialect.name == "postgresql":
            held = bool(
                connection.scalar(
                    sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK_KEY}
                )
            )
            # A session lock outlives the transaction; end it so it is not left idle.
            connection.commit()
            return held
        database = connection.engine.url.database
        if not database or database == ":memory:":
            return True
        self._file = self._file or open(f"{database}.relay-lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Give the lock up (best effort: a dead connection has already lost it)."""
        if self._connection.dialect.name == "postgresql":
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self._connection.rollback()
                self._connection.scalar(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": RELAY_LOCK_KEY}
                )
                self._connection.commit()
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None
