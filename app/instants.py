"""One strict reader of instants for every face: ``as_of``, cursor pins, the console, the CLI.

An instant is an RFC 3339 ``date-time``: ``YYYY-MM-DDTHH:MM:SS[.fraction]``
and an offset (``Z`` or ``±HH:MM``), nothing before or after it, ASCII
digits only, a fraction only on the seconds, and a UTC value within years
1-9999 (SPEC §5). Python's ``fromisoformat`` is far more lenient (``23.5``
as a fraction of the hour, no seconds, no offset), and a lenient reader
misreads what a client meant instead of saying so.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

_DATE = r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
_OFFSET = r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<off_hour>[0-9]{2}):(?P<off_minute>[0-9]{2}))"
_DATE_TIME = re.compile(
    _DATE + r"[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,32}))?" + _OFFSET
)
# A date alone (midnight), with or without an offset: only where a date is welcome (the CLI).
_DATE_ONLY = re.compile(_DATE + f"(?:{_OFFSET})?")

FORMAT_HINT = "an RFC 3339 timestamp with an offset, e.g. 2026-11-21T10:00:00.5+01:00"


class InvalidInstant(ValueError):
    """The text is not an instant this service reads; the message says why."""


def parse_instant(text: str, *, allow_date: bool = False) -> datetime:
    """The aware UTC datetime ``text`` names; InvalidInstant if it is not a strict RFC 3339 instant.

    With ``allow_date``, a date alone (``2026-12-06``, or ``2026-12-06+01:00``)
    names its midnight, in UTC unless it carries an offset. A fraction finer
    than a microsecond is cut to the microsecond (the database's resolution).
    """
    if not isinstance(text, str):
        raise InvalidInstant(f"expected {FORMAT_HINT}")
    match = _DATE_TIME.fullmatch(text)
    if match is None and allow_date:
        match = _DATE_ONLY.fullmatch(text)
    if match is None:
        raise InvalidInstant(
            f"not {FORMAT_HINT}" + (" (or a date, YYYY-MM-DD)" if allow_date else "")
        )
    parts = match.groupdict()
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        clock = time.min
        if parts.get("hour") is not None:
            fraction = (parts["fraction"] or "").ljust(6, "0")[:6]
            clock = time(
                int(parts["hour"]), int(parts["minute"]), int(parts["second"]), int(fraction)
            )
        offset = _offset(parts)
    except ValueError as error:
        raise InvalidInstant(f"not a real date and time: {error}") from None
    try:
        # By hand: astimezone would raise OverflowError past the calendar's ends.
        utc = datetime.combine(day, clock) - offset.utcoffset(None)
    except OverflowError:
        raise InvalidInstant("outside years 1-9999 once in UTC") from None
    return utc.replace(tzinfo=UTC)


def _offset(parts: dict[str, str | None]) -> timezone:
    """The offset the match names (UTC when it names none)."""
    if parts["offset"] in (None, "Z", "z"):
        return UTC
    hours, minutes = int(parts["off_hour"] or 0), int(parts["off_minute"] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    span = timedelta(hours=hours, minutes=minutes)
    return timezone(-span if parts["sign"] == "-" else span)
