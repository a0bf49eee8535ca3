"""The engine's setup (configure_engine), and reads outside a transaction on PostgreSQL.

configure_engine registers the pool and connection listeners every engine
of the app gets: a ping only after idle, then what suits the database
(explicit transactions on SQLite; on PostgreSQL, dead clients noticed and
pooled connections made transactional again on checkin).

Reads outside a transaction on PostgreSQL, so a cached read costs one round trip.

psycopg2 sends BEGIN before a session's first statement and SQLAlchemy sends
ROLLBACK when the connection goes back to the pool: two round trips around a
cached read's one query, each as dear as the query. A read needs no
transaction: under READ COMMITTED every statement sees its own snapshot
either way. So a read switches its pooled connection to autocommit, and the
pool switches it back on checkin, before anyone else can use it; psycopg2
makes both switches on the client, without a round trip (SQLAlchemy's
isolation_level option would send a SET on every checkin).

An answer that takes more than one statement (the data version it reports
and the page it reads, say) must still come from one snapshot of the data
(SPEC §3). The API's cached reads check that the version did not change
around their statements (app/api/cache.py) and only when it did read again
with ``read_snapshot``: one REPEATABLE READ, READ ONLY transaction, whose
BEGIN and ROLLBACK are two more round trips. The console reads every page so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2
import sqlalchemy as sa
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ, STATUS_READY
from sqlalchemy import orm

from app.db.names import register_fold

# A pooled connection unused for longer than this is checked before it is handed out.
PING_AFTER_IDLE_SECONDS = 1.0


def configure_engine(engine: sa.Engine) -> None:
    """Register the app's pool and connection listeners on ``engine``."""
    _ping_connections_after_idle(engine)
    if engine.dialect.name == "sqlite":
        _use_explicit_sqlite_transactions(engine)
    elif engine.dialect.name == "postgresql":
        _abort_queries_of_vanished_clients(engine)
        keep_pool_transactional(engine)


def _ping_connections_after_idle(engine: sa.Engine) -> None:
    """Check a pooled connection before use, but only after it sat idle.

    SQLAlchemy's pool_pre_ping pings on every checkout: a round trip as
    dear as a cached read's one query. A connection back in use within a
    second cannot have gone stale unnoticed in between, except through a
    database restart during that second; then its request fails (503) and
    the pool drops every connection older than the failure.
    """

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, connection_record: Any) -> None:
        connection_record.info["idle_since"] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
        idle_since = connection_record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The documented signal: the pool discards it and connects afresh.
            raise sa.exc.DisconnectionError() from error


def _abort_queries_of_vanished_clients(engine: sa.Engine) -> None:
    """Make PostgreSQL notice within seconds that a worker died mid-statement.

    Otherwise the backend of a killed worker runs its sync statement to the
    end, holding the sync lock, before it finds the socket closed.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET client_connection_check_interval = '2s'")
        cursor.close()
        dbapi_connection.commit()


def _use_explicit_sqlite_transactions(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not pysqlite, begin SQLite transactions.

    pysqlite starts transactions lazily and never around DDL, which breaks
    the sync's all-or-nothing guarantee (its staging tables are DDL) and
    SAVEPOINTs; this is SQLAlchemy's documented recipe.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()
        # The name search's fold, a SQL function on PostgreSQL (app/db/names.py).
        register_fold(dbapi_connection)

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")


def keep_pool_transactional(engine: sa.Engine) -> None:
    """Make every connection of ``engine``'s pool transactional again when it is checked in,
    at the server's default isolation (client side: psycopg2 sends nothing)."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, connection_record: Any) -> None:
        if dbapi_connection is None or dbapi_connection.closed:
            return
        if dbapi_connection.autocommit:
            dbapi_connection.autocommit = False
        if dbapi_connection.isolation_level is not None or dbapi_connection.readonly is not None:
            _default_session(dbapi_connection)


def read_without_transaction(session: orm.Session) -> None:
    """Let ``session`` run its statements outside a transaction until it is closed.

    Call it before the session runs anything. It changes nothing on a
    connection already inside a transaction (a test's, say), and nothing
    on SQLite, whose reads keep their transactions.
    """
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    _autocommit_while_idle(session.connection())


def connection_without_transaction(connection: sa.Connection) -> None:
    """read_without_transaction for a connection of its own, before it runs anything;
    the pool resets it when it is closed."""
    if connection.in_transaction() or connection.dialect.name != "postgresql":
        return
    _autocommit_while_idle(connection)


def _autocommit_while_idle(connection: sa.Connection) -> None:
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and dbapi_connection.status == STATUS_READY:
        dbapi_connection.autocommit = True


@contextmanager
def read_snapshot(session: orm.Session) -> Iterator[None]:
    """Run the body's statements in one snapshot of the data, read only.

    For a PostgreSQL session between transactions (one that
    ``read_without_transaction`` switched to autocommit, or one that has
    not begun): the first statement of the body opens a REPEATABLE READ,
    READ ONLY transaction (psycopg2 sends the modifiers with its BEGIN, a
    round trip of its own) and the body's end closes it. Anywhere else (SQLite,
    whose reads keep one transaction, or a test's outer transaction) the
    body runs as it is.
    """
    dbapi_connection = _idle_connection(session)
    if dbapi_connection is None:
        yield
        return
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = False
    dbapi_connection.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
    try:
        yield
    finally:
        # A read-only transaction: ending it is one round trip, and only if
        # the body ran a statement (psycopg2 knows; it sent the BEGIN). On a
        # broken connection the pool's own reset fails and discards it.
        with contextlib.suppress(psycopg2.Error):
            dbapi_connection.rollback()
            _default_session(dbapi_connection)
            dbapi_connection.autocommit = autocommit


def _idle_connection(session: orm.Session) -> Any:
    """The psycopg2 connection of ``session`` if no transaction is open on it, else None."""
    if session.get_bind().dialect.name != "postgresql":
        return None
    dbapi_connection = session.connection().connection.dbapi_connection
    if dbapi_connection is None or dbapi_connection.status != STATUS_READY:
        return None
    return dbapi_connection


def _default_session(dbapi_connection: Any) -> None:
    """The server's default isolation and access mode for later transactions (client side)."""
    dbapi_connection.set_session(isolation_level="DEFAULT", readonly="DEFAULT")


@contextmanager
def snapshot_connection(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection of its own, reading one snapshot of the data until the block ends.

    For an answer read after its view returns (a streamed CSV export): the
    request's session is closed by then, so the export holds its own pooled
    connection. On PostgreSQL its transaction is REPEATABLE READ, READ ONLY
    (the pool restores the defaults on checkin); on SQLite one read
    transaction holds one snapshot too. A connection already inside a
    transaction (a test's) reads in that one.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql" and not connection.in_transaction():
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        transaction = connection.begin()
        try:
            yield connection
        finally:
            # Read only: nothing to commit. A broken connection's rollback fails
            # and the pool discards it.
            with contextlib.suppress(sa.exc.DBAPIError):
                transaction.rollback()
