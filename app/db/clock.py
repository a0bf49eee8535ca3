"""The database's clock: the one clock every host that runs this service shares (SPEC §5, §8).

Times that order facts several hosts write (a sync's time, the relay's
position) or that an answer shows (the console's "now") come from here, not
from the clock of whichever host happens to run the code.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from app.db.types import UTCDateTime, utcnow


def database_now(connection: sa.Connection) -> datetime:
    """The database clock now (not the transaction's start), as an aware UTC datetime.

    The embedded SQLite database runs inside this process, so its clock is
    the host's.
    """
    if connection.dialect.name != "postgresql":
        return utcnow()
    moment = connection.scalar(sa.text("SELECT clock_timestamp()"))
    assert isinstance(moment, datetime)
    return moment.astimezone(UTC)


def database_clock(connection: sa.Connection) -> sa.ColumnElement[datetime]:
    """database_now as a column, to read the clock in a statement that reads something else."""
    if connection.dialect.name != "postgresql":
        return sa.literal(utcnow(), UTCDateTime())
    return sa.type_coerce(sa.func.clock_timestamp(), UTCDateTime())
