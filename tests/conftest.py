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
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.extensions import db
from tests.support.databases import (
    ADMIN_URL,
    REQUIRE_POSTGRES,
    QueryRecorder,
    base_config,
    drop_abandoned_databases,
    migrate,
)

BACKENDS = ("postgresql", "sqlite")
pytest_plugins = [
    "tests.support.live_server",
    "tests.support.events_support",
    "tests.support.sync_queue",
]


# Markers by folder and file (tests/README.md): `make test-fast` leaves these out.
_MARKERS_BY_PATH = {
    "tests/live/": ("live",),
    "tests/live/test_console_browser.py": ("live", "browser"),
    "tests/events/test_events_relay.py": ("live", "broker"),
    "tests/sync/test_sync_clock.py": ("live",),
    "tests/topology/": ("topology",),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by where it lives: live processes, the browser, the broker."""
    for item in items:
        path = item.path.as_posix()
        for prefix, markers in _MARKERS_BY_PATH.items():
            if f"/{prefix}" in path or path.endswith(f"/{prefix}"):
                for marker in markers:
                    item.add_marker(marker)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses the app on both backends, PostgreSQL-only ones once."""
    if "backend" in metafunc.fixturenames:
        only_pg = metafunc.definition.get_closest_marker("postgresql_only") is not None
        metafunc.parametrize("backend", BACKENDS[:1] if only_pg else BACKENDS)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pp_test_{os.getpid()}"
    try:
        with admin.connect() as connection:
            drop_abandoned_databases(connection)
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


@pytest.fixture
def query_recorder(app: Flask) -> Iterator[QueryRecorder]:
    """Counts SQL statements, as warehouse's fixture does, to catch N+1 queries."""
    recorder = QueryRecorder()
    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    sa.event.remove(engine, "before_cursor_execute", recorder)
