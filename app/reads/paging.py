"""Keyset pages of any read, for both faces: sort keys, opaque cursors, pins, read_page.

A cursor names a position in a sort key whose last column is unique, so a
page after it costs what the first page costs (no OFFSET, no count). A
cursor of a stable listing also carries a Pin: the data version its first
page showed and the instant that names that data, so later pages read as
of that instant once the data has changed (SPEC §3). A cursor that is not
ours, or whose pin the history no longer reaches, is a CursorError: each
face turns it into its own answer (the API's 422, the console's 400 page).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from app.db.types import TOTAL_LIMIT
from app.extensions import db
from app.instants import parse_instant
from app.reads import live
from app.reads.as_of import pruned_horizon


@dataclass(frozen=True)
class KeyColumn:
    """One column of a sort key: the row key it is read from and its direction."""

    name: str
    column: sa.ColumnElement[Any]
    kind: type = int
    descending: bool = False


@dataclass(frozen=True)
class SortKey:
    """An ordering whose last column is unique, so the cursor names one position."""

    name: str
    columns: tuple[KeyColumn, ...]

    def order_by(self, over: Any = None) -> list[sa.ColumnElement[Any]]:
        """ORDER BY clauses for this key; of the same-named columns of ``over`` (a
        subquery's ``.c``, say) instead of the key's own, if given."""
        ordered = []
        for key in self.columns:
            column = key.column if over is None else over[key.name]
            ordered.append(column.desc() if key.descending else column.asc())
        return ordered

    def after(self, values: list[Any]) -> sa.ColumnElement[bool]:
        """Rows strictly after ``values`` in this order.

        Written as ``a >= x AND (a > x OR rest)`` rather than a plain OR, so the
        leading bound is an index range condition.
        """
        condition: sa.ColumnElement[bool] | None = None
        for key, value in reversed(list(zip(self.columns, values, strict=True))):
            strictly = key.column < value if key.descending else key.column > value
            if condition is None:
                condition = strictly
            else:
                bound = key.column <= value if key.descending else key.column >= value
                condition = sa.and_(bound, sa.or_(strictly, condition))
        assert condition is not None
        return condition

    def encode(self, row: Any, pin: Pin | None = None) -> str:
        """The opaque cursor pointing just after ``row`` (in the data ``pin`` names)."""
        values = [plain_value(getattr(row, key.name)) for key in self.columns]
        if pin is not None:
            values.append({"v": pin.version, "at": pin.at.isoformat()})
        raw = json.dumps([self.name, *values], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, cursor: str) -> list[Any]:
        """The position a cursor points after; 422 invalid_parameter if it is not ours."""
        try:
            name, *values = _parts(cursor)
            if len(values) == len(self.columns) + 1 and isinstance(values[-1], dict):
                values = values[:-1]  # the pin: see cursor_pin
            if name != self.name or len(values) != len(self.columns):
                raise ValueError("cursor belongs to another ordering")
            return [
                _typed(key.kind, value) for key, value in zip(self.columns, values, strict=True)
            ]
        except (ValueError, TypeError, RecursionError, binascii.Error, InvalidOperation):
            raise _malformed_cursor() from None


@dataclass(frozen=True)
class Pin:
    """What a listing's first page showed: the data version then, and the instant it names.

    Paging is stable (SPEC §3): while the version holds, later pages read the
    live tables; once a sync has committed, they read as of ``at``, the start
    of the last sync the first page saw, so every row of the listing as it
    stood is visited exactly once.
    """

    version: str
    at: datetime


def cursor_pin(cursor: str) -> Pin | None:
    """The pin a cursor carries, or None if it carries none.

    422 invalid_parameter if it carries one that is not ours (another shape,
    an instant outside the calendar); any other flaw is refused by decode.
    """
    try:
        pin = _parts(cursor)[-1]
    except (ValueError, TypeError, RecursionError, binascii.Error, IndexError):
        return None
    if not isinstance(pin, dict):
        return None
    try:
        if set(pin) != {"v", "at"} or not isinstance(pin["v"], str):
            raise ValueError("not a pin")
        return Pin(pin["v"], _typed(datetime, pin["at"]))
    except ValueError:
        raise _malformed_cursor() from None


class CursorError(ValueError):
    """A cursor the reads cannot follow: not one of ours (``code`` invalid_parameter)."""

    code = "invalid_parameter"

    def __init__(self, message: str, details: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class CursorExpired(CursorError):
    """A cursor whose pin lies before the history horizon: its page can no longer be read."""

    code = "cursor_expired"


def _malformed_cursor() -> CursorError:
    return CursorError("Malformed cursor; use the Link header of the previous page.")


def _parts(cursor: str) -> list[Any]:
    parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    if not isinstance(parts, list) or not parts:
        raise ValueError("not a cursor")
    return parts


_MAX_ID = 2**63


def plain_value(value: Any) -> Any:
    """A key value as JSON can hold it: Decimals and datetimes as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _typed(kind: type, value: Any) -> Any:
    """A cursor value of the expected type, within what the columns can hold.

    Totals are checked only for being whole cents within TOTAL_LIMIT: every
    total the service can emit passes, whatever its size (SPEC §3).
    """
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= _MAX_ID:
            raise ValueError("expected a 64-bit integer")
        return value
    if kind is datetime:
        return parse_instant(value)
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("expected a decimal string")
    number = Decimal(value)
    if (
        not number.is_finite()
        or number.copy_abs() >= TOTAL_LIMIT
        or number.as_tuple().exponent != -2
    ):
        raise ValueError("expected a total in whole cents")
    return number


@dataclass
class Window:
    """The rows a page reads: ``rows`` of them, after ``cursor`` (None on the first page).

    The cursor is decoded once, by whoever asks first (the view pushing the
    keyset into its query, or read_page), and kept.
    """

    cursor: str | None
    rows: int
    _position: list[Any] | None = field(default=None, init=False, repr=False)

    def after(self, key: SortKey) -> list[Any] | None:
        """The position the cursor points after in ``key``'s order (None on the first page)."""
        if self.cursor is not None and self._position is None:
            self._position = key.decode(self.cursor)
        return self._position


@dataclass(frozen=True)
class Page:
    """One page of rows, and the cursor of the next page (None on the last)."""

    rows: list[Any]
    next_cursor: str | None


def read_page(
    query: sa.Select[Any],
    key: SortKey,
    after: list[Any] | None,
    limit: int,
    *,
    pin: Callable[[], Pin | None] = lambda: None,
    parameters: dict[str, Any] | None = None,
    reused: bool = False,
    connection: sa.Connection | None = None,
) -> Page:
    """The ``limit`` rows of ``query`` after the position ``after`` in ``key``'s order.

    Fetches one row more to learn whether a next page exists; only then is
    ``pin`` asked for the pin the next cursor carries. The API's pages and
    the console's alike. ``parameters`` are the values of the query's bind
    parameters. A ``reused`` query is one statement built once and asked
    for again (live.within_bounds): its page statement is built once too,
    with the keyset and the limit as bind parameters of their own. It runs on
    ``connection``, else on the request's session.
    """
    connection = connection or db.session.connection()
    if not reused:
        if after is not None:
            query = query.where(key.after(after))
        # Core execution: these are column selects, the ORM layer adds only cost.
        statement = query.order_by(*key.order_by()).limit(limit + 1)
        rows = connection.execute(statement, parameters or {}).all()
    else:
        statement = _page_statement(query, key, after is not None)
        bound = {**(parameters or {}), _PAGE_ROWS: limit + 1}
        if after is not None:
            bound.update(zip(_AFTER_NAMES, after, strict=False))
        rows = connection.execute(statement, bound).all()
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, key.encode(rows[-1], pin()))


