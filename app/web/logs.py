"""Structured logs: one JSON object per line, each tagged with the request id.

Only what an operator needs goes in; callers pass their fields explicitly in
``extra={"fields": {...}}`` so that nothing reaches a log by accident. Patient
names, dates of birth and amounts are never logged (SPEC §4).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context


class JsonFormatter(logging.Formatter):
    """Format a record as a single JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON: time, level, logger, message, request id and its fields."""
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=True)


class RequestIdFilter(logging.Filter):
    """Tag records logged while serving a request with that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add ``request_id``; never drops a record."""
        if not hasattr(record, "request_id") and has_request_context():
            record.request_id = g.get("request_id")
        return True


def configure_logging(level: str) -> None:
    """Send JSON lines to stderr, unless the host (gunicorn, pytest) already set up logging."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
    logging.getLogger("app").setLevel(level)
    # Alembic announces its plugins at INFO whenever Flask-Migrate is imported.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
