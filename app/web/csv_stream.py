"""A CSV export as a streamed response, read in one snapshot (SPEC §3 "CSV"); both faces use it.

The view's checks and the listing's query run first, in a snapshot that the
response's generator then reads the rows from, batch by batch: the file is
one consistent state of the data, however long it takes to send, and memory
stays bounded (app/reads/exports.py). The request's session is closed by the
time the body is sent, so the export holds its own connection
(app/db/engine.py snapshot_connection) until the last row is sent or the
client goes away. Each batch spends the client's read budget
(app/web/rate_limits.py ExportMeter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import sqlalchemy as sa
from flask import Response, request
from sqlalchemy import orm

from app.db.engine import snapshot_connection
from app.extensions import db
from app.reads import live
from app.reads.csv_rows import header_line
from app.reads.exports import Export, csv_chunks
from app.web.rate_limits import ExportMeter, export_meter

CSV_MIMETYPE = "text/csv"
CACHE_CONTROL = "private, no-cache"


def csv_response(
    read: Callable[[], Export],
    filename: str,
    etag: Callable[[str | None], str | None] = lambda version: None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Stream the export ``read`` returns, read in one snapshot, as ``filename``.

    ``read`` runs inside the snapshot with ``db.session`` on its connection,
    so its checks (a horizon, a sync's entity) see the data the rows come
    from; what it raises is answered as usual, before any byte is sent.
    ``etag`` names the snapshot's data version for this export (None: no
    ETag); a matching If-None-Match gets 304 without reading a row.
    """
    # The request's session may have read already (the console's sign-in check):
    # give its connection back, so the export holds one connection, not two.
    db.session.close()
    stack = ExitStack()
    try:
        connection = stack.enter_context(snapshot_connection(db.engine))
        # Joins the snapshot's transaction and never ends it (nor opens a savepoint).
        session = orm.Session(bind=connection, join_transaction_mode="rollback_only")
        stack.callback(session.close)
        tag = etag(live.data_version(session))
        if tag is not None and request.if_none_match.contains_weak(tag):
            stack.close()
            return Response(
                status=304, headers={"ETag": f'"{tag}"', "Cache-Control": CACHE_CONTROL}
            )
        with _scoped_session(session):
            export = read()
        meter = export_meter()
    except BaseException:
        stack.close()
        raise
    response = Response(
        _body(connection, export, meter, stack),
        mimetype=CSV_MIMETYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": CACHE_CONTROL,
            **({"ETag": f'"{tag}"'} if tag is not None else {}),
            **(headers or {}),
        },
    )
    # A body never iterated (HEAD, a client gone before the first byte) still
    # gives its connection back.
    response.call_on_close(stack.close)
    return response


def _body(
    connection: sa.Connection, export: Export, meter: ExportMeter, stack: ExitStack
) -> Iterator[bytes]:
    """The header row, then the rows, a batch per chunk; the snapshot ends with the body."""
    try:
        yield header_line(export.keys).encode()
        for rows, text in csv_chunks(connection, export):
            meter.count(rows)
            yield text.encode()
    finally:
        stack.close()


@contextlib.contextmanager
def _scoped_session(session: orm.Session) -> Iterator[None]:
    """Make ``db.session`` be ``session`` for the block (the view's queries read the snapshot)."""
    registry = db.session.registry
    previous = registry() if registry.has() else None
    registry.set(session)
    try:
        yield
    finally:
        if previous is None:
            registry.clear()
        else:
            registry.set(previous)
