"""Retention of history (SPEC §5): nothing is pruned unless an operator asks.

``prune`` drops the versions that ended, and the sync records that began,
before an instant, and makes that instant the horizon: ``as_of`` before it
is refused (history_pruned), since the versions that would answer it are
gone. The newest applied sync of each entity stays, and an instant in the
future is refused. It runs under the sync lock, in one transaction. Once the event
relay has run, a prune that would drop syncs whose events it has not yet
published is refused (UnpublishedEvents) unless forced: downstream services
would never hear of those changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from app.clock import database_now
from app.events import position
from app.models import HistoryHorizon, PatientVersion, PaymentVersion, SyncRun
from app.sync.errors import SyncRefused
from app.sync.lock import sync_lock


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


def horizon(session: orm.Session) -> datetime | None:
    """The instant before which history was pruned, or None if it never was."""
    return session.scalar(sa.select(HistoryHorizon.pruned_before))


def pruned_horizon(session: orm.Session, at: datetime) -> datetime | None:
    """The horizon if ``at`` lies before it (the versions that held then are gone), else None."""
    pruned_before = horizon(session)
    return pruned_before if pruned_before is not None and at < pruned_before else None


def prune(
    session: orm.Session, before: datetime, lock_timeout: float, *, force: bool = False
) -> PruneReport:
    """Drop versions that ended and syncs that began before ``before``; commit.

    The horizon only moves forward: pruning before an earlier instant than a
    previous prune drops nothing more and keeps the later horizon. The
    newest applied sync of each entity is kept whenever it began: it
    describes the current data. Raises FutureInstant for an instant still to
    come (every as_of would be refused until then), and UnpublishedEvents
    if the relay has yet to publish a sync the prune would drop, unless
    ``force``; either changes nothing.
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
            unpublished = 0 if force else _unpublished_syncs(session, before)
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
                    SyncRun.started_at < before, SyncRun.id.not_in(_newest_applied_syncs())
                )
            ).rowcount  # type: ignore[attr-defined]
            session.merge(HistoryHorizon(id=1, pruned_before=before))
            session.commit()
    except BaseException:
        session.rollback()
        raise
    return PruneReport(before, versions, syncs)


def _newest_applied_syncs() -> sa.Select[tuple[int]]:
    """The newest applied sync of each entity: kept by every prune (SPEC §5)."""
    return (
        sa.select(sa.func.max(SyncRun.id))
        .where(SyncRun.dry_run.is_(False))
        .group_by(SyncRun.entity)
    )


def _unpublished_syncs(session: orm.Session, before: datetime) -> int:
    """Applied syncs begun before ``before`` the relay has not fully published (0: it never ran)."""
    relay = position.stored(session.connection())
    if relay is None:
        return 0
    return (
        session.scalar(
            sa.select(sa.func.count()).where(
                SyncRun.dry_run.is_(False), SyncRun.started_at < before, position.unpublished(relay)
            )
        )
        or 0
    )
