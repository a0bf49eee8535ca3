"""The POST side shared by /patients and /payments: body in, sync report out."""

from __future__ import annotations

import time
from typing import Any, BinaryIO

from flask import current_app, g, request
from werkzeug.exceptions import HTTPException

from app import metrics
from app.errors import APIError
from app.extensions import db
from app.snapshot import GunzipReader, iter_snapshot
from app.sync import SyncRefused, SyncReport, SyncSettings, run_sync


def sync_from_request(entity: str, *, dry_run: bool, force: bool) -> dict[str, Any]:
    """Stream the request's snapshot through the sync engine and return the report JSON."""
    started = time.perf_counter()
    outcome, report = "failed", None
    try:
        records = iter_snapshot(_request_stream())
        report = run_sync(db.session, entity, records, dry_run=dry_run, force=force,
                          settings=SyncSettings.from_config(current_app.config))
        outcome = "dry_run" if dry_run else "applied"
    except SyncRefused:
        outcome = "refused"
        raise
    except (APIError, HTTPException):
        outcome = "invalid"
        raise
    finally:
        metrics.observe_sync(entity, outcome, time.perf_counter() - started, report)
        g.sync_summary = _summary(entity, outcome, report)
    return report.to_json()


def _summary(entity: str, outcome: str, report: SyncReport | None) -> dict[str, Any]:
    """What the access log says about a sync."""
    summary: dict[str, Any] = {"entity": entity, "outcome": outcome}
    if report is not None:
        # Counts only, never record contents: errors quote the values they reject.
        summary |= {"sync_id": report.sync_id, "dry_run": report.dry_run,
                    "received": report.received, **report.counts()}
    return summary


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
