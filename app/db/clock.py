"""The database's clock: the one clock every host that runs this service shares (SPEC §5, §8).

Times that order facts several hosts write (a sync's time, the relay's
position) or that an answer shows (the console's "now") come from here, not
from the clock of whichever host happens to run the code. The embedded
SQLite database runs inside this process, so its clock is the host's
(app/db/dialect.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.db.dialect import Bind, dialect_of


def database_now(connection: sa.Connection) -> datetime:
    """The database clock now (not the transaction's start), as an aware UTC datetime."""
    return dialect_of(connection).now(connection)


def database_clock(connection: sa.Connection) -> sa.ColumnElement[datetime]:
    """database_now as a column, to read the clock in a statement that reads something else."""
    return dialect_of(connection).clock()


def transaction_clock(bind: Bind, later_by: timedelta = timedelta(0)) -> sa.ColumnElement[datetime]:
    """``later_by`` after the database's clock as the transaction began, as a column."""
    return dialect_of(bind).transaction_clock(later_by)
