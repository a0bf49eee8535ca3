"""Every difference between PostgreSQL and SQLite that code above app/db/ depends on.

``dialect_of(bind)`` gives the Dialect of an engine (chosen once by the
engine's name, then cached): PostgreSQL or SQLite. Its methods are named for
what the caller needs (a lock, a soft delete, the clock, a JSON expression),
so no module outside app/db/ compares dialect names. Where the two
strategies are the caller's own SQL (a sync's sink, the soft delete), the
caller passes both and the Dialect chooses. The list, and what the SQLite
build need not do, is in docs/architecture.md ("Differences between
databases").
"""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.deferred_indexes import indexes_deferred
from app.db.locks import (
    FileLock,
    Lock,
    NoLock,
    ProcessLock,
    SessionAdvisoryLock,
    TransactionAdvisoryLock,
)
from app.db.names import NAME_SEARCH_COLUMN
from app.db.types import UTCDateTime, utcnow

T = TypeVar("T")
Bind = sa.Engine | sa.Connection | orm.Session | orm.scoped_session[Any]


class Dialect(ABC):
    """What differs between the databases, as named behaviours (PostgreSQL or SQLite)."""

    # Whether the database writes the hot listings' JSON text itself (app/reads/json_sql.py).
    writes_json: bool

    # The database's clock (app/db/clock.py).
    @abstractmethod
    def now(self, connection: sa.Connection) -> datetime:
        """The database clock now (not the transaction's start), as an aware UTC datetime."""

    @abstractmethod
    def clock(self) -> sa.ColumnElement[datetime]:
        """``now`` as a column, to read the clock in a statement that reads something else."""

    @abstractmethod
    def transaction_clock(self, later_by: timedelta) -> sa.ColumnElement[datetime]:
        """``later_by`` after the clock as the transaction began, as a column."""

    # Locks, tried without waiting (app/db/locks.py).
    @abstractmethod
    def transaction_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        """A lock seen by every process that shares the database, released at the
        latest when ``connection``'s transaction ends. ``key`` names it on a server,
        ``name`` beside a database file (``<db>.<name>-lock``)."""

    @abstractmethod
    def session_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        """A lock held by ``connection`` across its transactions, until released."""

    @abstractmethod
    def begin_writing(self, connection: sa.Connection) -> None:
        """Make ``connection``'s transaction a writer now, waiting for other writers.

        Call it before the transaction reads a shared table. A transaction that
        has read and then writes must turn its read lock into a write lock, which
        SQLite refuses at once (SQLITE_BUSY, no busy wait: its deadlock rule)
        while another connection is writing; taken first, the write lock is
        waited for like any other (busy_timeout).
        """

    # Bulk writes and the planner (app/sync/).
    @abstractmethod
    def bulk_load(self, by_copy: T, by_insert: T) -> T:
        """The caller's way of loading many rows that suits the database: COPY, or INSERTs."""

    @abstractmethod
    def transaction_work_mem(self, connection: sa.Connection, size: str) -> None:
        """Give the transaction's sorts, hash joins and index builds ``size`` of memory each."""

    @abstractmethod
    def refresh_statistics(self, connection: sa.Connection, table: sa.Table) -> None:
        """Refresh the planner's statistics for ``table``."""

    @abstractmethod
    def ready_for_joins(self, connection: sa.Connection, table: sa.Table, column: str) -> None:
        """Make a freshly filled temporary ``table`` ready to be joined on ``column``."""

    @abstractmethod
    def indexes_deferred(
        self, connection: sa.Connection, table: sa.Table, columns: tuple[str, ...] = ()
    ) -> AbstractContextManager[bool]:
        """Where many rows go into ``table`` unindexed, its indexes and keys built at exit;
        with ``columns``, only those on one of them.

        Yields whether it did so (app/db/deferred_indexes.py); where it did not,
        the rows inside are indexed and checked one by one as usual.
        """

    @abstractmethod
    def reserve_ids(self, connection: sa.Connection, table: sa.Table, count: int) -> int | None:
        """The first of ``count`` consecutive new ids of ``table``, taken from its sequence
        so that nothing else is given them; None where the insert must draw its ids itself.

        Only under the sync lock (app/sync/lock.py): syncs are the tables' only
        writers, so no other insert draws from the sequence meanwhile.
        """

    @abstractmethod
    def soft_delete(self, in_one_statement: Callable[[], int], in_two: Callable[[], int]) -> int:
        """Run the soft delete that keeps each deleted row's version; return the rows deleted.

        ``in_one_statement``: an UPDATE whose RETURNING feeds the versions'
        INSERT (a data-modifying WITH), so the search for the rows runs once.
        ``in_two``: the INSERT, then the UPDATE, each searching.
        """

    @abstractmethod
    def relaxed_commit(self, connection: sa.Connection) -> None:
        """Let the transaction's commit return before it is durable (a crash may lose it)."""

    # Expressions.
    @abstractmethod
    def json_without(self, document: sa.ColumnElement[Any], key: str) -> sa.ColumnElement[Any]:
        """The JSON object ``document`` without its top-level ``key``."""

    @abstractmethod
    def cents(self, amount: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        """A Money column (app/db/types.py) as an integer number of cents."""

    @abstractmethod
    def patient_name_key(self, patients: sa.Table) -> sa.ColumnElement[str]:
        """A patient's "first last", folded (app/db/names.py): what a name search matches."""

    @abstractmethod
    def nearest_rank(
        self, values: sa.ColumnElement[Any], count: sa.ColumnElement[int], percent: int
    ) -> sa.ColumnElement[Any]:
        """The value at rank ceil(percent/100 * n), 1-based, of ``values`` in ascending order.

        ``values`` is a column of a FROM (a subquery or CTE) of n rows, none of
        them null; ``count`` is n as a column of the enclosing select, which
        reads that FROM's aggregates. NULL when n is 0. Read in order from
        offset ceil(p*n/100) - 1, which an index on the values serves.
        """

    @abstractmethod
    def whole_quotient(
        self, dividend: sa.ColumnElement[Any], divisor: sa.ColumnElement[Any]
    ) -> sa.ColumnElement[int]:
        """floor(dividend / divisor), exactly, for a non-negative dividend and a positive
        divisor that are whole multiples of the same unit (Money, integers). NULL when
        the divisor is NULL."""


class PostgreSQL(Dialect):
    """The production database: advisory locks, COPY, the server's clock, JSON in SQL."""

    writes_json = True

    def now(self, connection: sa.Connection) -> datetime:
        moment = connection.scalar(sa.text("SELECT clock_timestamp()"))
        assert isinstance(moment, datetime)
        return moment.astimezone(UTC)

    def clock(self) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.clock_timestamp(), UTCDateTime())

    def transaction_clock(self, later_by: timedelta) -> sa.ColumnElement[datetime]:
        return sa.type_coerce(sa.func.now() + later_by, UTCDateTime())

    def transaction_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        return TransactionAdvisoryLock(connection, key)

    def session_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        return SessionAdvisoryLock(connection, key)

    def begin_writing(self, connection: sa.Connection) -> None:
        """Nothing to do: row locks, not a database lock, order PostgreSQL's writers."""

    def bulk_load(self, by_copy: T, by_insert: T) -> T:
        return by_copy

    def transaction_work_mem(self, connection: sa.Connection, size: str) -> None:
        connection.execute(
            sa.select(
                sa.func.set_config("work_mem", size, True),
                sa.func.set_config("maintenance_work_mem", size, True),
            )
        )

    def refresh_statistics(self, connection: sa.Connection, table: sa.Table) -> None:
        connection.execute(sa.text(f"ANALYZE {table.name}"))

    def ready_for_joins(self, connection: sa.Connection, table: sa.Table, column: str) -> None:
        # Hash joins need no index, only statistics.
        self.refresh_statistics(connection, table)

    def indexes_deferred(
        self, connection: sa.Connection, table: sa.Table, columns: tuple[str, ...] = ()
    ) -> AbstractContextManager[bool]:
        return indexes_deferred(connection, table.name, columns)

    def reserve_ids(self, connection: sa.Connection, table: sa.Table, count: int) -> int | None:
        # nextval then setval in one statement: the range is the sequence's next
        # ``count`` values, and a rollback leaves it spent, as nextval would.
        sequence = sa.func.pg_get_serial_sequence(table.name, "id")
        last = connection.scalar(
            sa.select(sa.func.setval(sequence, sa.func.nextval(sequence) + (count - 1)))
        )
        return last - count + 1

    def soft_delete(self, in_one_statement: Callable[[], int], in_two: Callable[[], int]) -> int:
        return in_one_statement()

    def relaxed_commit(self, connection: sa.Connection) -> None:
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))

    def json_without(self, document: sa.ColumnElement[Any], key: str) -> sa.ColumnElement[Any]:
        return document.op("-")(key)

    def cents(self, amount: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        return sa.cast(amount * 100, sa.BigInteger())

    def patient_name_key(self, patients: sa.Table) -> sa.ColumnElement[str]:
        # The stored generated column, under its trigram index (migration d0f2a4c6e8b1).
        return sa.literal_column(f"{patients.name}.{NAME_SEARCH_COLUMN}", sa.Text())

    def nearest_rank(
        self, values: sa.ColumnElement[Any], count: sa.ColumnElement[int], percent: int
    ) -> sa.ColumnElement[Any]:
        # The offset reads the enclosing select's count: no second count. Not
        # percentile_disc: it sorts its input (spilling past work_mem at 100k rows),
        # where an ordered read of the live totals' index skips to the rank.
        return _at_offset(values, _rank_offset(count, percent))

    def whole_quotient(
        self, dividend: sa.ColumnElement[Any], divisor: sa.ColumnElement[Any]
    ) -> sa.ColumnElement[int]:
        # div() truncates an exact quotient; NUMERIC's "/" rounds it first.
        return sa.type_coerce(sa.func.div(dividend, divisor), sa.BigInteger())


class SQLite(Dialect):
    """The embedded database of ``make run``: one host, one process's clock, lock files."""

    writes_json = False

    def __init__(self, database: str | None) -> None:
        # The database file, or None for an in-memory database.
        self._database = None if not database or database == ":memory:" else database

    def now(self, connection: sa.Connection) -> datetime:
        # The embedded database runs inside this process: its clock is the host's.
        return utcnow()

    def clock(self) -> sa.ColumnElement[datetime]:
        return sa.literal(utcnow(), UTCDateTime())

    def transaction_clock(self, later_by: timedelta) -> sa.ColumnElement[datetime]:
        return sa.literal(utcnow() + later_by, UTCDateTime())

    def transaction_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        if self._database is None:
            return ProcessLock(key)
        return FileLock(f"{self._database}.{name}-lock")

    def session_lock(self, connection: sa.Connection, key: int, name: str) -> Lock:
        if self._database is None:
            return NoLock()
        return FileLock(f"{self._database}.{name}-lock")

    def begin_writing(self, connection: sa.Connection) -> None:
        # A write that matches nothing still opens the write transaction (RESERVED).
        connection.exec_driver_sql("DELETE FROM data_version WHERE 0")

    def bulk_load(self, by_copy: T, by_insert: T) -> T:
        return by_insert

    def transaction_work_mem(self, connection: sa.Connection, size: str) -> None:
        """Nothing to set: SQLite has no per-query memory budget."""

    def refresh_statistics(self, connection: sa.Connection, table: sa.Table) -> None:
        """Nothing to refresh: SQLite plans without gathered statistics."""

    def ready_for_joins(self, connection: sa.Connection, table: sa.Table, column: str) -> None:
        # SQLite has no hash joins: an anti-join on ``column`` needs an index.
        connection.execute(sa.text(f"CREATE INDEX ix_{table.name} ON {table.name} ({column})"))

    def indexes_deferred(
        self, connection: sa.Connection, table: sa.Table, columns: tuple[str, ...] = ()
    ) -> AbstractContextManager[bool]:
        # The embedded database's loads are small; its indexes stay as they are.
        return nullcontext(False)

    def reserve_ids(self, connection: sa.Connection, table: sa.Table, count: int) -> int | None:
        """None: SQLite's INSERT gives each row the next id itself."""
        return None

    def soft_delete(self, in_one_statement: Callable[[], int], in_two: Callable[[], int]) -> int:
        # No data-modifying WITH: RETURNING cannot feed another statement.
        return in_two()

    def relaxed_commit(self, connection: sa.Connection) -> None:
        """Nothing to relax: the embedded database commits as it is configured."""

    def json_without(self, document: sa.ColumnElement[Any], key: str) -> sa.ColumnElement[Any]:
        return sa.func.json_remove(document, f"$.{key}")

    def cents(self, amount: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
        # Money is stored as integer cents already.
        return sa.type_coerce(amount, sa.BigInteger())

    def patient_name_key(self, patients: sa.Table) -> sa.ColumnElement[str]:
        # No column: the registered Python fold over each row (a scan, fine embedded).
        return sa.func.pp_fold(patients.c.first_name + " " + patients.c.last_name)

    def nearest_rank(
        self, values: sa.ColumnElement[Any], count: sa.ColumnElement[int], percent: int
    ) -> sa.ColumnElement[Any]:
        # SQLite refuses an outer reference in OFFSET: the offset counts the values itself.
        counted = sa.select(sa.func.count(values)).correlate(None).scalar_subquery()
        return _at_offset(values, _rank_offset(counted, percent))

    def whole_quotient(
        self, dividend: sa.ColumnElement[Any], divisor: sa.ColumnElement[Any]
    ) -> sa.ColumnElement[int]:
        # Both are integers here (Money is stored as cents): SQLite's "/" truncates.
        return sa.type_coerce(dividend, sa.BigInteger()) // sa.type_coerce(divisor, sa.BigInteger())


def _rank_offset(count: sa.ColumnElement[int], percent: int) -> sa.ColumnElement[int]:
    """ceil(percent * count / 100) - 1 in integers: (percent * count - 1) / 100, truncated.

    Both databases truncate integer division toward zero, so no values
    (count 0) give offset 0, not -1 (which PostgreSQL would refuse).
    """
    return (count * percent - 1) // 100


def _at_offset(
    values: sa.ColumnElement[Any], offset: sa.ColumnElement[int]
) -> sa.ColumnElement[Any]:
    """The value ``offset`` places into ``values`` in ascending order, as a scalar subquery."""
    return sa.select(values).order_by(values).limit(1).offset(offset).scalar_subquery()


_CHOSEN: weakref.WeakKeyDictionary[sa.Engine, Dialect] = weakref.WeakKeyDictionary()


def dialect_of(bind: Bind) -> Dialect:
    """The Dialect of the engine behind ``bind`` (an engine, a connection or a session)."""
    engine = bind.engine if isinstance(bind, sa.Engine | sa.Connection) else bind.get_bind().engine
    try:
        return _CHOSEN[engine]
    except KeyError:
        return _CHOSEN.setdefault(engine, _choose(engine))


def _choose(engine: sa.Engine) -> Dialect:
    name = engine.dialect.name
    if name == "postgresql":
        return PostgreSQL()
    if name == "sqlite":
        return SQLite(engine.url.database)
    raise RuntimeError(f"unsupported database: {name}")
