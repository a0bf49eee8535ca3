"""The POST side shared by /patients and /payments: body in, sync report out.

With ``Prefer: respond-async`` (RFC 7240) the body is stored and the sync
queued for `flask syncs worker` instead: 202 Accepted once it is durable,
``Location`` naming the sync (SPEC §2, asynchronous syncs).
"""

from __future__ import annotations

import time
from typing import Any, BinaryIO

from flask import Response, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from app.errors import APIError
from app.extensions import db
from app.snapshot import GunzipReader, SnapshotBody, SnapshotError, SnapshotTooLarge
from app.sync import SyncRefused, SyncReport, SyncSettings, queue, run_sync
from app.web import metrics

RESPOND_ASYNC = "respond-async"


def sync_or_accept(entity: str, *, dry_run: bool, force: bool) -> dict[str, Any] | Response:
    """The sync report (200), or, if the client prefers respond-async, the 202 of a queued sync."""
    if RESPOND_ASYNC in preferences(request.headers.getlist("Prefer")):
        return accept_from_request(entity, dry_run=dry_run, force=force)
    return sync_from_request(entity, dry_run=dry_run, force=force)


def preferences(headers: list[str]) -> set[str]:
    """The preference names of ``Prefer`` header values (RFC 7240 §2), lowercased.

    Each value is a comma-separated list of ``token [= word] *(; parameter)``;
    a quoted word may hold commas and semicolons, so the split respects quotes.
    """
    names: set[str] = set()
    for header in headers:
        for preference in _split_outside_quotes(header, ","):
            name = _split_outside_quotes(preference, ";")[0].split("=", 1)[0].strip().lower()
            if name:
                names.add(name)
    return names


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def accept_from_request(entity: str, *, dry_run: bool, force: bool) -> Response:
    """Store the request's body durably as a queued sync; answer 202 with its Location."""
    started = time.perf_counter()
    outcome = "failed"
    try:
        body, gzip = _checked_raw_stream()
        pending = queue.accept(
            db.session,
            entity,
            body,
            gzip=gzip,
            limit=current_app.config["MAX_CONTENT_LENGTH"],
            dry_run=dry_run,
            force=force,
        )
        outcome = "accepted"
    except (APIError, SnapshotError, HTTPException):
        outcome = "invalid"
        raise
    finally:
        metrics.observe_sync(entity, outcome, time.perf_counter() - started)
        g.sync_summary = {"entity": entity, "outcome": outcome}
    g.sync_summary["sync_id"] = pending["syncId"]
    response = jsonify(pending)
    response.status_code = 202
    response.headers["Location"] = f"/syncs/{pending['syncId']}"
    response.headers["Preference-Applied"] = RESPOND_ASYNC
    return response


def sync_from_request(entity: str, *, dry_run: bool, force: bool) -> dict[str, Any]:
    """Stream the request's snapshot through the sync engine and return the report JSON."""
    started = time.perf_counter()
    outcome, report = "failed", None
    try:
        records = SnapshotBody(
            _request_stream(), max_record_bytes=current_app.config["SYNC_MAX_RECORD_BYTES"]
        )
        report = run_sync(
            db.session,
            entity,
            records,
            dry_run=dry_run,
            force=force,
            settings=SyncSettings.from_config(current_app.config),
        )
        outcome = "dry_run" if dry_run else "applied"
    except SyncRefused:
        outcome = "refused"
        raise
    except (APIError, SnapshotError, HTTPException):
        outcome = "invalid"
        raise
    finally:
        rows = report.counts() if report is not None and not report.dry_run else None
        metrics.observe_sync(entity, outcome, time.perf_counter() - started, rows)
        g.sync_summary = _summary(entity, outcome, report)
    # Stored with the report: GET /syncs/<id> answers the same position (SPEC §8).
    g.data_position = report.data_position
    return report.to_json()


def _summary(entity: str, outcome: str, report: SyncReport | None) -> dict[str, Any]:
    """What the access log says about a sync."""
    summary: dict[str, Any] = {"entity": entity, "outcome": outcome}
    if report is not None:
        # Counts only, never record contents: errors quote the values they reject.
        summary |= {
            "sync_id": report.sync_id,
            "dry_run": report.dry_run,
            "received": report.received,
            **report.counts(),
        }
    return summary


def _request_stream() -> BinaryIO:
    """The body as a stream, bounded by MAX_CONTENT_LENGTH raw and, if gzip, decompressed."""
    raw, gzip = _checked_raw_stream()
    if gzip:
        return GunzipReader(raw, current_app.config["MAX_CONTENT_LENGTH"])  # type: ignore[return-value]
    return raw


def _checked_raw_stream() -> tuple[BinaryIO, bool]:
    """The body as sent, bounded by MAX_CONTENT_LENGTH, and whether it is gzip.

    Refuses a Content-Type or Content-Encoding a sync does not take (415).
    """
    if request.mimetype != "application/json":
        raise APIError.unsupported_media_type(
            f"Expected Content-Type application/json, got {request.mimetype or 'none'}."
        )
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise APIError.unsupported_media_type(
            f"Unsupported Content-Encoding {encoding!r}; send identity or gzip."
        )
    return _raw_stream(current_app.config["MAX_CONTENT_LENGTH"]), encoding == "gzip"


def _raw_stream(limit: int) -> BinaryIO:
    """The raw body, refused with 413 as soon as more than ``limit`` bytes of it arrive."""
    # A declared length over the limit is refused before anything is read, here
    # and not by request.stream: werkzeug's 413 has its own wording and no
    # details.limit, and every oversized body (plain, chunked or gzip) must get
    # the same answer.
    if (request.content_length or 0) > limit:
        raise SnapshotTooLarge(limit)
    stream = request.stream
    if "wsgi.input_terminated" not in request.environ:
        return stream
    # A server that ends the input itself (gunicorn) gets werkzeug's
    # LimitedStream(is_max=True), which raises 413 on the read that finds the
    # end of a body of exactly ``limit`` bytes: it cannot tell that end from
    # more data. Count the bytes here instead, and refuse only byte limit + 1.
    return _BoundedInput(request.environ["wsgi.input"], limit)  # type: ignore[return-value]


class _BoundedInput:
    """A read()-able WSGI input that refuses a body longer than ``limit`` bytes."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes; b"" at the end of the body."""
        # One byte past the limit is enough to know the body is too long.
        wanted = self._limit + 1 - self._read
        try:
            data = self._raw.read(wanted if size < 0 else min(size, wanted))
        except (OSError, ValueError):
            raise ClientDisconnected() from None  # as werkzeug's own stream does
        self._read += len(data)
        if self._read > self._limit:
            raise SnapshotTooLarge(self._limit)
        return data
