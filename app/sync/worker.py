"""`flask syncs worker`: apply queued asynchronous syncs, one at a time, in acceptance order.

Any number of workers may run, on any hosts; one works at a time, holding
the worker lock (a session lock of its own connection, like the relay's,
app/events/lock.py), and the others wait for it. That is what keeps the
acceptance order (syncs run one at a time under the sync lock anyway, so a
second active worker would only race the first for it) and what tells a
dead worker from a live one: the lock lives and dies with the connection
that claims, applies and finishes, so a ``running`` sync seen by the lock's
holder belongs to a worker that is gone, and is taken again. Its apply died
with its transaction: nothing of it is visible, so it is applied once.

Each sync goes through ``run_sync``, the engine of a synchronous sync, with
the same settings; the transaction that applies it records it ``applied``
and deletes its upload (app/sync/queue.py). A refusal or a bad body is
recorded ``refused`` or ``failed`` with the error a synchronous sync would
have answered. A database that cannot be reached (at start or later) is
retried with backoff; a stop request (SIGTERM, SIGINT) lets the sync in
flight finish, then ``run`` returns.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.dialect import dialect_of
from app.loops import Backoff, StopFlag, first_line
from app.snapshot import SnapshotBody, SnapshotError, SnapshotTooLarge
from app.sync import queue
from app.sync.engine import run_sync
from app.sync.errors import MassDeleteRefused, SyncInProgress
from app.sync.queue import Claimed, LostClaim
from app.sync.report import SyncSettings
from app.sync.uploads import open_upload, upload_source

log = logging.getLogger(__name__)

# Any fixed 64-bit key other than the sync lock's and the relay's.
WORKER_LOCK_KEY = 0x5059_4D54_5155_4555  # "PYMTQUEU"
# Errors that say the connection, not the sync, is at fault: retried, never recorded.
_CONNECTION_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker runs with, as config.py reads it (defaults live there)."""

    sync: SyncSettings
    max_content_length: int
    max_record_bytes: int
    poll_seconds: float
    # Return once the queue is empty (batch runs, tests, benchmarks).
    exit_when_idle: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], exit_when_idle: bool = False) -> WorkerSettings:
        """Read the settings from a Flask config mapping."""
        return cls(
            sync=SyncSettings.from_config(config),
            max_content_length=config["MAX_CONTENT_LENGTH"],
            max_record_bytes=config["SYNC_MAX_RECORD_BYTES"],
            poll_seconds=config["SYNC_WORKER_POLL_SECONDS"],
            exit_when_idle=exit_when_idle,
        )


