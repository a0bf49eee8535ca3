"""Content negotiation for the listings: ``Accept: text/csv`` streams the whole listing as CSV.

``csv_export`` goes between ``@bp.arguments`` and ``@cached_read`` on a view
decorated with ``@paginated``. A request preferring text/csv (by its Accept
q-values; JSON stays the default, and is the answer to ``*/*``) gets every
row of the listing with the same filters, sort and ``as_of``; ``limit`` and
``cursor`` are ignored (SPEC §3 "CSV"). Bad arguments were refused by then,
as JSON. The answer streams (app/web/csv_stream.py); its ETag names the data
version and the parsed arguments, like the JSON answer's, but differs from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, request
from werkzeug.datastructures import MIMEAccept

from app.api.cache import etag_of
from app.reads.exports import export_of
from app.web.csv_stream import CSV_MIMETYPE, csv_response

JSON_MIMETYPE = "application/json"
_OFFERED = [JSON_MIMETYPE, CSV_MIMETYPE]


def wants_csv() -> bool:
    """Whether the request prefers text/csv to JSON (Accept, with its q-values)."""
    return prefers_csv(request.accept_mimetypes)


def prefers_csv(accept: MIMEAccept) -> bool:
    """Whether an Accept header prefers text/csv to JSON (JSON without one, and for */*)."""
    if not accept:
        return False
    return accept.best_match(_OFFERED, default=JSON_MIMETYPE) == CSV_MIMETYPE


def csv_export(
    keys: tuple[str, ...],
    item: Callable[[Any], dict[str, Any]],
    filename: str,
    line_sql: Callable[[Any], sa.ColumnElement[str]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Answer ``Accept: text/csv`` with the whole listing of a paginated view.

    ``keys`` and ``item`` are the JSON keys and the serializer of the view's
    rows (app/reads/serializers.py), with ``line_sql`` where PostgreSQL can
    write their CSV lines; ``filename`` may use the path's
    arguments (``"sync-{sync_id}-changes.csv"``).
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        whole = view.whole_listing  # set by @paginated (through @cached_read)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not wants_csv():
                response = current_app.make_response(view(*args, **kwargs))
                response.vary.add("Accept")
                return response
            listing = {k: v for k, v in kwargs.items() if k not in ("limit", "cursor")}

            def read() -> Any:
                query, key, parameters = whole(*args, **listing)
                return export_of(keys, item, query, key, parameters, line_sql)

            return csv_response(
                read,
                filename.format(**(request.view_args or {})),
                etag=lambda version: etag_of(version, args, listing, variant=CSV_MIMETYPE),
                headers={"Vary": "Accept"},
            )

        return wrapper

    return decorator
