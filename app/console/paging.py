"""Keyset pages for the console, with the API's orderings, cursors and stable paging (SPEC §3).

The API's pagination decorator answers JSON with a Link header; the console
needs rows and a next cursor for its own links. Both use the same SortKey
(order, keyset condition, opaque cursor) and the same Pin: a listing whose
first page was served before a sync is read, page after page, as of the
instant that first page showed, so every row is visited exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from app import queries
from app.api.pagination import Pin, SortKey, cursor_pin
from app.console.errors import ConsoleError
from app.errors import APIError
from app.extensions import db


@dataclass(frozen=True)
class Page:
    """One page of rows, and the cursor of the next page (None on the last)."""

    rows: list[Any]
    next_cursor: str | None


def read_page(query: sa.Select[Any], key: SortKey, cursor: str | None, limit: int, *,
              pin: Pin | None = None, parameters: dict[str, Any] | None = None) -> Page:
    """The ``limit`` rows of ``query`` after ``cursor`` in ``key``'s order.

    Fetches one row more to learn whether a next page exists; its cursor
    carries ``pin`` when one is given.
    """
    if cursor is not None:
        query = query.where(key.after(position(key, cursor)))
    statement = query.order_by(*key.order_by()).limit(limit + 1)
    rows = db.session.connection().execute(statement, parameters or {}).all()
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, key.encode(rows[-1], pin))


def position(key: SortKey, cursor: str) -> list[Any]:
    """The keyset position a cursor points after; a 400 page if it is not a cursor of ``key``."""
    try:
        return key.decode(cursor)
    except APIError:
        raise ConsoleError.bad_input("That page link is not one of the console's; "
                                     "start again from the first page.") from None


@dataclass(frozen=True)
class Pinning:
    """How to read a page of a stable listing: as of ``as_of`` (None: live), carrying ``pin``."""

    as_of: datetime | None
    pin: Pin | None


def pinning(cursor: str | None, version: str | None) -> Pinning:
    """Read a later page live while the data is the first page's, else as of its pin.

    A first page is pinned to the current data ``version`` and the start of
    the last applied sync (the instant that names that data), as the API does.
    """
    pin = cursor_pin(cursor) if cursor is not None else None
    if pin is not None:
        return Pinning(None if pin.version == version else pin.at, pin)
    at = queries.last_applied_sync_start(db.session)
    return Pinning(None, Pin(version, at) if version is not None and at is not None else None)
