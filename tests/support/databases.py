"""Databases for tests: the app's test config, migrations, scratch PostgreSQL databases, and a
statement recorder. Plain code, imported by conftest.py and by tests alike (nothing imports
conftest)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import flask_migrate
import sqlalchemy as sa

from app import create_app
from app.extensions import db

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES", "") not in ("", "0")


def base_config(database_url: str) -> dict[str, Any]:
    """Config shared by every test app."""
    return {"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SYNC_LOCK_TIMEOUT": 2.0}


def migrate(database_url: str) -> None:
    """Bring the database at ``database_url`` to the latest schema."""
    app = create_app(base_config(database_url))
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()


@contextmanager
def scratch_database(suffix: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database of this run's own (``pp_test_<pid>_<suffix>``), dropped after.

    Empty, or a copy of the database named ``template``. The suffix is
    lowercase letters, so that ``drop_abandoned_databases`` finds it after a
    killed run.
    """
    name = f"pp_test_{os.getpid()}_{suffix}"
    copy = f' TEMPLATE "{template}"' if template else ""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class QueryRecorder:
    """The SQL statements the app ran while recording (transaction control left out)."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.recording = False

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.recording and not statement.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            self.statements.append(statement)

    def __enter__(self) -> QueryRecorder:
        self.statements.clear()
        self.recording = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.recording = False


def drop_abandoned_databases(connection: sa.Connection) -> None:
    """Drop test databases left by killed runs: theirs is a PID that no longer exists."""
    names = connection.scalars(
        sa.text("SELECT datname FROM pg_database WHERE datname ~ '^pp_test_[0-9]+(_[a-z]+)?$'")
    )
    for name in list(names):
        pid = int(name.split("_")[2])
        if not os.path.exists(f"/proc/{pid}"):
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
