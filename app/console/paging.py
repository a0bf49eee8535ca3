"""The console's side of the API's keyset pages (app/api/pagination.py, SPEC §3).

Pages are read by pagination.read_page with the API's orderings, cursors
and pins, so a listing whose first page was served before a sync is read,
page after page, as of the instant that first page showed. Here: a cursor
that is not ours becomes a 400 page, and a first page's pin.
"""

from __future__ import annotations

from typing import Any

from app import queries
from app.api.pagination import Pin, Pinning, SortKey, pinning
from app.console.errors import ConsoleError
from app.errors import APIError
from app.extensions import db


def position(key: SortKey, cursor: str | None) -> list[Any] | None:
    """The keyset position a cursor points after (None on a first page).

    A 400 page if it is not a cursor of ``key``.
    """
    if cursor is None:
        return None
    try:
        return key.decode(cursor)
    except APIError:
        raise ConsoleError.bad_input(
            "That page link is not one of the console's; start again from the first page."
        ) from None


def first_page_pinning(cursor: str | None, version: str | None) -> Pinning:
    """As pagination.pinning, with the pin of a first page made up front, as the API does
    when it has a next page: the current data ``version`` and the instant that names
    that data (queries.pin_instant)."""
    read = pinning(cursor, version)
    if cursor is not None or version is None:
        return read
    at = queries.pin_instant(db.session)
    return Pinning(None, None if at is None else Pin(version, at))
