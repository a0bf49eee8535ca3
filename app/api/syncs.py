"""The history of syncs and their stored reports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint

from app import queries
from app.api.args import SyncListArgsSchema
from app.api.cache import cached_read
from app.api.orderings import SYNCS_NEWEST_FIRST, SYNCS_OLDEST_FIRST
from app.api.pagination import SortKey, paginated
from app.api.schemas import SyncReportSchema, SyncSummarySchema
from app.errors import APIError
from app.extensions import db

bp = Blueprint("syncs", __name__, description="Recorded syncs, newest first.")


@bp.route("/syncs", methods=["GET"])
@bp.arguments(SyncListArgsSchema, location="query", as_kwargs=True)
@bp.alt_response(200, schema=SyncSummarySchema(many=True),
                 description="Sync reports without their errors (see GET /syncs/<syncId>).")
@cached_read
@paginated(item=lambda row: row.report)
def list_syncs(after: int | None) -> tuple[sa.Select[Any], SortKey]:
    """List recorded syncs with their counts: newest first, or oldest first after a sync."""
    syncs = queries.sync_runs(db.session.get_bind().dialect.name, after=after)
    # After a sync, oldest first: a consumer that remembers the last sync it
    # processed misses none (SPEC §5).
    return syncs, SYNCS_NEWEST_FIRST if after is None else SYNCS_OLDEST_FIRST


@bp.route("/syncs/<int:sync_id>", methods=["GET"])
@bp.alt_response(200, schema=SyncReportSchema, description="The stored sync report.")
@bp.alt_response(404, response="NOT_FOUND", description="No sync has this id.")
@cached_read
def get_sync(sync_id: int) -> dict[str, Any]:
    """Get the stored report of one sync."""
    report = queries.sync_report(db.session, sync_id)
    if report is None:
        raise APIError.not_found(f"Sync {sync_id}")
    return report
