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

from app.reads.paging import SortKey
from app.reads.serializers import (
    PATIENT_KEYS,
    PAYMENT_KEYS,
    SYNC_CHANGE_KEYS,
    change_json,
    patient_json,
    payment_json,
)

# Rows fetched per round trip and written per chunk of the response (about 200 KB).
BATCH_ROWS = 2000


@dataclass(frozen=True)
class Export:
    """A listing to write whole: its ordered query, the JSON keys and the row serializer."""

    keys: tuple[str, ...]
    item: Callable[[Any], dict[str, Any]]
    query: sa.Select[Any]
    parameters: dict[str, Any] | None = None


def export_of(
    keys: tuple[str, ...],
    item: Callable[[Any], dict[str, Any]],
    query: sa.Select[Any],
    key: SortKey,
    parameters: dict[str, Any] | None = None,
) -> Export:
    """The export of ``query`` in ``key``'s order (the order its pages use)."""
    return Export(keys, item, query.order_by(*key.order_by()), parameters)


def patients_export(query: sa.Select[Any], key: SortKey) -> Export:
    """A patients listing, as GET /patients writes each patient."""
    return export_of(PATIENT_KEYS, patient_json, query, key)


def payments_export(query: sa.Select[Any], key: SortKey) -> Export:
    """A payments listing, as GET /payments writes each payment."""
    return export_of(PAYMENT_KEYS, payment_json, query, key)


def changes_export(
    query: sa.Select[Any], key: SortKey, parameters: dict[str, Any] | None = None
) -> Export:
    """A sync's changes, as GET /syncs/<syncId>/changes writes each change."""
    return export_of(SYNC_CHANGE_KEYS, change_json, query, key, parameters)


def batches(connection: sa.Connection, export: Export) -> Iterator[list[dict[str, Any]]]:
    """The export's JSON objects, BATCH_ROWS at a time, read through a server-side cursor."""
    # Options of this statement only: Connection.execution_options would stay on the connection.
    result = connection.execute(
        export.query,
        export.parameters or {},
        execution_options={"stream_results": True, "yield_per": BATCH_ROWS},
    )
    item = export.item
    try:
        for rows in result.partitions():
            yield [item(row) for row in rows]
    finally:
        result.close()
