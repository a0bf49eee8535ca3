"""Error handlers: every failure, whatever raised it, leaves as the envelope of app/errors.py.

The layers below raise their own errors (the snapshot reader SnapshotError,
the engine SyncRefused, the reads CursorError, SQLAlchemy its own); this is where each becomes an
HTTP status and code.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from app.errors import (
    DATABASE_RETRY_AFTER,
    DATABASE_UNAVAILABLE,
    APIError,
    error_response,
    http_exception_response,
)
from app.extensions import db
from app.reads.paging import CursorError
from app.snapshot import SnapshotError, SnapshotTooLarge
from app.sync.errors import SyncRefused

log = logging.getLogger(__name__)

# The whole-request errors of an unreadable snapshot body (SPEC §2).
SNAPSHOT_STATUS = {"invalid_json": 400, "invalid_payload": 422, "payload_too_large": 413}


def register_error_handlers(app: Flask) -> None:
    """Route every failure through the JSON envelope."""

    @app.errorhandler(APIError)
    def handle_api_error(error: APIError) -> Response:
        response = error_response(error.status, error.code, error.message, error.details)
        response.headers.update(error.headers)
        return response

    @app.errorhandler(CursorError)
    def handle_cursor_error(error: CursorError) -> Response:
        if error.code == "invalid_parameter":
            return handle_api_error(APIError.invalid_parameter("cursor", error.message))
        return handle_api_error(
            APIError(422, error.code, error.message, {"parameter": "cursor", **error.details})
        )

    @app.errorhandler(SnapshotError)
    def handle_snapshot_error(error: SnapshotError) -> Response:
        details = {"limit": error.limit} if isinstance(error, SnapshotTooLarge) else {}
        return error_response(SNAPSHOT_STATUS[error.code], error.code, error.message, details)

    @app.errorhandler(SyncRefused)
    def handle_sync_refused(error: SyncRefused) -> Response:
        return error_response(409, error.code, error.message, error.details)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        return http_exception_response(error)

    def handle_database_unavailable(error: sa.exc.SQLAlchemyError) -> Response:
        # The class only: hide_parameters keeps values out, but the message may quote SQL.
        log.warning("database unavailable: %s", type(getattr(error, "orig", error)).__name__)
        _rollback_quietly()
        response = error_response(
            503, "database_unavailable", "The database cannot be reached; retry later."
        )
        response.headers["Retry-After"] = DATABASE_RETRY_AFTER
        return response

    for error_class in DATABASE_UNAVAILABLE:
        app.register_error_handler(error_class, handle_database_unavailable)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        log.exception("unhandled error")
        _rollback_quietly()
        return error_response(500, "internal_error", "An internal error occurred.")


def _rollback_quietly() -> None:
    """End the request's transaction; a dead connection must not turn one error into two."""
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        log.warning("rollback failed after an error")