class Worker:
    """Applies every queued sync exactly once, oldest first (SPEC §2, asynchronous syncs)."""

    def __init__(self, engine: sa.Engine, settings: WorkerSettings, stop: StopFlag) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = stop
        self._backoff = Backoff()
        self._idle = False
        self.claimant = queue.new_claimant(socket.gethostname(), os.getpid())
        self.finished = 0

    def run(self) -> None:
        """Apply queued syncs until stopped (or idle, with ``exit_when_idle``); never gives up."""
        while not (self._stop.requested or self._idle):
            try:
                with self._engine.connect() as connection:
                    self._run_locked(connection)
            except _CONNECTION_ERRORS as error:
                delay = self._backoff.next()
                log.warning(
                    "database unavailable; retrying in %.1f s",
                    delay,
                    extra={"fields": {"error": first_line(error)}},
                )
                self._stop.wait(delay)
        log.info("sync worker stopped", extra={"fields": {"finished": self.finished}})

    def _run_locked(self, connection: sa.Connection) -> None:
        """Wait for the worker lock, then apply syncs while holding it."""
        lock = dialect_of(connection).session_lock(connection, WORKER_LOCK_KEY, "sync-worker")
        announced = False
        while not lock.try_acquire():
            self._backoff.reset()
            if not announced:
                log.info("another sync worker holds the worker lock; waiting for it")
                announced = True
            if self._stop.wait(self._settings.poll_seconds):
                return
        try:
            log.info("holding the worker lock", extra={"fields": {"worker": self.claimant}})
            self._serve(connection)
        finally:
            lock.release()

    def _serve(self, connection: sa.Connection) -> None:
        while not self._stop.requested:
            claimed = queue.claim_next(connection, self.claimant)
            self._backoff.reset()
            if claimed is None:
                if self._settings.exit_when_idle:
                    self._idle = True
                    return
                self._stop.wait(self._settings.poll_seconds)
                continue
            if claimed.taken_from is not None:
                log.warning(
                    "taking over sync %s from a worker that is gone",
                    claimed.sync_id,
                    extra={"fields": {"sync_id": claimed.sync_id, "from": claimed.taken_from}},
                )
            with orm.Session(bind=connection) as session:
                if self._apply(session, claimed):
                    self.finished += 1

    def _apply(self, session: orm.Session, claimed: Claimed) -> bool:
        """Apply (or refuse, or fail) one claimed sync; True once it is recorded finished.

        A sync the lock keeps waiting (a synchronous one holding it past
        SYNC_LOCK_TIMEOUT) is tried again while the worker runs; stopped, the
        worker leaves it ``running`` for the next holder of the worker lock.
        """
        fields = {"sync_id": claimed.sync_id, "entity": claimed.entity}
        while True:
            try:
                with upload_source(session) as upload:
                    report = run_sync(
                        session,
                        claimed.entity,
                        SnapshotBody(
                            open_upload(upload, claimed.sync_id, self._settings.max_content_length),
                            max_record_bytes=self._settings.max_record_bytes,
                        ),
                        dry_run=claimed.dry_run,
                        force=claimed.force,
                        settings=self._settings.sync,
                        claimed=claimed,
                    )
            except SyncInProgress:
                log.info("sync lock busy; trying again", extra={"fields": fields})
                if self._stop.wait(self._settings.poll_seconds):
                    return False
                continue
            except MassDeleteRefused as error:
                return self._finish(session, claimed, queue.REFUSED, _error(error.code, error))
            except SnapshotError as error:
                return self._finish(session, claimed, queue.FAILED, _error(error.code, error))
            except LostClaim:
                log.warning("sync no longer claimed by this worker", extra={"fields": fields})
                return False
            except _CONNECTION_ERRORS:
                raise
            except Exception as error:
                # A fault of this sync, not of the connection: recorded, so that it
                # does not block the queue behind it forever.
                log.exception("sync failed", extra={"fields": fields})
                failure = {"code": "internal_error", "message": first_line(error), "details": {}}
                return self._finish(session, claimed, queue.FAILED, failure)
            log.info(
                "applied sync %s",
                claimed.sync_id,
                extra={
                    "fields": {**fields, "dry_run": report.dry_run, "received": report.received}
                },
            )
            return True

    def _finish(
        self, session: orm.Session, claimed: Claimed, state: str, error: dict[str, Any]
    ) -> bool:
        fields = {"sync_id": claimed.sync_id, "state": state, "code": error["code"]}
        while True:
            try:
                finished = queue.finish_unapplied(
                    session, claimed, state, error, self._settings.sync.lock_timeout
                )
            except SyncInProgress:
                if self._stop.wait(self._settings.poll_seconds):
                    return False
                continue
            log.info("sync %s %s", claimed.sync_id, state, extra={"fields": fields})
            return finished


def _error(code: str, error: SnapshotError | MassDeleteRefused) -> dict[str, Any]:
    """The error body a synchronous sync would have answered: code, message, details."""
    if isinstance(error, SnapshotTooLarge):
        details: dict[str, Any] = {"limit": error.limit}
    else:
        details = getattr(error, "details", {}) or {}
    return {"code": code, "message": error.message, "details": details}
