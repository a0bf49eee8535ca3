"""GET /metrics: Prometheus text format; open, and free of patient data."""

from __future__ import annotations

from flask import Response
from flask_smorest import Blueprint

from app import metrics

bp = Blueprint("metrics", __name__, description="Prometheus metrics for operators.")

_TEXT = {"text/plain": {"schema": {"type": "string"}}}


@bp.route("/metrics", methods=["GET"])
@bp.doc(responses={"200": {"description": "Prometheus text exposition format.",
                           "content": _TEXT}})
def prometheus_metrics() -> Response:
    """Request latencies, sync runs and rows by outcome, sync durations."""
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)
