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
from typing import Any

import simplejson

# The keys whose values are amounts: written with exactly two decimals.
MONEY_KEYS = frozenset({"amount", "paymentsTotal"})
# The keys whose values are objects or lists: written as compact JSON text.
NESTED_KEYS = frozenset({"before", "after", "changedFields"})


class KeysChanged(RuntimeError):
    """A serializer wrote keys other than the header's: the columns would be shifted."""


def header_line(keys: Sequence[str]) -> str:
    """The header row: the JSON keys, in the JSON's order."""
    return _write([list(keys)])


def csv_text(keys: Sequence[str], items: Iterable[dict[str, Any]]) -> str:
    """The CSV lines of ``items`` (JSON objects with exactly ``keys``, in that order)."""
    expected = tuple(keys)
    # Only amounts and nested values need writing; the csv module writes None as
    # an empty cell and the rest as they are (str, int). Per row, not per cell:
    # this runs for every row of every export.
    money = [index for index, key in enumerate(expected) if key in MONEY_KEYS]
    nested = [index for index, key in enumerate(expected) if key in NESTED_KEYS]
    lines: list[list[Any]] = []
    for item in items:
        # Every object of one serializer has the same keys: the first one of a
        # batch is checked in full, the rest by their number.
        if (not lines and tuple(item) != expected) or len(item) != len(expected):
            raise KeysChanged(f"expected {expected}, got {tuple(item)}")
        line = list(item.values())
        for index in money:
            if line[index] is not None:
                line[index] = f"{line[index]:.2f}"  # Decimal: exact, never an exponent
        for index in nested:
            if line[index] is not None:
                line[index] = _json(line[index])
        lines.append(line)
    return _write(lines)


def _write(lines: list[list[Any]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue()


def _json(value: Any) -> str:
    """A nested value as compact JSON text, amounts exact (as the JSON answer writes them)."""
    return simplejson.dumps(
        value, use_decimal=True, separators=(",", ":"), ensure_ascii=False, default=_iso
    )


def _iso(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
