"""The console's side of the keyset pages the API reads too (app/reads/paging.py, SPEC §3).

Pages are read by paging.read_page with the same orderings, cursors
and pins as the API's, so a listing whose first page was served before a sync is read,
page after page, as of the instant that first page showed. Here: a cursor
that is not ours becomes a 400 page, and a first page's pin.
"""

from __future__ import annotations

from typing import Any

from app.console.errors import ConsoleError
from app.reads.paging import CursorError, Pinning, SortKey, first_page_pin, pinning


def position(key: SortKey, cursor: str | None) -> list[Any] | None:
    """The keyset position a cursor points after (None on a first page).

    A 400 page if it is not a cursor of ``key``.
    """
    if cursor is None:
        return None
    try:
        return key.decode(cursor)
    except CursorError:
        raise ConsoleError.bad_input(
            "That page link is not one of the console's; start again from the first page."
        ) from None


def first_page_pinning(cursor: str | None, version: str | None) -> Pinning:
    """As paging.pinning, with the pin of a first page made up front, as the API does
    when it has a next page: the current data ``version`` and the instant that names
    that data (paging.first_page_pin)."""
    read = pinning(cursor, version)
    return read if cursor is not None else Pinning(None, first_page_pin(version))
