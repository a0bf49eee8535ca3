"""At most one sync at a time, across processes and hosts (SPEC §2, Serialized)."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app.sync.errors import SyncInProgress

# Any fixed 64-bit key will do; every sync, of either entity, takes this one.
ADVISORY_LOCK_KEY = 0x5059_4D54_5359_4E43  # "PYMTSYNC"
_POLL_SECONDS = 0.05
_in_process = threading.Lock()


@contextmanager
def sync_lock(connection: sa.Connection, timeout: float) -> Iterator[None]:
    """Hold the sync lock for the body; raise SyncInProgress after ``timeout`` seconds.

    On PostgreSQL this is a transaction-level advisory lock: it is released by
    the commit or rollback that ends the sync, so it cannot leak. On SQLite,
    which serves one host only, a lock file beside the database plays that role.
    """
    if connection.dialect.name == "postgresql":
        _wait_for(
            lambda: bool(
                connection.scalar(
                    sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            ),
            timeout,
        )
        yield
        return
    database = connection.engine.url.database
    if not database or database == ":memory:":
        _wait_for(lambda: _in_process.acquire(blocking=False), timeout)
        try:
            yield
        finally:
            _in_process.release()
        return
    with open(f"{database}.sync-lock", "a") as handle:
        _wait_for(lambda: _try_flock(handle.fileno()), timeout)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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
