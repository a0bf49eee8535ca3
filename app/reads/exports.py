"""A whole listing read in batches from one connection: what a CSV export streams.

The rows come through a server-side cursor (``stream_results``: a named
cursor on PostgreSQL; SQLite steps its cursor lazily anyway) BATCH_ROWS at a
time, so memory stays bounded whatever the listing's size, and the query runs
once: an ``as_of`` listing's aggregate is not computed again per batch, as
keyset batches would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.reads.csv_rows import csv_text
from app.reads.paging import SortKey
from app.reads.serializers import (
    PATIENT_KEYS,
    PAYMENT_KEYS,
    SYNC_CHANGE_KEYS,
    change_json,
    patient_csv_sql,
    patient_json,
    payment_csv_sql,
    payment_json,
)

# Rows fetched per round trip and written per chunk of the response (about 200 KB).
BATCH_ROWS = 2000


@dataclass(frozen=True)
class Export:
    """A listing to write whole: its ordered query, the JSON keys and the row serializer.

    ``line_sql`` (the row's CSV line written by PostgreSQL, app/reads/csv_sql.py)
    lets the database write each line where it can.
    """

    keys: tuple[str, ...]
    item: Callable[[Any], dict[str, Any]]
    query: sa.Select[Any]
    parameters: dict[str, Any] | None = None
    line_sql: Callable[[Any], sa.ColumnElement[str]] | None = None


def export_of(
    keys: tuple[str, ...],
    item: Callable[[Any], dict[str, Any]],
    query: sa.Select[Any],
    key: SortKey,
    parameters: dict[str, Any] | None = None,
    line_sql: Callable[[Any], sa.ColumnElement[str]] | None = None,
) -> Export:
    """The export of ``query`` in ``key``'s order (the order its pages use)."""
    return Export(keys, item, query.order_by(*key.order_by()), parameters, line_sql)


def patients_export(query: sa.Select[Any], key: SortKey) -> Export:
    """A patients listing, as GET /patients writes each patient."""
    return export_of(PATIENT_KEYS, patient_json, query, key, line_sql=patient_csv_sql)


def payments_export(query: sa.Select[Any], key: SortKey) -> Export:
    """A payments listing, as GET /payments writes each payment."""
    return export_of(PAYMENT_KEYS, payment_json, query, key, line_sql=payment_csv_sql)


def changes_export(
    query: sa.Select[Any], key: SortKey, parameters: dict[str, Any] | None = None
) -> Export:
    """A sync's changes, as GET /syncs/<syncId>/changes writes each change."""
    return export_of(SYNC_CHANGE_KEYS, change_json, query, key, parameters)


def csv_chunks(connection: sa.Connection, export: Export) -> Iterator[tuple[int, str]]:
    """The export's rows as CSV text, BATCH_ROWS at a time: (rows, text) per batch.

    Read through a server-side cursor. Where the database writes the lines
    (``line_sql`` on PostgreSQL), Python only joins them; elsewhere each row
    goes through its JSON serializer and app/reads/csv_rows.py.
    """
    by_database = export.line_sql is not None and dialect_of(connection).writes_json
    query = export.query
    if by_database:
        assert export.line_sql is not None
        query = query.with_only_columns(
            export.line_sql(query.selected_columns).label("line"), maintain_column_froms=True
        )
    # Options of this statement only: Connection.execution_options would stay on the connection.
    result = connection.execute(
        query,
        export.parameters or {},
        execution_options={"stream_results": True, "yield_per": BATCH_ROWS},
    )
    try:
        for rows in result.partitions():
            if by_database:
                yield len(rows), "".join([row.line + "\r\n" for row in rows])
            else:
                yield len(rows), csv_text(export.keys, [export.item(row) for row in rows])
    finally:
        result.close()
