"""Column types that behave the same on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

CENT = Decimal("0.01")
# Beyond the magnitude of any sum of NUMERIC(12,2) amounts that 2^63 rows could
# hold: a bound past it compares with every total like the bound itself.
TOTAL_LIMIT = Decimal(10) ** 30
_INT64 = (-(2**63), 2**63 - 1)


class Money(sa.TypeDecorator[Decimal]):
    """Exact money: NUMERIC on PostgreSQL, integer cents on SQLite.

    SQLite has no decimal type; storing cents keeps sums and comparisons exact
    there too, so both databases return the same Decimal values.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int | None = None, scale: int | None = 2) -> None:
        super().__init__(precision=precision, scale=scale)
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        cents = int(Decimal(value).scaleb(2).to_integral_exact())
        # Only a query bound can lie outside int64 (amounts are < 10^10, and a
        # total past int64 cents cannot be stored): the column's extreme compares
        # with every stored value as the bound does.
        return min(max(cents, _INT64[0]), _INT64[1])

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-2).quantize(CENT)
        return Decimal(value).quantize(CENT)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp (timestamptz on PostgreSQL).

    SQLite keeps naive text; values are normalised to UTC on the way in and
    marked UTC on the way out, so callers always see aware datetimes.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)
