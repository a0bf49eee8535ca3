"""The history of syncs and their stored reports."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint

from app import queries
from app.api.args import PageArgsSchema
from app.api.cache import cached_read
from app.api.orderings import SYNCS_NEWEST_FIRST
from app.api.pagination import SortKey, paginated
from app.api.schemas import SyncReportSchema, SyncSummarySchema
from app.errors import APIError
from app.extensions import db

bp = Blueprint("syncs", __name__, description="Recorded syncs, newest first.")

@bp.route("/syncs", methods=["GET"])
@bp.arguments(PageArgsSchema, location="query", as_kwargs=True)
@bp.alt_response(200, schema=SyncSummarySchema(many=True),
                 description="Sync reports without their errors (see GET /syncs/<syncId>).")
@cached_read
@paginated(item=lambda row: row.report)
def list_syncs() -> tuple[sa.Select[Any], SortKey]:
    """List recorded syncs, newest first, with their counts (errors are on each sync)."""
    return queries.sync_runs(db.session.get_bind().dialect.name), SYNCS_NEWEST_FIRST


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
