"""app.reads.analytics and the Dialect's pieces it stands on: nearest ranks, exact quotients,
the mean's rounding and the histogram's edges."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

import pytest
import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.extensions import db
from app.reads.analytics import PERCENTILES, bucket_edges, mean


def values_table(values: list[int]) -> sa.Subquery:
    """``values`` as a one-column subquery, in shuffled order (a UNION ALL: SQLite's VALUES
    cannot name its columns)."""
    shuffled = random.Random(len(values)).sample(values, len(values))
    return sa.union_all(
        *(sa.select(sa.literal(v, sa.Integer()).label("v")) for v in shuffled)
    ).subquery("vals")


def ranks_of(table: sa.Subquery) -> list[object]:
    """The nearest ranks of ``table.c.v``, read as the summary reads them."""
    counted = sa.select(sa.func.count().label("n")).select_from(table).subquery("counted")
    dialect = dialect_of(db.session)
    ranks = [dialect.nearest_rank(table.c.v, counted.c.n, p) for p in PERCENTILES]
    return list(db.session.execute(sa.select(*ranks).select_from(counted)).one())


@pytest.mark.parametrize("size", [1, 2, 3, 10, 11, 99, 100, 101, 257])
def test_nearest_rank_picks_the_value_at_rank_ceil_p_n(app_ctx: None, size: int) -> None:
    rng = random.Random(size)
    values = [rng.randint(-50, 50) for _ in range(size)]
    ordered = sorted(values)
    assert ranks_of(values_table(values)) == [
        ordered[math.ceil(p * size / 100) - 1] for p in PERCENTILES
    ]


def test_nearest_rank_of_no_values_is_null(app_ctx: None) -> None:
    none = values_table([1]).select().where(sa.false()).subquery("none")
    assert ranks_of(none) == [None] * len(PERCENTILES)


@pytest.mark.parametrize(
    ("dividend", "divisor"), [(0, 7), (6, 7), (7, 7), (20, 7), (299, 100), (300, 100)]
)
def test_whole_quotient_is_the_exact_floor(app_ctx: None, dividend: int, divisor: int) -> None:
    quotient = dialect_of(db.session).whole_quotient(
        sa.literal(dividend, sa.Integer()), sa.literal(divisor, sa.Integer())
    )
    assert db.session.scalar(sa.select(quotient)) == dividend // divisor


@pytest.mark.parametrize(
    ("total", "count", "expected"),
    [
        ("0.00", 0, "0.00"),
        ("10.00", 4, "2.50"),
        ("0.01", 2, "0.00"),
        ("0.03", 2, "0.02"),
        ("0.05", 2, "0.02"),
        ("-0.03", 2, "-0.02"),
        ("-0.01", 2, "0.00"),
        ("1.00", 3, "0.33"),
        ("2.00", 3, "0.67"),
        ("99999999999999999999.99", 7, "14285714285714285714.28"),
    ],
)
def test_mean_is_rounded_half_to_even_to_the_cent(total: str, count: int, expected: str) -> None:
    assert str(mean(Decimal(total), count)) == expected


@pytest.mark.parametrize(
    ("low", "high", "buckets", "expected"),
    [
        ("0.00", "1.00", 4, ["0.00", "0.25", "0.50", "0.75", "1.00"]),
        ("0.00", "1.00", 3, ["0.000000", "0.333333", "0.666667", "1.000000"]),
        ("0.00", "0.01", 64, None),
        ("-5.00", "5.00", 1, ["-5.00", "5.00"]),
        ("0.00", "0.02", 3, ["0.000000", "0.006667", "0.013333", "0.020000"]),
    ],
)
def test_bucket_edges_are_exact_or_six_places(
    low: str, high: str, buckets: int, expected: list[str] | None
) -> None:
    edges = bucket_edges(Decimal(low), Decimal(high), buckets)
    if expected is not None:
        assert [format(edge, "f") for edge in edges] == expected
    width = (Fraction(high) - Fraction(low)) / buckets
    for index, edge in enumerate(edges):
        assert abs(Fraction(edge) - (Fraction(low) + index * width)) <= Fraction(1, 2 * 10**6)
    assert edges[0] == Decimal(low) and edges[-1] == Decimal(high)


def test_bucket_edges_of_a_fine_terminating_width_keep_every_digit() -> None:
    # 0.01 / 64 = 0.00015625: eight places, exact.
    edges = bucket_edges(Decimal("0.00"), Decimal("0.01"), 64)
    assert format(edges[1], "f") == "0.00015625"
    assert format(edges[0], "f") == "0.00000000"