@dataclass(frozen=True)
class JsonPage:
    """A page whose JSON array the database wrote whole, the next page's cursor (None on
    the last), and the data version it was read in (None without a data_version row)."""

    body: str
    next_cursor: str | None
    version: str | None


def read_json_page(
    query: sa.Select[Any],
    key: SortKey,
    limit: int,
    *,
    pin: Callable[[str | None], Pin | None],
    parameters: dict[str, Any],
    connection: sa.Connection,
) -> JsonPage:
    """The first page of a reused listing whose rows' JSON is its last column
    (api.pagination.json_listing), in one statement that also reads the data version
    (PostgreSQL only, as the rows' JSON is).

    One statement is one snapshot, so the page is the state its version names
    without a second look at the version; and PostgreSQL joins the rows into
    one array and keeps the keyset of the last, so one row comes back instead
    of a page of them. ``pin`` is asked, given the version, for the pin of the
    next page's cursor, only if there is a next page.
    """
    bound = {**parameters, _PAGE_ROWS: limit + 1, _PAGE_LIMIT: limit}
    row = connection.execute(_json_page_statement(query, key), bound).one()
    body = f"[{row.page_json or ''}]"
    if row.page_rows_read <= limit:
        return JsonPage(body, None, row.page_version)
    return JsonPage(body, key.encode(row, pin(row.page_version)), row.page_version)


