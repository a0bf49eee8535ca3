"""Analytics for dashboards (SPEC §3): the spread of totals, their histogram, the syncs' trend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_smorest import Blueprint

from app.api.args import AnalyticsSyncArgsSchema, AsOfArgsSchema, HistogramArgsSchema
from app.api.cache import cached_read
from app.api.horizon import require_history_at
from app.api.pagination import paginated
from app.api.schemas import AnalyticsHistogramSchema, AnalyticsSummarySchema, AnalyticsSyncSchema
from app.extensions import db
from app.reads import analytics
from app.reads.orderings import SYNCS_BY_ID
from app.reads.paging import SortKey
from app.reads.serializers import histogram_json, summary_json, sync_trend_json

bp = Blueprint(
    "analytics", __name__, description="Figures for dashboards: totals, histogram, sync trends."
)


@bp.route("/analytics/summary", methods=["GET"])
@bp.arguments(AsOfArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(200, schema=AnalyticsSummarySchema, description="The summary.")
@cached_read
def get_summary(as_of: datetime | None) -> dict[str, Any]:
    """Count live patients and payments, and summarise the spread of patients' totals."""
    require_history_at(as_of)
    return summary_json(analytics.summary(db.session, analytics.totals(as_of)))


@bp.route("/analytics/histogram", methods=["GET"])
@bp.arguments(HistogramArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(200, schema=AnalyticsHistogramSchema, description="The histogram.")
@cached_read
def get_histogram(buckets: int, as_of: datetime | None) -> dict[str, Any]:
    """Count live patients per bucket of equal width between the least and greatest total."""
    require_history_at(as_of)
    return histogram_json(analytics.histogram(db.session, analytics.totals(as_of), buckets))


@bp.route("/analytics/syncs", methods=["GET"])
@bp.arguments(AnalyticsSyncArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200, schema=AnalyticsSyncSchema(many=True), description="Recorded syncs, oldest first."
)
@cached_read
@paginated(item=sync_trend_json)
def list_sync_trend(after: int | None) -> tuple[sa.Select[Any], SortKey]:
    """List recorded syncs oldest first: state, start, duration and counts."""
    return analytics.sync_trend(db.session, after=after), SYNCS_BY_ID
