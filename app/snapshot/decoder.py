"""Exact JSON decoding: numbers as Decimal (ints bounded), NaN and Infinity refused."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_MAX_INT_DIGITS = 1000


def parse_int(text: str) -> int | Decimal:
    """An integer, or a Decimal when it is too long for int() to take."""
    # int() refuses more than 4300 digits (CVE-2020-10735 guard), which would fail
    # the whole upload; such a number is invalid in any field, so reject it per record.
    return int(text) if len(text) <= _MAX_INT_DIGITS else Decimal(text)


def reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which Python's decoder would otherwise accept."""
    raise ValueError(f"{name} is not valid JSON")


DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=parse_int, parse_constant=reject_constant)


def decode(text: str) -> Any:
    """The JSON value of ``text``, or None if it is not one."""
    try:
        return DECODER.decode(text)
    except (ValueError, RecursionError):
        return None


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
