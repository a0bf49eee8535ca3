"""The POST side shared by /patients and /payments: body in, sync report out."""

from __future__ import annotations

from typing import Any, BinaryIO

from flask import current_app, request

from app.errors import APIError
from app.extensions import db
from app.snapshot import GunzipReader, iter_snapshot
from app.sync import SyncSettings, run_sync


def sync_from_request(entity: str, *, dry_run: bool, force: bool) -> dict[str, Any]:
    """Stream the request's snapshot through the sync engine and return the report JSON."""
    records = iter_snapshot(_request_stream())
    report = run_sync(db.session, entity, records, dry_run=dry_run, force=force,
                      settings=SyncSettings.from_config(current_app.config))
    return report.to_json()


def _request_stream() -> BinaryIO:
    """The body as a stream; werkzeug enforces MAX_CONTENT_LENGTH on the raw bytes."""
    if request.mimetype != "application/json":
        raise APIError.unsupported_media_type(
            f"Expected Content-Type application/json, got {request.mimetype or 'none'}.")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise APIError.unsupported_media_type(
            f"Unsupported Content-Encoding {encoding!r}; send identity or gzip.")
    if encoding == "gzip":
        return GunzipReader(request.stream, current_app.config["MAX_CONTENT_LENGTH"])  # type: ignore[return-value]
    return request.stream
