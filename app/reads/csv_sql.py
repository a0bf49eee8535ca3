"""CSV lines written by PostgreSQL, byte for byte as app/reads/csv_rows.py writes them.

The hot exports (GET /patients and GET /payments as CSV) are mostly
formatting: in Python, parsing each row's values and writing them cost about
11 µs a row (measured, 1M payments), under the 100k rows/s an export should
reach; the database writes the same line in a few µs and Python only joins
them. Each cell is what the csv module writes for the JSON value
(QUOTE_MINIMAL: quoted when it holds a comma, a quote, CR or LF, quotes
doubled; null empty); amounts and timestamps are json_sql's text.
``tests/reads/test_csv_sql.py`` holds the two writers equal on hostile values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.reads.json_sql import timestamp_text

Cell = sa.ColumnElement[Any]


def csv_line(cells: Sequence[Cell]) -> sa.ColumnElement[str]:
    """One CSV line (without its CRLF) of ``cells``, each already its text (NULL: empty)."""
    return sa.func.concat_ws(",", *(sa.func.coalesce(cell, "") for cell in cells))


def quoted(text: sa.ColumnElement[Any]) -> Cell:
    """A text value as the csv module writes it: quoted only when it must be."""
    return sa.case(
        (
            text.regexp_match('[",\r\n]'),
            sa.func.concat('"', sa.func.replace(text, '"', '""'), '"'),
        ),
        else_=text,
    )


def number(value: sa.ColumnElement[Any]) -> Cell:
    """An integer as its text."""
    return sa.cast(value, sa.Text)


def day(value: sa.ColumnElement[Any]) -> Cell:
    """A date as isoformat writes it, whatever the session's DateStyle."""
    return sa.func.to_char(value, "YYYY-MM-DD")


def money_text(amount: sa.ColumnElement[Any]) -> Cell:
    """An amount with exactly two decimals (as json_sql.money)."""
    return sa.cast(sa.func.round(amount, 2), sa.Text)


def timestamp(moment: sa.ColumnElement[Any]) -> Cell:
    """A timestamptz as the JSON writes it, unquoted (it needs no quotes)."""
    return timestamp_text(moment)
