"""Loading a table the way pg_restore does: its indexes and checks built once, in bulk.

An INSERT of a million rows into an indexed table enters each row into every
index and checks each foreign key with one lookup per row (half the time of
an initial payments load). ``indexes_deferred`` drops the table's secondary
indexes, unique constraints and foreign keys, lets the caller insert, then
builds them again from the definitions it read from the catalog: each index
by one sort, each foreign key by one anti-join. All of it happens inside the
caller's transaction, so a reader sees the table as it was or as it is after
the commit, never without an index or a constraint, and an error anywhere
rolls the whole of it back.

The price is PostgreSQL's ACCESS EXCLUSIVE lock on the table (and, for a
foreign key, on the table it references) until the commit: readers of those
tables wait for the sync instead of reading the state before it. Worth it
only when the rows inserted outnumber the rows already there (the caller
decides); it never waits long for the lock: a reader holding the table (a long
export, say) makes it give up after ``LOCK_WAIT`` and the caller inserts
row by row as usual.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

LOCK_WAIT = "1s"
_SAVEPOINT = "deferred_indexes"
_LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class _Definitions:
    """What is dropped and built again: (name, definition) pairs as the catalog writes them."""

    constraints: list[tuple[str, str]]  # unique, then foreign keys (built in that order)
    indexes: list[tuple[str, str]]  # secondary indexes that back no constraint


@contextmanager
def indexes_deferred(
    connection: sa.Connection, table: str, columns: tuple[str, ...] = ()
) -> Iterator[bool]:
    """Inside, ``table`` has only its primary key and checks: yields True; rebuilt at exit.

    With ``columns``, only the indexes and constraints on one of them are
    dropped: an UPDATE of those columns alone is then HOT where its page has
    room, and enters no index at all. Yields False, having changed nothing,
    when the table's lock is not free within ``LOCK_WAIT``. Each index build
    sorts in the transaction's maintenance_work_mem (a sync sets it:
    merge.tune_transaction).
    """
    definitions = _definitions(connection, table, columns)
    if not (definitions.constraints or definitions.indexes):
        yield False
        return
    if not _dropped(connection, table, definitions):
        yield False
        return
    yield True
    for _name, definition in definitions.indexes:
        connection.exec_driver_sql(definition)
    for name, definition in definitions.constraints:
        connection.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _definitions(connection: sa.Connection, table: str, columns: tuple[str, ...]) -> _Definitions:
    # A key on none of ``columns`` is left out, when there are any.
    on_columns = (
        "(cardinality(CAST(:columns AS text[])) = 0 OR EXISTS (SELECT 1 FROM pg_attribute a"
        " WHERE a.attrelid = CAST(:table AS regclass) AND a.attname = ANY(CAST(:columns AS text[]))"
        " AND a.attnum = ANY({keys})))"
    )
    parameters = {"table": table, "columns": list(columns)}
    constraints = connection.execute(
        sa.text(
            "SELECT c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " WHERE c.conrelid = CAST(:table AS regclass) AND c.contype IN ('u', 'f')"
            # A unique constraint another table's foreign key refers to stays.
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f'"
            " AND f.confrelid = c.conrelid AND f.conindid = c.conindid)"
            f" AND {on_columns.format(keys='c.conkey')}"
            " ORDER BY c.contype DESC, c.conname"  # 'u' before 'f': a key may need its index
        ),
        parameters,
    ).all()
    indexes = connection.execute(
        sa.text(
            "SELECT index.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class index ON index.oid = i.indexrelid"
            " WHERE i.indrelid = CAST(:table AS regclass)"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            f" AND {on_columns.format(keys='i.indkey')}"
            " ORDER BY index.relname"
        ),
        parameters,
    ).all()
    return _Definitions([tuple(row) for row in constraints], [tuple(row) for row in indexes])


def _dropped(connection: sa.Connection, table: str, definitions: _Definitions) -> bool:
    """Drop what ``definitions`` lists; False, with nothing dropped, if a lock was not free."""
    previous = connection.scalar(sa.text("SELECT current_setting('lock_timeout')"))
    connection.exec_driver_sql(f"SAVEPOINT {_SAVEPOINT}")
    _set(connection, "lock_timeout", LOCK_WAIT)
    try:
        if definitions.constraints:
            drops = ", ".join(f'DROP CONSTRAINT "{name}"' for name, _ in definitions.constraints)
            connection.exec_driver_sql(f"ALTER TABLE {table} {drops}")
        if definitions.indexes:
            names = ", ".join(f'"{name}"' for name, _ in definitions.indexes)
            connection.exec_driver_sql(f"DROP INDEX {names}")
    except sa.exc.OperationalError as error:
        if getattr(error.orig, "pgcode", None) != _LOCK_NOT_AVAILABLE:
            raise
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        dropped = False
    else:
        dropped = True
    connection.exec_driver_sql(f"RELEASE SAVEPOINT {_SAVEPOINT}")
    _set(connection, "lock_timeout", previous)
    return dropped


def _set(connection: sa.Connection, name: str, value: str) -> None:
    """A setting for the rest of the transaction."""
    connection.execute(sa.select(sa.func.set_config(name, value, True)))
