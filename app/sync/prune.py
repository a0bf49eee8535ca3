"""Retention of history (SPEC §5): nothing is pruned unless an operator asks.

``prune`` drops the versions that ended, and the sync records that began,
before an instant, and makes that instant the horizon: ``as_of`` before it
is refused (history_pruned), since the versions that would answer it are
gone. The newest applied sync of each entity stays, and an instant in the
future is refused. It runs under the sync lock, in one transaction. A prune
that would drop syncs whose events the relay has not yet published is
refused (UnpublishedEvents) unless forced: downstream services would never
hear of those changes. The check is the relay's (app.events.position),
handed in by the CLI, so that the sync package does not reach up into events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_now
from app.models import HistoryHorizon, PatientVersion, PaymentVersion, SyncRun
from app.reads.as_of import horizon
from app.sync.errors import SyncRefused
from app.sync.lock import sync_lock

# How many applied syncs begun before an instant the event relay has yet to publish.
UnpublishedCheck = Callable[[orm.Session, datetime], int]


class UnpublishedEvents(SyncRefused):
    """The prune would drop applied syncs whose change events the relay has not published."""

    code = "events_unpublished"


class FutureInstant(SyncRefused):
    """The prune was asked for an instant that has not come yet (by the database's clock)."""

    code = "instant_in_future"


@dataclass(frozen=True)
class PruneReport:
    """What a prune dropped, and the horizon it left."""

    before: datetime
    versions: int
    syncs: int

    def to_json(self) -> dict[str, object]:
        """The camelCase form the CLI prints."""
        return {
            "prunedBefore": self.before.isoformat(),
            "versionsDeleted": self.versions,
            "syncsDeleted": self.syncs,
        }


def prune(
    session: orm.Session,
    before: datetime,
    lock_timeout: float,
    *,
    unpublished_before: UnpublishedCheck | None = None,
) -> PruneReport:
    """Drop versions that ended and syncs that began before ``before``; commit.

    The horizon only moves forward: pruning before an earlier instant than a
    previous prune drops nothing more and keeps the later horizon. The
    newest applied sync of each entity is kept whenever it began: it
    describes the current data. Raises FutureInstant for an instant still to
    come (every as_of would be refused until then), and UnpublishedEvents
    if ``unpublished_before`` (the event relay's check, handed in by the
    caller; None to prune regardless) counts syncs it would drop unpublished;
    either changes nothing.
    """
    try:
        with sync_lock(session.connection(), lock_timeout):
            now = database_now(session.connection())
            if before > now:
                raise FutureInstant(
                    f"{before.isoformat()} is in the future (the database's clock says "
                    f"{now.isoformat()}); prune before an instant that has passed",
                    {"before": before.isoformat(), "now": now.isoformat()},
                )
            current = horizon(session)
            if current is not None and current > before:
                before = current
            unpublished = 0 if unpublished_before is None else unpublished_before(session, before)
            if unpublished:
                raise UnpublishedEvents(
                    f"{unpublished} applied sync(s) that began before {before.isoformat()} "
                    "are not yet published by the event relay (see events_relay_lag); "
                    "prune once it has caught up, or force it",
                    {"syncs": unpublished},
                )
            versions = sum(
                session.execute(sa.delete(model).where(model.valid_to < before)).rowcount  # type: ignore[attr-defined]
                for model in (PatientVersion, PaymentVersion)
            )
            syncs = session.execute(
                sa.delete(SyncRun).where(
                    SyncRun.started_at < before,
                    # An accepted sync not finished yet is pending work, not history.
                    SyncRun.applied_seq.is_not(None),
                    SyncRun.applied_seq.not_in(_newest_applied_syncs()),
                )
            ).rowcount  # type: ignore[attr-defined]
            session.merge(HistoryHorizon(id=1, pruned_before=before))
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return PruneReport(before, versions, syncs)


def _newest_applied_syncs() -> sa.Select[tuple[int]]:
    """The newest applied sync of each entity (its applied_seq): kept by every prune (SPEC §5).

    Newest in the order syncs were applied, which an asynchronous sync's id
    does not follow.
    """
    return (
        sa.select(sa.func.max(SyncRun.applied_seq))
        .where(SyncRun.dry_run.is_(False), SyncRun.state == "applied")
        .group_by(SyncRun.entity)
    )
