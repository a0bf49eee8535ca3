"""The console's query parameters, parsed; anything unusable is a 400 page naming the field."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import request

from app.console.errors import ConsoleError
from app.instants import InvalidInstant, parse_instant
from app.reads.orderings import PATIENT_SORTS
from app.sync.record_schemas import storable

# Far longer than any cursor the console emits; a longer one is not ours.
CURSOR_LENGTH = 512
# How the as-of field asks for an instant (its placeholder, and the 400 page's hint).
INSTANT_EXAMPLE = "2026-12-06T23:00:00Z"


def external_id(name: str = "id") -> str | None:
    """An externalId from the query string, exactly as typed (ids are never trimmed)."""
    value = request.args.get(name)
    if value is None or value == "":
        return None
    problem = storable(value)
    if problem:
        raise ConsoleError.bad_input(f"That patient id cannot exist: {problem}")
    return value


def instant(name: str = "as_of") -> datetime | None:
    """An instant, as RFC 3339 with an offset (2026-12-06T23:00:00Z), or None when empty.

    Read by the service's one strict reader (app/instants.py), as the API
    reads ``as_of``: a value it refuses is a 400 page saying why.
    """
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return parse_instant(value)
    except InvalidInstant as error:
        raise ConsoleError.bad_input(
            f"'{value[:64]}' is not a date and time the console can read ({error}). "
            f"Write it in UTC, 24-hour, as {INSTANT_EXAMPLE}."
        ) from None


def bound(name: str) -> Decimal | None:
    """A bound on a payments total: any finite decimal number, or None when empty."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or len(value) > 64:
        raise ConsoleError.bad_input(
            f"The {_LABELS[name]} must be a number such as 25 or 12.50, not '{value[:64]}'."
        )
    return number


def bounds() -> tuple[Decimal | None, Decimal | None]:
    """payment_min and payment_max; the minimum may not exceed the maximum."""
    low, high = bound("payment_min"), bound("payment_max")
    if low is not None and high is not None and low > high:
        raise ConsoleError.bad_input("The minimum total is greater than the maximum.")
    return low, high


def sort() -> str:
    """One of the API's patient orderings (SPEC §3), id by default."""
    value = request.args.get("sort", "id")
    if value not in PATIENT_SORTS:
        raise ConsoleError.bad_input(f"Unknown order '{value[:32]}'.")
    return value


def cursor(name: str = "cursor") -> str | None:
    """An opaque page cursor from one of the console's own links."""
    value = request.args.get(name) or None
    if value is not None and len(value) > CURSOR_LENGTH:
        raise ConsoleError.bad_input("That page link is not one of the console's.")
    return value


_LABELS = {"payment_min": "minimum total", "payment_max": "maximum total"}
