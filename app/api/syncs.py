"""The history of syncs and their stored reports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint

from app.api.args import PageArgsSchema, SyncListArgsSchema
from app.api.cache import cached_read
from app.api.csv_export import csv_export
from app.api.openapi import csv_doc
from app.api.pagination import paginated
from app.api.schemas import SyncChangeSchema, SyncReportSchema, SyncSummarySchema
from app.errors import APIError
from app.extensions import db
from app.reads.changes import sync_changes, sync_entity
from app.reads.orderings import SYNCS_NEWEST_FIRST, SYNCS_OLDEST_FIRST, by_record
from app.reads.paging import SortKey, Window
from app.reads.serializers import SYNC_CHANGE_KEYS, change_json
from app.reads.syncs import summary_json, sync_report, sync_runs

bp = Blueprint("syncs", __name__, description="Recorded syncs, newest first.")
# sync_runs.id is a 32-bit integer: a larger id names no sync (404), not a query error.
SYNC_ID = "<int(max=2147483647):sync_id>"


@bp.route("/syncs", methods=["GET"])
@bp.arguments(SyncListArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200,
    schema=SyncSummarySchema(many=True),
    description="Sync reports without their errors (see GET /syncs/<syncId>).",
)
@cached_read
@paginated(item=summary_json)
def list_syncs(after: int | None) -> tuple[sa.Select[Any], SortKey]:
    """List syncs with their state and counts: newest first, or in finishing order after a sync."""
    syncs = sync_runs(db.session, after=after)
    # After a sync, in the order syncs finished: a consumer that remembers the
    # last sync it processed misses none (SPEC §5), queued ones included once
    # they finish.
    return syncs, SYNCS_NEWEST_FIRST if after is None else SYNCS_OLDEST_FIRST


@bp.route(f"/syncs/{SYNC_ID}/changes", methods=["GET"])
@bp.arguments(PageArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200,
    schema=SyncChangeSchema(many=True),
    description="The records the sync changed, in a stable order; "
    "with Accept: text/csv, all of them as CSV.",
)
@bp.alt_response(404, response="NOT_FOUND", description="No sync has this id.")
@bp.doc(**csv_doc("changes"))
@csv_export(SYNC_CHANGE_KEYS, change_json, "sync-{sync_id}-changes.csv")
@cached_read
@paginated(item=change_json)
def list_sync_changes(
    sync_id: int, window: Window
) -> tuple[sa.Select[Any], SortKey, dict[str, int]]:
    """List every record one sync changed: op, before, after and the changed fields."""
    entity = sync_entity(db.session, sync_id)
    if entity is None:
        raise APIError.not_found(f"Sync {sync_id}")
    after = window.after(by_record())
    changes, parameters = sync_changes(
        entity, sync_id, limit=window.rows, after_record_id=None if after is None else after[0]
    )
    return sa.select(changes), by_record(changes), parameters


@bp.route(f"/syncs/{SYNC_ID}", methods=["GET"])
@bp.alt_response(200, schema=SyncReportSchema, description="The stored sync report.")
@bp.alt_response(404, response="NOT_FOUND", description="No sync has this id.")
@cached_read
def get_sync(sync_id: int) -> dict[str, Any]:
    """Get one sync: its state and, once finished, its stored report."""
    report = sync_report(db.session, sync_id)
    if report is None:
        raise APIError.not_found(f"Sync {sync_id}")
    return report
