"""JSON objects written by PostgreSQL, character for character as the API writes them.

A 100-row page costs about 1.4 ms of Python CPU to fetch as typed values,
turn into dictionaries and encode, and about 0.25 ms to fetch as text that
PostgreSQL wrote (measured in-process on the range query, 1M payments).
The text is what app.web.json writes for the same row: keys in order, compact
separators, numbers exact, dates and timestamps as Python's isoformat()
writes them (microseconds only when there are any). Strings differ only in
escaping, never in value: PostgreSQL leaves non-ASCII characters as UTF-8
where simplejson writes \\uXXXX.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class JsonText:
    """A value already written as JSON text (or NULL, written as null)."""

    expression: sa.ColumnElement[str]


Field = tuple[str, "sa.ColumnElement[Any] | JsonText"]


def json_object(fields: Sequence[Field]) -> sa.ColumnElement[str]:
    """The text of a JSON object holding ``fields`` (name, SQL value) in order.

    Values are written by to_json (numeric's text is exact and never uses an
    exponent, like simplejson's Decimal); pass timestamps through ``timestamp``.
    """
    parts: list[sa.ColumnElement[Any]] = []
    for position, (name, value) in enumerate(fields):
        text = (
            value.expression
            if isinstance(value, JsonText)
            else sa.cast(sa.func.to_json(value), sa.Text)
        )
        parts.append(constant(("{" if position == 0 else ",") + json.dumps(name) + ":"))
        parts.append(sa.func.coalesce(text, constant("null")))
    parts.append(constant("}"))
    return sa.func.concat(*parts)


def constant(value: str | int) -> sa.ColumnElement[Any]:
    """``value`` written into the statement's text, not sent as a bind parameter.

    A page's JSON expression has some thirty constants; as bind parameters
    SQLAlchemy and psycopg2 processed and quoted each of them on every
    execution, about 0.2 ms of CPU per page.
    """
    if isinstance(value, int):
        return sa.literal_column(str(int(value)), sa.Integer)
    return sa.literal_column("'" + value.replace("'", "''") + "'", sa.Text)


def money(amount: sa.ColumnElement[Any]) -> JsonText:
    """An amount with exactly two decimals, as the Money type gives Python its values.

    Totals are an unconstrained numeric column: 0 is stored as 0, not 0.00.
    """
    return JsonText(sa.cast(sa.func.round(amount, constant(2)), sa.Text))


def timestamp(moment: sa.ColumnElement[Any]) -> JsonText:
    """A timestamptz as datetime.isoformat() writes it, in the session's time zone, quoted."""
    return JsonText(
        sa.case(
            (moment.is_(None), None),
            else_=sa.func.concat(constant('"'), timestamp_text(moment), constant('"')),
        )
    )


def timestamp_text(moment: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """A timestamptz as datetime.isoformat() writes it (NULL stays NULL).

    to_json would drop the fraction's trailing zeros (.47024 for .470240).
    """
    microseconds = sa.cast(sa.extract("microseconds", moment), sa.Integer)
    whole_second = microseconds % constant(1_000_000) == constant(0)
    return sa.func.concat(
        sa.func.to_char(moment, constant('YYYY-MM-DD"T"HH24:MI:SS')),
        sa.case((whole_second, constant("")), else_=sa.func.to_char(moment, constant(".US"))),
        sa.func.to_char(moment, constant("TZH:TZM")),
    )
