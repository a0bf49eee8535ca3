"""Timelines a page at a time: a bounded window of versions, with "older" and "newer" links.

A record can have thousands of versions (one per sync that changed it), so
a timeline is read like any other console listing (SPEC §7): by keyset, with
the API's read_page, newest first. "Older" goes on from the last version
shown; "newer" reads back from the first one in the opposite order. Each
part of a timeline (kept versions, the current row) is cut to the window
before the parts are joined, so a page costs index ranges of about a page,
however long the history, on both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import request, url_for

from app.console.paging import position
from app.reads.paging import KeyColumn, Page, SortKey, read_page

# The key of a timeline, over the columns of any of its parts (or of its window).
KeyOf = Callable[[Any], SortKey]


def newest_first(columns: Any) -> SortKey:
    """One record's versions, newest first: no two of them began at the same instant."""
    return SortKey(
        "-validFrom", (KeyColumn("valid_from", columns.valid_from, datetime, descending=True),)
    )


def newest_first_by_record(columns: Any) -> SortKey:
    """Several records' versions, newest first; ``record_id`` orders those of one sync."""
    return SortKey(
        "-validFrom-record",
        (
            KeyColumn("valid_from", columns.valid_from, datetime, descending=True),
            KeyColumn("record_id", columns.record_id, descending=True),
        ),
    )


def _reversed(key_of: KeyOf) -> KeyOf:
    """The same key read the other way (oldest first), under a name of its own."""

    def key(columns: Any) -> SortKey:
        forward = key_of(columns)
        return SortKey(
            f"~{forward.name}",
            tuple(KeyColumn(c.name, c.column, c.kind, not c.descending) for c in forward.columns),
        )

    return key


@dataclass(frozen=True)
class VersionsPage:
    """A window of a timeline, newest first, and the cursors of its neighbours (None: none)."""

    rows: list[Any]
    older: str | None
    newer: str | None
    first: bool


def read_versions(
    parts: Sequence[sa.Select[Any]],
    with_neighbours: Callable[[sa.Subquery], sa.Select[Any]],
    key_of: KeyOf,
    older: str | None,
    newer: str | None,
    limit: int,
) -> VersionsPage:
    """The ``limit`` versions after cursor ``older`` (or before cursor ``newer``; else the newest).

    ``parts`` are the selects whose union is the timeline; ``with_neighbours``
    adds to a window of it what each version needs from outside the window
    (the version it replaced, say): one statement in all.
    """
    if newer is not None and older is None:
        after = position(_reversed(key_of)(parts[0].selected_columns), newer)
        window, page = _read(parts, with_neighbours, _reversed(key_of), after, limit)
        if page.next_cursor is not None:
            rows = page.rows[::-1]
            return VersionsPage(
                rows,
                key_of(window.c).encode(rows[-1]),
                _reversed(key_of)(window.c).encode(rows[0]),
                first=False,
            )
        # Back at the newest versions: the newest page, whole, as a first visit shows it.
        older = None
    after = position(key_of(parts[0].selected_columns), older)
    window, page = _read(parts, with_neighbours, key_of, after, limit)
    rows = page.rows
    newer_cursor = (
        _reversed(key_of)(window.c).encode(rows[0]) if after is not None and rows else None
    )
    return VersionsPage(rows, page.next_cursor, newer_cursor, first=after is None)


def _read(
    parts: Sequence[sa.Select[Any]],
    with_neighbours: Callable[[sa.Subquery], sa.Select[Any]],
    key_of: KeyOf,
    after: list[Any] | None,
    limit: int,
) -> tuple[sa.Subquery, Page]:
    """One page of the timeline in ``key_of``'s order, and the window it was read from."""
    window, query = windowed(parts, with_neighbours, key_of, after, limit)
    return window, read_page(query, key_of(window.c), after, limit)


def windowed(
    parts: Sequence[sa.Select[Any]],
    with_neighbours: Callable[[sa.Subquery], sa.Select[Any]],
    key_of: KeyOf,
    after: list[Any] | None,
    limit: int,
) -> tuple[sa.Subquery, sa.Select[Any]]:
    """The window of the timeline a page reads (its parts cut to the page), and the select
    over it with each version's neighbours, for read_page to order and limit."""
    window = sa.union_all(*(_window(part, key_of, after, limit) for part in parts)).subquery(
        "window"
    )
    return window, with_neighbours(window)


def _window(
    part: sa.Select[Any], key_of: KeyOf, after: list[Any] | None, limit: int
) -> sa.Select[Any]:
    """At most a page and one more of ``part``, after ``after`` in the key's order.

    Applied to each part, not to their union: the planners would not push
    a keyset and a limit into the parts of a UNION ALL themselves.
    """
    key = key_of(part.selected_columns)
    if after is not None:
        part = part.where(key.after(after))
    return part.order_by(*key.order_by()).limit(limit + 1).subquery().select()


@dataclass(frozen=True)
class Links:
    """Where a timeline's pager goes: older, newer, and back to the newest (None: no link)."""

    older: str | None
    newer: str | None
    newest: str | None


def links(page: VersionsPage, older_name: str, newer_name: str) -> Links:
    """The current page's address with this timeline's cursor replaced; others kept as they are."""

    def to(name: str | None, cursor: str | None) -> str:
        kept = {
            key: value for key, value in request.args.items() if key not in (older_name, newer_name)
        }
        if name is not None and cursor is not None:
            kept[name] = cursor
        return url_for(request.endpoint or "console.show_patient", **kept)

    return Links(
        None if page.older is None else to(older_name, page.older),
        None if page.newer is None else to(newer_name, page.newer),
        None if page.first else to(None, None),
    )
