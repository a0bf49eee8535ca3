"""How the console writes numbers, money and instants (always UTC, always labelled)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from app.instants import parse_instant


def money(value: Decimal | None) -> str:
    """An amount as people read it: 12,345.60 (an em dash for none)."""
    return "—" if value is None else f"{value:,.2f}"


def count(value: int | None) -> str:
    """A count with thousands separators."""
    return "—" if value is None else f"{value:,}"


def when(value: datetime | str | None) -> str:
    """An instant in UTC to the second: 2026-11-21 10:00:00 UTC (text is read as RFC 3339)."""
    if value is None:
        return "—"
    moment = parse_instant(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day(value: date | None) -> str:
    """A date as YYYY-MM-DD."""
    return "—" if value is None else value.isoformat()


def picker(value: datetime | None) -> str:
    """An instant as the as-of field holds it: RFC 3339 in UTC, 24-hour (2026-12-06T23:00:00Z).

    Not <input type="datetime-local">: browsers show that in the reader's
    locale (a 12-hour clock in the US) and without a zone, while every other
    time the console shows is UTC.
    """
    if value is None:
        return ""
    moment = value.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction}Z"


def age(span: timedelta) -> str:
    """A duration in the largest sensible unit: 3 days, 5 hours, 12 minutes."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            number = seconds // size
            return f"{number} {unit}{'s' * (number != 1)}"
    return "less than a minute"


def seconds(value: float) -> str:
    """A duration in seconds, to the millisecond."""
    return f"{value:,.3f} s"


def shown(value: Any) -> str:
    """A field value in a table: dates ISO, money with cents, none as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


HELPERS = {
    "money": money,
    "count": count,
    "when": when,
    "day": day,
    "picker": picker,
    "age": age,
    "seconds": seconds,
    "shown": shown,
}
