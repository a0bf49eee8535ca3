"""Test harness: every test runs against a real PostgreSQL and again on SQLite.

PostgreSQL: one database per test session, migrated once, and one rolled-back
transaction per test; the app's own commits and rollbacks become savepoints
inside it (Flask-SQLAlchemy-Lite's testing recipe). SQLite: a copy of a
migrated template file per test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.extensions import db

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("TEST_REQUIRE_POSTGRES", "") not in ("", "0")
BACKENDS = ("postgresql", "sqlite")
pytest_plugins = ["tests.live_server", "tests.events_support"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses the app on both backends, PostgreSQL-only ones once."""
    if "backend" in metafunc.fixturenames:
        only_pg = metafunc.definition.get_closest_marker("postgresql_only") is not None
        metafunc.parametrize("backend", BACKENDS[:1] if only_pg else BACKENDS)


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
    lowercase letters, so that ``_drop_abandoned_databases`` finds it after a
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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pp_test_{os.getpid()}"
    try:
        with admin.connect() as connection:
            _drop_abandoned_databases(connection)
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL is not reachable at {ADMIN_URL}: {error.orig}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _drop_abandoned_databases(connection: sa.Connection) -> None:
    """Drop test databases left by killed runs: theirs is a PID that no longer exists."""
    names = connection.scalars(
        sa.text("SELECT datname FROM pg_database WHERE datname ~ '^pp_test_[0-9]+(_[a-z]+)?$'")
    )
    for name in list(names):
        pid = int(name.split("_")[2])
        if not os.path.exists(f"/proc/{pid}"):
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each SQLite test copies."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database this test's app talks to."""
    if backend == "postgresql":
        return request.getfixturevalue("postgres_url")
    path = tmp_path / "app.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test config overrides; override this fixture or mutate it before `app` is built."""
    return {}


@pytest.fixture
def app(backend: str, database_url: str, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The app, its database isolated so that nothing a test writes survives it."""
    app = create_app(base_config(database_url) | app_config)
    with app.app_context():
        engine = db.engine
    if backend == "sqlite":
        yield app
        engine.dispose()
        return
    with ExitStack() as stack:
        connection = engine.connect()
        stack.callback(engine.dispose)
        stack.callback(connection.close)
        transaction = connection.begin()
        stack.callback(transaction.rollback)
        stack.enter_context(
            mock.patch.dict(
                db.session.session_factory.kw, {"join_transaction_mode": "create_savepoint"}
            )
        )
        stack.enter_context(mock.patch.object(engine, "connect", return_value=connection))
        stack.enter_context(mock.patch.object(connection, "close"))
        stack.enter_context(mock.patch.object(connection, "begin", connection.begin_nested))
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A runner for the app's CLI commands."""
    return app.test_cli_runner()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[None]:
    """An app context, for tests that query directly and make no requests."""
    with app.app_context():
        yield


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


@pytest.fixture
def query_recorder(app: Flask) -> Iterator[QueryRecorder]:
    """Counts SQL statements, as warehouse's fixture does, to catch N+1 queries."""
    recorder = QueryRecorder()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    sa.event.remove(engine, "before_cursor_execute", recorder)
