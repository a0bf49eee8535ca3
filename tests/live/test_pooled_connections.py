"""Pooled PostgreSQL connections: a cached read costs one round trip, a read that
misses the cache is one snapshot (SPEC §3), and a connection goes back to
the pool as it came (SPEC §2's atomic syncs depend on it).

These run on a database of their own, not inside the per-test transaction
of the other tests, because what they check is what a connection does
between transactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
import sqlalchemy as sa
from flask import Flask
from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ, STATUS_READY

from app import create_app
from app.db import engine as db_engine
from app.db.engine import read_without_transaction
from app.extensions import db
from app.sync import merge
from tests.support.databases import base_config, migrate, scratch_database
from tests.support.helpers import patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def pooled_app(postgres_url: str) -> Iterator[Flask]:
    """The app on a migrated database of its own, with a one-connection pool."""
    with scratch_database("pool") as url:
        migrate(url)
        app = create_app(
            base_config(url) | {"SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}}
        )
        yield app
        with app.app_context():
            db.engine.dispose()


def _pooled_dbapi_connection(app: Flask) -> object:
    with app.app_context():
        raw = db.engine.raw_connection()
        dbapi_connection = raw.dbapi_connection
        raw.close()
        return dbapi_connection


def test_a_read_runs_outside_a_transaction(pooled_app: Flask) -> None:
    with pooled_app.app_context():
        read_without_transaction(db.session())
        db.session.execute(sa.text("SELECT 1"))
        dbapi_connection = db.session.connection().connection.dbapi_connection
        # psycopg2 sent no BEGIN, so no ROLLBACK will be needed either.
        assert dbapi_connection.status == STATUS_READY
        db.session.remove()


def test_a_connection_goes_back_to_the_pool_transactional(pooled_app: Flask) -> None:
    client = pooled_app.test_client()
    assert client.get("/patients").status_code == 200
    assert _pooled_dbapi_connection(pooled_app).autocommit is False


def test_a_sync_after_reads_on_the_same_connection_is_still_all_or_nothing(
    pooled_app: Flask,
) -> None:
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1")])
    assert client.get("/patients").status_code == 200
    insert_new = merge.insert_new

    def insert_then_fail(*args: object, **kwargs: object) -> int:
        insert_new(*args, **kwargs)
        raise RuntimeError("the sync fails after it wrote its rows")

    with mock.patch.object(merge, "insert_new", insert_then_fail):
        failed = client.post("/payments", json=[payment_record("m1", "p1", 5)])
    assert failed.status_code == 500
    assert client.get("/payments").get_json() == []


def test_a_connection_idle_in_the_pool_is_checked_before_use(
    pooled_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    client = pooled_app.test_client()
    assert client.get("/patients").status_code == 200
    with pooled_app.app_context():
        name = db.engine.url.database
    admin = sa.create_engine(pooled_app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.NullPool)
    with admin.connect() as connection:
        killed = connection.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
    admin.dispose()
    assert killed == 1
    assert client.get("/patients").status_code == 200


class StatementLog:
    """Each statement the app sends, with the transaction mode its connection was in."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool, int | None, bool | None]] = []

    def __call__(self, conn: sa.Connection, cursor: object, statement: str, *args: object) -> None:
        dbapi_connection = conn.connection.dbapi_connection
        self.seen.append(
            (
                statement,
                dbapi_connection.autocommit,
                dbapi_connection.isolation_level,
                dbapi_connection.readonly,
            )
        )


@pytest.fixture
def statement_log(pooled_app: Flask) -> Iterator[StatementLog]:
    """The statements of the requests made while it is in use."""
    log = StatementLog()
    with pooled_app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", log)
    yield log
    sa.event.remove(engine, "before_cursor_execute", log)


def test_a_cache_hit_is_one_statement_outside_a_transaction(
    pooled_app: Flask, statement_log: StatementLog
) -> None:
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1")])
    assert client.get("/patients").status_code == 200
    statement_log.seen.clear()
    assert client.get("/patients").status_code == 200
    assert len(statement_log.seen) == 1
    assert statement_log.seen[0][1] is True  # autocommit: no BEGIN, no ROLLBACK


