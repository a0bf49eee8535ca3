"""The validation fast path accepts only what marshmallow accepts, with the same values."""

from __future__ import annotations

import dataclasses
import itertools
import random
from decimal import Decimal
from typing import Any

import pytest

from app.sync.entities import ENTITIES
from app.sync.records import validate_snapshot
from app.sync.report import RecordError

IDS: list[Any] = [
    "5",
    5,
    0,
    -3,
    "",
    " ",
    "a\tb",
    "a\\b",
    "é",
    "\ud800",
    "a\x00",
    "x" * 255,
    "x" * 256,
    10**300,
    1.5,
    5.0,
    True,
    None,
    [],
    {},
    Decimal("5"),
    Decimal("NaN"),
]
NAMES: list[Any] = [
    "Ada",
    "",
    " ",
    "x" * 255,
    "x" * 256,
    "Zoë",
    "a\nb",
    "\x00",
    5,
    None,
    True,
    ["Ada"],
    "\ud800",
]
DATES: list[Any] = [
    "2094-02-01",
    "2021-1-5",
    "2021-02-30",
    "2021-02-03T00:00:00",
    "",
    "٢٠٢١-٠٢-٠٣",
    20210203,
    None,
    "0000-01-01",
    "9999-12-31",
]
AMOUNTS: list[Any] = [
    Decimal("4.46"),
    Decimal("4.455"),
    Decimal("4.450"),
    Decimal("1E+2"),
    Decimal("-0.0"),
    Decimal("1E+10"),
    Decimal("9999999999.99"),
    Decimal("-9999999999.99"),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1E-30"),
    12,
    -5,
    10**10,
    10**400,
    True,
    False,
    None,
    "7.10",
    "abc",
    "",
    "\uff11\uff12",
    " 1",
    4.46,
    0.1,
    float("nan"),
    [1],
    {"v": 1},
]
MISSING = object()


class RecordingSink:
    """Collects staged rows for comparison."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def add(self, index: int, external_id: str, valid: bool, fields: Any) -> None:
        self.rows.append((index, external_id, valid, fields))


def run_both(entity: str, records: list[Any]) -> None:
    results = []
    described = ENTITIES[entity]
    # The same entity, its fast path declining every record: marshmallow decides alone.
    schema_only = dataclasses.replace(described, fast_path=lambda record: None)
    for validated_as in (described, schema_only):
        sink = RecordingSink()
        summary = validate_snapshot(validated_as, records, sink, max_errors=10**6)
        results.append(
            (
                sink.rows,
                summary.received,
                summary.rejected,
                [(e.index, e.external_id, e.messages) for e in summary.errors],
            )
        )
    # repr, not ==: Decimal("4.450") == Decimal("4.45") and 1.0 == Decimal(1) would hide
    # a value the database would store differently.
    assert repr(results[0]) == repr(results[1])


def with_key(record: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    record = dict(record)
    if value is MISSING:
        record.pop(key, None)
    else:
        record[key] = value
    return record


BASE_PATIENT = {
    "externalId": "p",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "middleName": None,
    "dateOfBirth": "1815-12-10",
}
BASE_PAYMENT = {"externalId": "m", "patientId": "p", "amount": Decimal("1.00")}


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("externalId", [*IDS, MISSING]),
        ("firstName", [*NAMES, MISSING]),
        ("lastName", NAMES),
        ("middleName", [*NAMES, MISSING]),
        ("dateOfBirth", [*DATES, MISSING]),
    ],
)
def test_fast_path_matches_schema_for_each_patient_field(key: str, values: list[Any]) -> None:
    run_both("patients", [with_key(BASE_PATIENT, key, value) for value in values])


@pytest.mark.parametrize(
    ("key", "values"),
    [
        ("externalId", [*IDS, MISSING]),
        ("patientId", [*IDS, MISSING]),
        ("amount", [*AMOUNTS, MISSING]),
    ],
)
def test_fast_path_matches_schema_for_each_payment_field(key: str, values: list[Any]) -> None:
    run_both("payments", [with_key(BASE_PAYMENT, key, value) for value in values])


@pytest.mark.parametrize("entity", ["patients", "payments"])
def test_fast_path_matches_schema_for_non_objects(entity: str) -> None:
    run_both(entity, [None, 5, "x", [], [BASE_PATIENT], True, Decimal("1")])


def test_fast_path_matches_schema_on_random_hostile_records() -> None:
    rng = random.Random(20261122)
    patients = [
        {
            key: rng.choice(pool)
            for key, pool in (
                ("externalId", IDS),
                ("firstName", NAMES),
                ("lastName", NAMES),
                ("middleName", NAMES),
                ("dateOfBirth", DATES),
            )
        }
        for _ in range(2000)
    ]
    payments = [
        {
            key: rng.choice(pool)
            for key, pool in (("externalId", IDS), ("patientId", IDS), ("amount", AMOUNTS))
        }
        for _ in range(2000)
    ]
    run_both("patients", patients)
    run_both("payments", payments)


def test_fast_path_and_schema_agree_on_every_combination_of_amount_and_id() -> None:
    records = [
        {"externalId": ext, "patientId": "p", "amount": amount}
        for ext, amount in itertools.product(IDS, AMOUNTS)
    ]
    run_both("payments", records)


def test_record_error_keeps_index_order() -> None:
    sink = RecordingSink()
    records = [BASE_PAYMENT, {}, BASE_PAYMENT | {"amount": "x"}]
    summary = validate_snapshot(ENTITIES["payments"], records, sink, max_errors=10)
    assert [e.index for e in summary.errors] == [1, 2]
    assert all(isinstance(e, RecordError) for e in summary.errors)
