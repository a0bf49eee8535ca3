"""Liveness and readiness probes; open, and free of patient data."""

from __future__ import annotations

from typing import Any

from alembic.script import ScriptDirectory
from flask import current_app
from flask_smorest import Blueprint

from app.api.schemas import HealthSchema, ReadinessSchema
from app.errors import APIError
from app.extensions import db
from app.reads import live
from app.web.replicas import router_of

bp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


@bp.route("/healthz", methods=["GET"])
@bp.alt_response(200, schema=HealthSchema, description="The process is running.")
def healthz() -> dict[str, Any]:
    """Report that the process is running."""
    return {"status": "ok"}


@bp.route("/readyz", methods=["GET"])
@bp.alt_response(200, schema=ReadinessSchema, description="Ready to serve.")
@bp.alt_response(
    503,
    response="SERVICE_UNAVAILABLE",
    description="The database is unreachable (database_unavailable) or its "
    "schema is not at the latest migration (not_ready).",
)
def readyz() -> dict[str, Any]:
    """Report ready when the database answers and its schema is at the latest migration.

    With replicas: when the database reads are routed to answers (the primary
    may be lost: reads go on from the replicas), and the body names which
    databases answer.
    """
    expected = _migration_heads()
    # An unreachable database raises: 503 database_unavailable (app/errors.py);
    # with replicas, a failing replica's read is first retried elsewhere.
    current = live.schema_revisions(db.session)
    if current != expected:
        raise APIError(
            503,
            "not_ready",
            "The database schema is not at the latest migration.",
            {"current": sorted(current), "expected": sorted(expected)},
        )
    ready: dict[str, Any] = {"status": "ready", "revision": sorted(current)}
    router = router_of(current_app)
    # One database: it has just answered, so it is the one that answers reads.
    ready["databases"] = (
        router.status()
        if router is not None
        else {"primary": {"host": db.engine.url.host, "state": "up"}, "replicas": []}
    )
    return ready


def _migration_heads() -> set[str]:
    config = current_app.extensions["migrate"].migrate.get_config()
    return set(ScriptDirectory.from_config(config).get_heads())