@functools.lru_cache(maxsize=64)
def _json_page_statement(query: sa.Select[Any], key: SortKey) -> sa.Select[Any]:
    """The first page of ``query`` (_page_statement) as one row: the data version, the
    rows' JSON joined in order, how many rows were read (one more than a full page has),
    and the sort key's values in the page's last row (bind parameter page_limit)."""
    page = _page_statement(query, key, False).subquery("page")
    row_number = sa.func.row_number().over(order_by=key.order_by(page.c))
    numbered = sa.select(page, row_number.label("n")).subquery("numbered")
    position = numbered.c.n
    last = sa.bindparam(_PAGE_LIMIT, type_=sa.BigInteger())
    row_json = numbered.c[list(page.c)[-1].name]  # the listing's last column
    joined = sa.func.string_agg(row_json, aggregate_order_by(sa.literal_column("','"), position))
    return sa.select(
        live.DATA_VERSION.scalar_subquery().label("page_version"),
        joined.filter(position <= last).label("page_json"),
        sa.func.count().label("page_rows_read"),
        *(
            sa.func.max(numbered.c[column.name]).filter(position == last).label(column.name)
            for column in key.columns
        ),
    )


_PAGE_ROWS = "page_rows"
_PAGE_LIMIT = "page_limit"
# The bind parameters of a keyset's values, in the sort key's order (a key has a few columns).
_AFTER_NAMES = tuple(f"page_after_{index}" for index in range(8))


@functools.lru_cache(maxsize=64)
def _page_statement(query: sa.Select[Any], key: SortKey, after: bool) -> sa.Select[Any]:
    """``query`` ordered by ``key``, after a keyset if ``after``, limited: bind parameters
    page_after_<n> and page_rows. One per reused statement (live.within_bounds, say), so
    SQLAlchemy reuses its compiled form without deriving its cache key again."""
    if after:
        keyset = [
            sa.bindparam(name, type_=column.column.type)
            for name, column in zip(_AFTER_NAMES, key.columns, strict=False)
        ]
        query = query.where(key.after(keyset))
    return query.order_by(*key.order_by()).limit(sa.bindparam(_PAGE_ROWS, type_=sa.BigInteger()))


@dataclass(frozen=True)
class Pinning:
    """How to read a page of a stable listing: as of ``as_of`` (None: live).

    ``pin`` is the pin its cursor carries, for the next cursor to carry on.
    """

    as_of: datetime | None
    pin: Pin | None


def pinning(cursor: str | None, version: str | None) -> Pinning:
    """Read a later page live while the data is still at ``version``, else as of its pin.

    CursorExpired when the data changed and the pin lies before the history
    horizon: the versions that page would be read from are pruned.
    """
    pin = cursor_pin(cursor) if cursor is not None else None
    if pin is None or pin.version == version:
        return Pinning(None, pin)
    horizon = pruned_horizon(db.session, pin.at)
    if horizon is not None:
        raise CursorExpired(
            f"This listing changed and its history before {horizon.isoformat()} "
            "was pruned since its first page; start again from the first page.",
            {"horizon": horizon.isoformat()},
        )
    return Pinning(pin.at, pin)


class DataMoved(Exception):
    """The data is no longer in the state a page was read in: read the page again."""


def pin_instant_of(version: str, reader: live.Reader | None = None) -> datetime | None:
    """The instant that names the data ``version`` names (live.pin_instant), read now on
    ``reader`` (else the request's session) the first time a version is asked for.

    A pure function of the version (syncs and prunes change it), so every
    first page of a version after the first one pins without a round trip.
    DataMoved if a commit has replaced ``version`` before the instant was
    read: that instant names another state, and is neither kept nor given.
    """
    with _PIN_INSTANTS_LOCK:
        if version in _PIN_INSTANTS:
            return _PIN_INSTANTS[version]
    at, read_in = live.pin_instant(reader or db.session)
    if read_in != version:
        raise DataMoved(version)
    with _PIN_INSTANTS_LOCK:
        _PIN_INSTANTS[version] = at
        while len(_PIN_INSTANTS) > _PIN_INSTANTS_KEPT:
            _PIN_INSTANTS.popitem(last=False)
    return at


# The newest versions' pin instants (a few: a version is current until the next sync).
_PIN_INSTANTS: OrderedDict[str, datetime | None] = OrderedDict()
_PIN_INSTANTS_KEPT = 16
_PIN_INSTANTS_LOCK = threading.Lock()


def first_page_pin(version: str | None, reader: live.Reader | None = None) -> Pin | None:
    """The pin of a first page read live in the data ``version`` names (None: nothing to pin).

    The API's pages and the console's alike; known without a round trip once
    one first page of the version has pinned (else read on ``reader``, and
    DataMoved if the data has left that version since).
    """
    at = None if version is None else pin_instant_of(version, reader)
    return None if version is None or at is None else Pin(version, at)
