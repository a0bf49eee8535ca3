"""Rows as CSV text (app/reads/csv_rows.py), without a database."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest

from app.reads.csv_rows import KeysChanged, csv_text, header_line


def test_amounts_have_two_decimals_at_any_magnitude() -> None:
    rows = [{"amount": Decimal(v)} for v in ("1E+3", "-0.5", "12345678901234567890.1", "0")]
    assert csv_text(("amount",), rows) == "1000.00\r\n-0.50\r\n12345678901234567890.10\r\n0.00\r\n"


def test_nested_values_are_compact_json_with_exact_amounts() -> None:
    row = {"after": {"amount": Decimal("10.10"), "name": "Zoë"}, "changedFields": ["amount"]}
    text = csv_text(("after", "changedFields"), [row])
    after, fields = next(csv.reader(io.StringIO(text, newline="")))
    assert after == '{"amount":10.10,"name":"Zoë"}'
    assert json.loads(fields) == ["amount"]


def test_null_is_an_empty_cell_and_quoting_is_minimal() -> None:
    text = csv_text(("a", "b", "c"), [{"a": None, "b": 'say "hi", then\r\nbye', "c": 7}])
    assert text == ',"say ""hi"", then\r\nbye",7\r\n'


def test_a_serializer_with_other_keys_is_refused() -> None:
    with pytest.raises(KeysChanged):
        csv_text(("a", "b"), [{"b": 1, "a": 2}])
    with pytest.raises(KeysChanged):
        csv_text(("a",), [{"a": 1}, {"a": 1, "b": 2}])


def test_header_line_is_the_keys() -> None:
    assert header_line(("id", "externalId")) == "id,externalId\r\n"
