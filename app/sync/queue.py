"""Asynchronous syncs (SPEC §2): accepted and queued now, applied later by a worker.

A queued sync is a ``sync_runs`` row in state ``queued`` (its id allotted at
acceptance) plus its stored upload (uploads.py), written in one transaction
and committed before the 202. A worker (worker.py) claims the oldest
unfinished one (``running``, committed so readers see it), applies it through
``run_sync`` in a transaction that also records it ``applied`` and deletes
its upload, or, when the engine refuses it or its body turns out to be bad,
records it ``refused`` or ``failed`` with the error body a synchronous sync
would have answered, the same way. A sync dies with its transaction: a
worker killed mid-apply leaves it ``running`` with a claimant that no longer
holds the worker lock, and the next holder takes it again.

Every finish is recorded under the sync lock with the next ``applied_seq``,
the order syncs finished in, which the feed follows (app/reads/syncs.py,
app/events/feed.py): ids follow acceptance, and a sync accepted earlier may
finish after a later synchronous one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_now
from app.models import SyncRun
from app.sync.clock import sync_time
from app.sync.lock import sync_lock
from app.sync.uploads import delete_upload, store_upload

QUEUED, RUNNING, APPLIED, REFUSED, FAILED = "queued", "running", "applied", "refused", "failed"
UNFINISHED = (QUEUED, RUNNING)
STATES = (QUEUED, RUNNING, APPLIED, REFUSED, FAILED)


@dataclass(frozen=True)
class Claimed:
    """A sync a worker claimed: what it needs to apply it, and who claimed it."""

    sync_id: int
    entity: str
    dry_run: bool
    force: bool
    claimant: str
    # The claimant that had it before, if it was taken over from a dead worker.
    taken_from: str | None


def accept(
    session: orm.Session,
    entity: str,
    body: BinaryIO,
    *,
    gzip: bool,
    limit: int,
    dry_run: bool,
    force: bool,
) -> dict[str, Any]:
    """Record a queued sync of ``entity`` and store its body durably; return its pending report.

    Commits: once this returns, the sync is accepted. A gzip body that is not
    gzip, or inflates past ``limit``, raises SnapshotError (nothing is kept).
    """
    try:
        connection = session.connection()
        now = database_now(connection)
        run = SyncRun(
            entity=entity,
            dry_run=dry_run,
            # Not started: the accepted time until the worker records when it did.
            started_at=now,
            finished_at=now,
            accepted_at=now,
            report={},
            uid=str(uuid.uuid4()),
            state=QUEUED,
            force=force,
        )
        session.add(run)
        session.flush()
        run.report = pending_report(run.id, entity, dry_run, now)
        session.flush()
        store_upload(connection, run.id, body, gzip=gzip, limit=limit)
        pending = run.report
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return {**pending, "state": QUEUED}


def pending_report(
    sync_id: int, entity: str, dry_run: bool, accepted_at: datetime
) -> dict[str, Any]:
    """What an unfinished sync's report holds: who it is and when it was accepted, no counts."""
    return {
        "syncId": sync_id,
        "entity": entity,
        "dryRun": dry_run,
        "acceptedAt": accepted_at.isoformat(timespec="microseconds"),
    }


def claim_next(connection: sa.Connection, claimant: str) -> Claimed | None:
    """Claim the oldest unfinished sync for ``claimant`` and commit; None if the queue is empty.

    Call it holding the worker lock (worker.py): then no other worker runs,
    so a ``running`` sync is one whose worker died, and is taken again.
    """
    row = connection.execute(
        sa.select(SyncRun.id, SyncRun.entity, SyncRun.dry_run, SyncRun.force, SyncRun.claimed_by)
        .where(SyncRun.state.in_(UNFINISHED))
        .order_by(SyncRun.id)
        .limit(1)
    ).first()
    if row is None:
        connection.rollback()
        return None
    connection.execute(
        sa.update(SyncRun)
        .where(SyncRun.id == row.id, SyncRun.state.in_(UNFINISHED))
        .values(state=RUNNING, claimed_by=claimant)
    )
    # Committed now, so that readers see it running while it runs.
    connection.commit()
    return Claimed(
        row.id, row.entity, row.dry_run, bool(row.force), claimant, taken_from=row.claimed_by
    )


