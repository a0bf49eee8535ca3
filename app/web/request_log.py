"""Request ids and the access log: one JSON line per request.

Every response carries ``X-Request-ID``: the client's own when it is a sane
value, else a fresh one, so a request can be followed from the caller's logs
into ours. The access line has the method, the path without its query string
(queries carry amounts and identifiers), the status, the duration and, for
syncs, the report's counts.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

access_log = logging.getLogger("app.access")

REQUEST_ID_HEADER = "X-Request-ID"
# Printable ASCII without spaces, bounded: the id is echoed into headers and logs.
_SANE_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")


def init_request_log(app: Flask) -> None:
    """Assign request ids and log each request; call before any other request hook."""
    app.before_request(start_request)
    app.after_request(finish_request)


def start_request() -> None:
    """Take the client's request id or make one, and start the clock."""
    g.started = time.perf_counter()
    g.request_id = incoming_request_id() or uuid.uuid4().hex


def finish_request(response: Response) -> Response:
    """Echo the request id and write the access line."""
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    principal = g.get("principal")
    log_access(
        request_id,
        request.method,
        request.path,
        response.status_code,
        g.get("started", time.perf_counter()),
        principal=None if principal is None else principal.name,
        sync=g.get("sync_summary"),
    )
    return response


def log_access(
    request_id: str,
    method: str,
    path: str,
    status: int,
    started: float,
    principal: str | None = None,
    sync: dict[str, Any] | None = None,
) -> None:
    """Write one request's access line (``started``: its ``time.perf_counter()``)."""
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    if principal is not None:
        fields["principal"] = principal
    if sync is not None:
        fields["sync"] = sync
    access_log.info("request", extra={"fields": fields, "request_id": request_id})


def incoming_request_id() -> str | None:
    """The client's X-Request-ID when it is printable ASCII of a sane length."""
    return sane_request_id(request.headers.get(REQUEST_ID_HEADER, ""))


def sane_request_id(value: str) -> str | None:
    """``value`` when it is printable ASCII of a sane length, to echo as a request id."""
    return value if _SANE_REQUEST_ID.fullmatch(value) else None
