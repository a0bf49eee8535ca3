"""Recorded syncs and their stored reports, each with its state (SPEC §2)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.dialect import Bind, dialect_of
from app.models import SyncRun


def sync_runs(bind: Bind, after: int | None = None) -> sa.Select[Any]:
    """Recorded syncs, reports without their errors; with ``after``, those finished after it.

    A report may list up to SYNC_MAX_ERRORS errors; a page of a hundred such
    reports would be megabytes, so the list carries counts and each item
    (GET /syncs/<id>) its errors. The errors are dropped in SQL, not after
    loading them.

    The feed (``after``) follows the order syncs finished in (``applied_seq``),
    not their ids: ids are allotted at acceptance, and an asynchronous sync
    accepted before a synchronous one may be applied after it. A consumer that
    remembers the last sync it processed then misses none, and an unfinished
    sync is not listed until it finishes (it would be passed over otherwise).
    """
    summary = dialect_of(bind).json_without(SyncRun.report, "errors")
    query = sa.select(
        SyncRun.id,
        SyncRun.applied_seq,
        SyncRun.state,
        sa.type_coerce(summary, SyncRun.report.type).label("report"),
    )
    return query if after is None else query.where(SyncRun.applied_seq > finished_position(after))


def finished_position(sync_id: int) -> sa.ColumnElement[int]:
    """Where sync ``sync_id`` stands in the order syncs finished in (its ``applied_seq``).

    An id that names no finished sync (pruned, unfinished, or never used)
    stands where the last finished sync accepted before it does.
    """
    own = sa.select(SyncRun.applied_seq).where(SyncRun.id == sync_id).scalar_subquery()
    earlier = sa.select(sa.func.max(SyncRun.applied_seq)).where(SyncRun.id <= sync_id)
    return sa.func.coalesce(own, earlier.scalar_subquery(), 0)


def summary_json(row: Any) -> dict[str, Any]:
    """One row of ``sync_runs`` as the list shows it: the stored report and the state."""
    return {**row.report, "state": row.state}


def sync_report(session: orm.Session, sync_id: int) -> dict[str, Any] | None:
    """The stored report of one sync with its state, or None.

    An unfinished sync's report holds no counts yet: its id, entity, dryRun and
    acceptedAt (app/sync/queue.py); a refused or failed one holds its error.
    """
    row = session.execute(
        sa.select(SyncRun.report, SyncRun.state).where(SyncRun.id == sync_id)
    ).first()
    return None if row is None else summary_json(row)
