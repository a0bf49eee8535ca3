"""The locks a Dialect hands out (app/db/dialect.py): tried without waiting, then released.

The caller decides how to wait (app/sync/lock.py, app/events/relay.py). On
PostgreSQL they are advisory locks, seen by every host; on SQLite, which
serves one host, exclusive locks on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from typing import IO, Protocol

import sqlalchemy as sa

# Locks of an in-memory SQLite database: one per key, shared by this process.
_PROCESS_LOCKS: dict[int, threading.Lock] = {}


class Lock(Protocol):
    """A lock tried without waiting."""

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if the caller now holds it."""
        ...

    def release(self) -> None:
        """Give the lock up (if held; best effort)."""
        ...


class TransactionAdvisoryLock:
    """A PostgreSQL transaction-level advisory lock: the commit or rollback that ends the
    transaction releases it, so it cannot leak."""

    def __init__(self, connection: sa.Connection, key: int) -> None:
        self._connection = connection
        self._key = key

    def try_acquire(self) -> bool:
        return bool(
            self._connection.scalar(
                sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": self._key}
            )
        )

    def release(self) -> None:
        """Nothing to do: the end of the transaction releases it."""


class SessionAdvisoryLock:
    """A PostgreSQL session-level advisory lock, held by the connection until released.

    A connection that dropped has lost it, and fails on its next statement.
    """

    def __init__(self, connection: sa.Connection, key: int) -> None:
        self._connection = connection
        self._key = key

    def try_acquire(self) -> bool:
        held = bool(
            self._connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            )
        )
        # A session lock outlives the transaction; end it so it is not left idle.
        self._connection.commit()
        return held

    def release(self) -> None:
        """Best effort: a dead connection has already lost it."""
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            self._connection.rollback()
            self._connection.scalar(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._connection.commit()


class FileLock:
    """An exclusive lock on a file (created if missing), seen by the processes of one host."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        self._file = self._file or open(self._path, "a")  # noqa: SIM115 (closed by release())
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        """Close the file, which drops the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None


class ProcessLock:
    """A lock of this process, one per key (an in-memory database lives in one process)."""

    def __init__(self, key: int) -> None:
        self._lock = _PROCESS_LOCKS.setdefault(key, threading.Lock())
        self._held = False

    def try_acquire(self) -> bool:
        self._held = self._lock.acquire(blocking=False)
        return self._held

    def release(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()


class NoLock:
    """Always free: for a lock that has nothing to guard."""

    def try_acquire(self) -> bool:
        return True

    def release(self) -> None:
        """Nothing to release."""
