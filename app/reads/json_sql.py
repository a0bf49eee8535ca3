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
        parts.append(sa.literal(("{" if position == 0 else ",") + json.dumps(name) + ":"))
        parts.append(sa.func.coalesce(text, sa.literal("null")))
    parts.append(sa.literal("}"))
    return sa.func.concat(*parts)


def money(amount: sa.ColumnElement[Any]) -> JsonText:
    """An amount with exactly two decimals, as the Money type gives Python its values.

    Totals are an unconstrained numeric column: 0 is stored as 0, not 0.00.
    """
    return JsonText(sa.cast(sa.func.round(amount, 2), sa.Text))


def timestamp(moment: sa.ColumnElement[Any]) -> JsonText:
    """A timestamptz as datetime.isoformat() writes it, in the session's time zone, quoted."""
    return JsonText(
        sa.case((moment.is_(None), None), else_=sa.func.concat('"', timestamp_text(moment), '"'))
    )


def timestamp_text(moment: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """A timestamptz as datetime.isoformat() writes it (NULL stays NULL).

    to_json would drop the fraction's trailing zeros (.47024 for .470240).
    """
    whole_second = sa.cast(sa.extract("microseconds", moment), sa.Integer) % 1_000_000 == 0
    return sa.func.concat(
        sa.func.to_char(moment, 'YYYY-MM-DD"T"HH24:MI:SS'),
        sa.case((whole_second, ""), else_=sa.func.to_char(moment, ".US")),
        sa.func.to_char(moment, "TZH:TZM"),
    )
