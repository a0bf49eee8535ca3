"""The POST side shared by /patients and /payments: body in, sync report out."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from app.errors import APIError
from app.extensions import db
from app.snapshot import gunzip_bounded, parse_snapshot
from app.sync import SyncSettings, run_sync


def sync_from_request(entity: str, *, dry_run: bool, force: bool) -> dict[str, Any]:
    """Read the request's snapshot, run the sync engine and return the report JSON."""
    records = parse_snapshot(_request_body())
    report = run_sync(db.session, entity, records, dry_run=dry_run, force=force,
                      settings=SyncSettings.from_config(current_app.config))
    return report.to_json()


def _request_body() -> bytes:
    if request.mimetype != "application/json":
        raise APIError.unsupported_media_type(
            f"Expected Content-Type application/json, got {request.mimetype or 'none'}.")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise APIError.unsupported_media_type(
            f"Unsupported Content-Encoding {encoding!r}; send identity or gzip.")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise APIError.payload_too_large(limit) from None
    return gunzip_bounded(raw, limit) if encoding == "gzip" else raw