def take_claimed_run(session: orm.Session, sync_id: int, claimant: str) -> SyncRun:
    """The claimed row of a sync about to be applied, locked; raise LostClaim if it is not ours.

    Under the sync lock, in the transaction that applies the sync: a row another
    worker finished, or claimed since, is never applied again.
    """
    run = session.scalar(sa.select(SyncRun).where(SyncRun.id == sync_id).with_for_update())
    if run is None or run.state != RUNNING or run.claimed_by != claimant:
        raise LostClaim(sync_id)
    return run


def finish_applied(session: orm.Session, run: SyncRun, report: dict[str, Any]) -> None:
    """Record a claimed sync applied, in the transaction that applied it; drop its upload."""
    run.state = APPLIED
    run.claimed_by = None
    # The report a synchronous sync of the same body returns: the accepted time
    # stays in its column (and in the console), not in the report.
    run.report = report
    delete_upload(session.connection(), run.id)


def finish_unapplied(
    session: orm.Session,
    claimed: Claimed,
    state: str,
    error: dict[str, Any],
    lock_timeout: float,
) -> bool:
    """Record a claimed sync ``refused`` or ``failed`` with ``error`` (code, message, details).

    Its upload is deleted in the same transaction, which commits. Taken under
    the sync lock, like every finish, so that ``applied_seq`` follows the
    order of finishes. False (nothing written) if the claim was lost.
    Raises SyncInProgress if the lock is not free within ``lock_timeout``.
    """
    try:
        connection = session.connection()
        with sync_lock(connection, lock_timeout):
            try:
                run = take_claimed_run(session, claimed.sync_id, claimed.claimant)
            except LostClaim:
                session.rollback()
                return False
            now = sync_time(connection)
            run.state = state
            run.claimed_by = None
            run.started_at = now
            run.finished_at = now
            run.applied_seq = next_applied_seq(connection)
            run.report = {**run.report, "error": error}
            delete_upload(connection, run.id)
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return True


def next_applied_seq(connection: sa.Connection) -> int:
    """The ``applied_seq`` of the sync finishing now; call it under the sync lock."""
    last = connection.scalar(sa.select(sa.func.max(SyncRun.applied_seq)))
    return (last or 0) + 1


def new_claimant(host: str, pid: int) -> str:
    """A worker's name in ``claimed_by``: where it runs, and a token no other worker has."""
    return f"{host}:{pid}:{uuid.uuid4().hex[:12]}"[:128]


@dataclass(frozen=True)
class QueueStatus:
    """``depth``: syncs accepted and not finished; ``oldest_age``: seconds the oldest has waited."""

    depth: int
    oldest_age: float


def queue_status(session: orm.Session) -> QueueStatus:
    """The queue as /metrics shows it, from the database at scrape time."""
    connection = session.connection()
    depth, oldest = connection.execute(
        sa.select(sa.func.count(), sa.func.min(SyncRun.accepted_at)).where(
            SyncRun.state.in_(UNFINISHED)
        )
    ).one()
    if oldest is None:
        return QueueStatus(int(depth), 0.0)
    # Both instants are the database's: the API may run on another host than it.
    age = (database_now(connection) - oldest).total_seconds()
    return QueueStatus(int(depth), max(age, 0.0))


class LostClaim(Exception):
    """The sync is no longer this worker's to finish (finished, or claimed by another)."""

    def __init__(self, sync_id: int) -> None:
        super().__init__(f"sync {sync_id} is no longer claimed by this worker")
        self.sync_id = sync_id
