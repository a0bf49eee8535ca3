"""GET /metrics: Prometheus text format; open, and free of patient data."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Response, current_app
from flask_smorest import Blueprint

from app.events.status import RelayStatus, relay_status
from app.extensions import db
from app.sync.queue import QueueStatus, queue_status
from app.web import metrics

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__, description="Prometheus metrics for operators.")

_TEXT = {"text/plain": {"schema": {"type": "string"}}}


@bp.route("/metrics", methods=["GET"])
@bp.doc(responses={"200": {"description": "Prometheus text exposition format.", "content": _TEXT}})
def prometheus_metrics() -> Response:
    """Request latencies, sync runs and rows by outcome, sync durations, relay lag, sync queue."""
    body, content_type = metrics.exposition()
    relay = _relay_status()
    if relay is not None:
        body += metrics.relay_exposition(relay.lag, relay.published_total, relay.publish_rate)
    waiting = _queue_status()
    if waiting is not None:
        body += metrics.queue_exposition(waiting.depth, waiting.oldest_age)
    return Response(body, content_type=content_type)


def _relay_status() -> RelayStatus | None:
    """The relay's figures, once it ran on this database or is configured here.

    A scrape must not fail with the database: the relay's series are then
    left out (alert on their absence), the rest is served as always.
    """
    try:
        return relay_status(db.session, configured=bool(current_app.config["EVENTS_BROKER_URL"]))
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        log.warning("event relay metrics unavailable: %s", type(error).__name__)
        return None


def _queue_status() -> QueueStatus | None:
    """The asynchronous sync queue's depth and oldest age; None (left out) without a database."""
    try:
        return queue_status(db.session)
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        log.warning("sync queue metrics unavailable: %s", type(error).__name__)
        return None
