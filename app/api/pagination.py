"""The API's keyset pages as one decorator: opaque cursor in, Link: rel="next" out.

A view decorated with ``paginated`` returns ``(select, sort_key)``; the
decorator reads the page through app.reads.paging (ordered by the sort key,
``limit + 1`` rows to learn whether another page exists) and puts the
absolute URL of the next page in the Link header.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import Response, g, request

from app.db.dialect import dialect_of
from app.extensions import db
from app.reads.paging import Pin, SortKey, Window, first_page_pin, pinning, plain_value, read_page

_LAST_COLUMN = operator.itemgetter(-1)
# The rows a whole listing may have: more than any table holds (a BIGINT LIMIT).
WHOLE_LISTING = 2**62


def paginated(
    item: Callable[[Any], Any],
    item_sql: Callable[[Any], sa.ColumnElement[str]] | None = None,
    *,
    reused: bool = False,
) -> Callable[..., Any]:
    """Decorate a view returning ``(select, SortKey)``; it then takes ``limit`` and ``cursor``.

    A view whose select has bind parameters without values (a statement
    built once) returns their values third: ``(select, SortKey, parameters)``.
    With ``reused``, every select it returns with parameters is one such
    statement, asked for again and again: what the page adds to it (the
    rows' JSON, the keyset, the limit) is built once per statement too.

    ``item`` turns one result row into its JSON object. On PostgreSQL,
    ``item_sql`` (given the select's columns, the text of the same object
    as app.json_sql writes it) lets the database write the page instead:
    the hot listings' rows then never become Python values. A view that takes
    ``as_of`` gets stable paging: its cursors carry a Pin, and a later page
    whose data changed since the first is read as of the pinned instant. A
    view that takes ``window`` is given the page's Window, to push the keyset
    and the limit into a query the planner cannot push them into itself.

    ``wrapper.whole_listing`` runs the view for its whole listing instead
    (app/api/csv_export.py).
    """

    def decorator(view: Callable[..., tuple[sa.Select[Any], SortKey]]) -> Callable[..., Any]:
        wants_window = "window" in inspect.signature(view).parameters

        @functools.wraps(view)
        def wrapper(*args: Any, limit: int, cursor: str | None, **kwargs: Any) -> Any:
            pinnable = "as_of" in kwargs and kwargs["as_of"] is None
            read = pinning(cursor if pinnable else None, g.get("data_version"))
            read_as = kwargs if read.as_of is None else {**kwargs, "as_of": read.as_of}
            window = Window(cursor, limit + 1)
            if wants_window:
                read_as = {**read_as, "window": window}
            query, key, *parameters = view(*args, **read_as)
            bound = parameters[0] if parameters else None
            once = reused and bound is not None
            written_by_database = item_sql is not None and dialect_of(db.session).writes_json
            if written_by_database:
                assert item_sql is not None
                query = json_listing(query, key, item_sql, reused=once)
            page = read_page(
                query,
                key,
                window.after(key),
                limit,
                pin=lambda: read.pin or (_pin_now() if pinnable else None),
                parameters=bound,
                reused=once,
            )
            headers = {}
            if page.next_cursor is not None:
                url = next_page_url(
                    request.base_url, kwargs, limit, page.next_cursor, request.view_args or {}
                )
                headers["Link"] = next_link(url)
            if written_by_database:
                return Response(json_body(page.rows), mimetype="application/json"), 200, headers
            return [item(row) for row in page.rows], 200, headers

        def whole_listing(
            *args: Any, **kwargs: Any
        ) -> tuple[sa.Select[Any], SortKey, dict[str, Any] | None]:
            """The view's listing unpaged: its query, sort key and parameters (a CSV export)."""
            if wants_window:
                kwargs = {**kwargs, "window": Window(None, WHOLE_LISTING)}
            query, key, *parameters = view(*args, **kwargs)
            return query, key, parameters[0] if parameters else None

        # functools.wraps copies it onto the decorators above (cached_read).
        wrapper.whole_listing = whole_listing  # type: ignore[attr-defined]
        return wrapper

    return decorator


def json_listing(
    query: sa.Select[Any],
    key: SortKey,
    item_sql: Callable[[Any], sa.ColumnElement[str]],
    *,
    reused: bool,
) -> sa.Select[Any]:
    """``query`` selecting its sort key's columns and each row's JSON written by the database
    (``item_sql``), the JSON last; built once for a ``reused`` statement."""
    # Building the rows' JSON expression, and SQLAlchemy's cache key of it,
    # were half an uncached page's Python work: once per reused statement.
    return (_json_query_once if reused else _json_query)(query, key, item_sql)


def json_body(rows: list[Any]) -> str:
    """The JSON array of a page of json_listing's rows."""
    # The JSON is each row's last column; indexing a row is cheaper than
    # naming its attribute (3% of a page's Python time under gunicorn).
    return "[" + ",".join(map(_LAST_COLUMN, rows)) + "]"


def next_link(url: str) -> str:
    """The Link header of a page whose next page is at ``url``."""
    return f'<{url}>; rel="next"'


def _json_query(
    query: sa.Select[Any], key: SortKey, item_sql: Callable[[Any], sa.ColumnElement[str]]
) -> sa.Select[Any]:
    """``query`` selecting its sort key's columns and each row's JSON written by the database."""
    return query.with_only_columns(
        *(column.column.label(column.name) for column in key.columns),
        item_sql(query.selected_columns).label("json"),
        maintain_column_froms=True,
    )


# The same for reused statements, kept: each is asked for again and again.
_json_query_once = functools.lru_cache(maxsize=64)(_json_query)


def _pin_now() -> Pin | None:
    """The pin of a first page read from the live tables, if there is data to pin."""
    return first_page_pin(g.get("data_version"))


def next_page_url(
    base_url: str, arguments: dict[str, Any], limit: int, cursor: str, in_path: dict[str, Any]
) -> str:
    """The next page's URL, from the parsed arguments only (those ``in_path`` left out).

    Unknown parameters the client added are left out, so the page is a pure
    function of what the read cache keys on.
    """
    args = sorted(
        (name, plain_value(value) if isinstance(value, datetime) else str(value))
        for name, value in arguments.items()
        if value is not None and name not in in_path
    )
    return f"{base_url}?{urlencode([*args, ('limit', limit), ('cursor', cursor)])}"
