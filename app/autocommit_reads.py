"""Reads outside a transaction on PostgreSQL, so a cached read costs one round trip.

psycopg2 sends BEGIN before a session's first statement and SQLAlchemy sends
ROLLBACK when the connection goes back to the pool: two round trips around a
cached read's one query, each as dear as the query. A read needs no
transaction: under READ COMMITTED every statement sees its own snapshot
either way. So a read switches its pooled connection to autocommit, and the
pool switches it back on checkin, before anyone else can use it; psycopg2
makes both switches on the client, without a round trip (SQLAlchemy's
isolation_level option would send a SET on every checkin).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from psycopg2.extensions import STATUS_READY
from sqlalchemy import orm


def keep_pool_transactional(engine: sa.Engine) -> None:
    """Make every connection of ``engine``'s pool transactional again when it is checked in."""

    @sa.event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection: Any, connection_record: Any) -> None:
        if dbapi_connection is not None and dbapi_connection.autocommit:
            dbapi_connection.autocommit = False


def read_without_transaction(session: orm.Session) -> None:
    """Let ``session`` run its statements outside a transaction until it is closed.

    Call it before the session runs anything. It changes nothing on a
    connection already inside a transaction (a test's, say), and nothing
    on SQLite, whose reads keep their transactions.
    """
    if session.in_transaction() or session.get_bind().dialect.name != "postgresql":
        return
    dbapi_connection = session.connection().connection.dbapi_connection
    if dbapi_connection is not None and dbapi_connection.status == STATUS_READY:
        dbapi_connection.autocommit = True
