"""The relay as /metrics shows it: its lag and how many events the broker confirmed (SPEC §6).

Read from the database at scrape time in one query, so the API knows it
without talking to the relay or the broker.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.clock import database_now
from app.events.messages import CHANGE_OUTCOMES
from app.events.position import ROW_ID, START
from app.models import EventRelayPosition, SyncRun


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """``lag``: events committed but not yet confirmed; ``published_total``: confirmed so far.

    ``publish_rate``: events per second of the relay's latest window, or 0
    once no window was stored for RATE_FRESH_SECONDS (an idle or dead relay).
    """

    lag: int
    published_total: int
    publish_rate: float = 0.0


# An idle relay stores nothing: a rate older than this no longer describes it.
RATE_FRESH_SECONDS = 15.0


def relay_status(session: orm.Session, configured: bool) -> RelayStatus | None:
    """The relay's lag and confirmed total; None if no relay ever ran and none is ``configured``.

    The lag counts from the sync reports (one event per created, updated,
    deleted or restored record, plus one sync.applied per applied sync)
    after the stored position, less what of the current sync is confirmed:
    an index range of sync_runs, not a count of the changes. Before the
    first relay run the position is the start.
    """
    position = EventRelayPosition
    # One row whether or not the position row exists yet.
    anchor = sa.select(sa.literal(ROW_ID).label("id")).subquery("anchor")
    sync_seq = sa.func.coalesce(position.sync_seq, START.sync_seq)
    complete = sa.func.coalesce(position.sync_complete, START.sync_complete)
    count = {name: SyncRun.report[name].as_integer() for name in CHANGE_OUTCOMES}
    events = count["created"] + count["updated"] + count["deleted"] + count["restored"] + 1
    pending = (
        sa.select(sa.func.coalesce(sa.func.sum(events), 0))
        .where(
            SyncRun.dry_run.is_(False),
            SyncRun.state == "applied",
            # The order syncs were applied in, as the feed reads them (feed.py).
            sa.or_(
                SyncRun.applied_seq > sync_seq,
                sa.and_(SyncRun.applied_seq == sync_seq, sa.not_(complete)),
            ),
        )
        .scalar_subquery()
    )
    confirmed = sa.case((complete, 0), else_=sa.func.coalesce(position.sync_events, 0))
    ran, published_total, lag, rate, updated_at = session.execute(
        sa.select(
            position.id.is_not(None),
            sa.func.coalesce(position.published_total, 0),
            pending - confirmed,
            position.publish_rate,
            position.updated_at,
        ).select_from(anchor.outerjoin(position, position.id == anchor.c.id))
    ).one()
    if not (ran or configured):
        return None
    # Both instants are the database's: the relay may run on another host.
    fresh = (
        updated_at is not None
        and (database_now(session.connection()) - updated_at).total_seconds() < RATE_FRESH_SECONDS
    )
    # Negative only if the current sync was pruned mid-way; it has no events left then.
    return RelayStatus(
        lag=max(int(lag), 0),
        published_total=int(published_total),
        publish_rate=float(rate) if fresh and rate else 0.0,
    )