def test_a_cache_miss_through_flask_checks_the_version_again_after_its_page(
    pooled_app: Flask, statement_log: StatementLog
) -> None:
    pooled_app.config["READ_FAST_PATH"] = False  # read at the first GET
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1")])
    statement_log.seen.clear()
    assert client.get("/patients?limit=5").status_code == 200
    statements = [statement for statement, *_ in statement_log.seen]
    assert len(statements) == 3
    assert "data_version" in statements[0] and "data_version" in statements[-1]
    assert all(autocommit for _, autocommit, *_ in statement_log.seen)


def test_a_fast_first_page_reads_its_version_in_its_own_statement(
    pooled_app: Flask, statement_log: StatementLog
) -> None:
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1")])
    statement_log.seen.clear()
    assert client.get("/patients?limit=5").status_code == 200
    statements = [statement for statement, *_ in statement_log.seen]
    assert len(statements) == 1  # the page, and the version it shows
    assert "FROM patients" in statements[0] and "data_version" in statements[0]
    assert all(autocommit for _, autocommit, *_ in statement_log.seen)


@pytest.mark.parametrize("fast_path", [False, True], ids=["flask", "fast-path"])
def test_a_page_that_a_commit_races_is_read_again_in_one_read_only_snapshot(
    pooled_app: Flask, statement_log: StatementLog, fast_path: bool
) -> None:
    """The page and the version it reports (its ETag) are one state of the data.

    Through Flask the raced page is read again in one REPEATABLE READ snapshot;
    the fast first page (app/api/fast_pages.py) reads the page and its version
    in one statement, so a commit before it is in both, and nothing is read again.
    """
    pooled_app.config["READ_FAST_PATH"] = fast_path  # read at the first GET
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1", firstName="Ann")])
    writer = sa.create_engine(pooled_app.config["SQLALCHEMY_DATABASE_URI"], poolclass=sa.NullPool)
    committed = []

    def commit_before_the_page(
        conn: sa.Connection, cursor: object, statement: str, *args: object
    ) -> None:
        if "FROM patients" in statement and not committed:
            with writer.begin() as connection:
                connection.execute(sa.text("UPDATE patients SET first_name = 'Zed'"))
            committed.append(statement)

    with pooled_app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", commit_before_the_page)
    statement_log.seen.clear()
    try:
        during = client.get("/patients")
    finally:
        sa.event.remove(engine, "before_cursor_execute", commit_before_the_page)
        writer.dispose()
    assert committed
    # Read again in one snapshot: the ETag names the state the page shows.
    assert [p["firstName"] for p in during.get_json()] == ["Zed"]
    again = [mode for statement, *mode in statement_log.seen if "FROM patients" in statement]
    if fast_path:
        assert len(again) == 1  # the page carries its own version: not read again
        versions = [s for s, *_ in statement_log.seen if "FROM data_version" in s]
        assert len(versions) == 1  # the page's own
    else:
        assert again[-1] == [False, ISOLATION_LEVEL_REPEATABLE_READ, True]
    after = client.get("/patients", headers={"If-None-Match": during.headers["ETag"]})
    assert after.status_code == 304
    dbapi_connection = _pooled_dbapi_connection(pooled_app)
    assert (
        dbapi_connection.autocommit,
        dbapi_connection.isolation_level,
        dbapi_connection.readonly,
    ) == (False, None, None)


def test_a_console_page_is_read_in_one_read_only_snapshot(
    pooled_app: Flask, statement_log: StatementLog
) -> None:
    client = pooled_app.test_client()
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", 5)])
    for page in ("/console/", "/console/analytics", "/console/patient?id=p1", "/console/syncs"):
        statement_log.seen.clear()
        assert client.get(page).status_code == 200, page
        assert statement_log.seen, page
        assert all(
            mode[1:] == (False, ISOLATION_LEVEL_REPEATABLE_READ, True)
            for mode in statement_log.seen
        ), page
