"""Recorded syncs and their stored reports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.dialect import Bind, dialect_of
from app.models import (
    SyncRun,
)


def sync_runs(bind: Bind, after: int | None = None) -> sa.Select[Any]:
    """Recorded syncs (those after sync ``after``, if given), reports without their errors.

    A report may list up to SYNC_MAX_ERRORS errors; a page of a hundred such
    reports would be megabytes, so the list carries counts and each item
    (GET /syncs/<id>) its errors. The errors are dropped in SQL, not after
    loading them.
    """
    summary = dialect_of(bind).json_without(SyncRun.report, "errors")
    query = sa.select(SyncRun.id, sa.type_coerce(summary, SyncRun.report.type).label("report"))
    return query if after is None else query.where(SyncRun.id > after)


def sync_report(session: orm.Session, sync_id: int) -> dict[str, Any] | None:
    """The stored report of one sync, or None."""
    return session.scalar(sa.select(SyncRun.report).where(SyncRun.id == sync_id))
