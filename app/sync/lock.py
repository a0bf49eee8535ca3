"""At most one sync at a time, across processes and hosts (SPEC §2, Serialized)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.sync.errors import SyncInProgress

# Any fixed 64-bit key will do; every sync, of either entity, takes this one.
ADVISORY_LOCK_KEY = 0x5059_4D54_5359_4E43  # "PYMTSYNC"
_POLL_SECONDS = 0.05


@contextmanager
def sync_lock(connection: sa.Connection, timeout: float) -> Iterator[None]:
    """Hold the sync lock for the body; raise SyncInProgress after ``timeout`` seconds.

    A transaction lock (app/db/dialect.py): on PostgreSQL an advisory lock
    released by the commit or rollback that ends the sync, so it cannot leak;
    on SQLite, which serves one host only, a lock file beside the database.
    """
    dialect = dialect_of(connection)
    lock = dialect.transaction_lock(connection, ADVISORY_LOCK_KEY, "sync")
    try:
        _wait_for(lock.try_acquire, timeout)
        # Before the sync reads anything shared, so that its writes never have to
        # turn a read transaction into a write one (SQLite would refuse that at once).
        dialect.begin_writing(connection)
        yield
    finally:
        lock.release()


def _wait_for(try_acquire: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not try_acquire():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SyncInProgress(
                f"Another sync is running; the lock was not free within {timeout:g} seconds.",
                {"lockTimeout": timeout},
            )
        time.sleep(min(_POLL_SECONDS, remaining))
