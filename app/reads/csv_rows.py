"""Rows of a listing as CSV text (SPEC §3 "CSV"): the JSON objects of a listing, one per line.

The cells are the values of the JSON object the read API writes for the
same row (app/reads/serializers.py), in its key order, so the CSV and the
JSON answer cannot drift: a header row of the keys, RFC 4180 quoting (the
``csv`` module, CRLF line ends), null as an empty cell, amounts with exactly
two decimals, timestamps as the JSON writes them, nested values (``before``,
``after``, ``changedFields``) as compact JSON text. No Flask here: the
streaming response is app/web/csv_stream.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import simplejson

# The keys whose values are amounts: written with exactly two decimals.
MONEY_KEYS = frozenset({"amount", "paymentsTotal"})


class KeysChanged(RuntimeError):
    """A serializer wrote keys other than the header's: the columns would be shifted."""


def header_line(keys: Sequence[str]) -> str:
    """The header row: the JSON keys, in the JSON's order."""
    return _write([list(keys)])


def csv_text(keys: Sequence[str], items: Iterable[dict[str, Any]]) -> str:
    """The CSV lines of ``items`` (JSON objects with exactly ``keys``, in that order)."""
    cell = [_money_cell if key in MONEY_KEYS else _cell for key in keys]
    expected = tuple(keys)
    lines: list[list[Any]] = []
    for item in items:
        # Every object of one serializer has the same keys: the first one of a
        # batch is checked in full, the rest by their number (zip is strict).
        if not lines and tuple(item) != expected:
            raise KeysChanged(f"expected {expected}, got {tuple(item)}")
        lines.append([write(value) for write, value in zip(cell, item.values(), strict=True)])
    return _write(lines)


def _write(lines: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A value as its cell: null empty, nested values as compact JSON, the rest as they are."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return simplejson.dumps(
            value, use_decimal=True, separators=(",", ":"), ensure_ascii=False, default=_iso
        )
    return value


def _money_cell(value: Decimal | None) -> str:
    """An amount with exactly two decimals, exact at any magnitude (never an exponent)."""
    return "" if value is None else f"{value:.2f}"


def _iso(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
