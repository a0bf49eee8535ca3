"""Schema changes go through migrations, and the migrations match the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import create_app
from app.db.names import include_object
from app.extensions import db
from tests.support.databases import base_config, scratch_database
from tests.support.helpers import get_all, patient_record, payment_record, sync


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A database with no schema at all, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips or fails the same way when PG is absent
    with scratch_database("migrations") as url:
        yield url


def reflectable(entry: tuple, backend: str) -> bool:
    """False for diffs Alembic reports only because it cannot reflect SQLite expression indexes."""
    return not (
        backend == "sqlite"
        and entry[0] in ("add_index", "remove_index")
        and entry[1].name == "ix_patients_live_total_desc_id"
    )


def test_upgrade_head_on_empty_database_matches_the_models(
    empty_database_url: str, backend: str
) -> None:
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            # As `flask db migrate` compares: without the PostgreSQL-only name search.
            context = MigrationContext.configure(
                connection, opts={"include_object": include_object}
            )
            diff = compare_metadata(context, db.metadata)
        db.engine.dispose()
    assert [entry for entry in diff if reflectable(entry, backend)] == []


def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        flask_migrate.upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
    assert {"patients", "payments", "sync_runs"} <= tables


@pytest.mark.postgresql_only
def test_upgrade_leaves_room_for_hot_updates(empty_database_url: str) -> None:
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade()
        options = dict(
            db.session.execute(
                sa.text(
                    "SELECT relname, reloptions FROM pg_class "
                    "WHERE relname IN ('patients', 'payments')"
                )
            ).all()
        )
        db.session.remove()
        db.engine.dispose()
    assert options == {"patients": ["fillfactor=50"], "payments": ["fillfactor=85"]}


def test_upgrade_finds_what_syncs_recorded_before_it_created(empty_database_url: str) -> None:
    # Syncs recorded before migration d4e6f8a0b2c4 have no created-id range;
    # the upgrade derives it, and their changes read the same as before.
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade()
        client = app.test_client()
        sync(client, "patients", [patient_record("p1"), patient_record("p2")])
        sync(client, "payments", [payment_record(f"m{i}", "p1", i) for i in range(5)])
        sync(client, "payments", [payment_record(f"m{i}", "p2", i + 1) for i in range(1, 8)])
        sync(client, "payments", [payment_record("m0", "p1", 0)], query="?force=true")
        syncs = range(1, 5)
        recorded = {n: get_all(client, f"/syncs/{n}/changes?limit=2") for n in syncs}
        db.session.remove()
        flask_migrate.downgrade(revision="c3d5e7f9a1b3")
        flask_migrate.upgrade()
        migrated = {n: get_all(client, f"/syncs/{n}/changes?limit=2") for n in syncs}
        db.session.remove()
        db.engine.dispose()
    assert [len(recorded[n]) for n in syncs] == [2, 5, 8, 8]
    assert migrated == recorded


def test_upgrade_orders_earlier_syncs_by_id_and_keeps_the_relay_where_it_stood(
    empty_database_url: str,
) -> None:
    # Before migration c9e1f3a5b7d9 syncs were applied in id order and the
    # relay's position named a sync id; after it, the feed follows applied_seq.
    app = create_app(base_config(empty_database_url))
    with app.app_context():
        flask_migrate.upgrade(revision="b8c0d2e4f6a8")
        client = app.test_client()
        # Written by hand: this code's engine needs the columns the upgrade adds.
        with db.engine.begin() as connection:
            for sync_id in (1, 2):
                connection.execute(
                    sa.text(
                        "INSERT INTO sync_runs (id, entity, dry_run, started_at, finished_at,"
                        " report) VALUES (:id, 'patients', false, CURRENT_TIMESTAMP,"
                        " CURRENT_TIMESTAMP, :report)"
                    ),
                    {"id": sync_id, "report": f'{{"syncId": {sync_id}, "entity": "patients"}}'},
                )
            connection.execute(
                sa.text(
                    "INSERT INTO event_relay_position (id, sync_id, record_id, sync_complete,"
                    " sync_events, published_total, publish_rate, updated_at)"
                    " VALUES (1, 1, 0, true, 2, 2, 0, CURRENT_TIMESTAMP)"
                )
            )
        db.session.remove()
        flask_migrate.upgrade()
        with db.engine.connect() as connection:
            runs = connection.execute(
                sa.text("SELECT id, applied_seq, state FROM sync_runs ORDER BY id")
            ).all()
            seq = connection.execute(sa.text("SELECT sync_seq FROM event_relay_position")).scalar()
        listed = client.get("/syncs?after=1").get_json()
        db.session.remove()
        db.engine.dispose()
    assert [tuple(run) for run in runs] == [(1, 1, "applied"), (2, 2, "applied")]
    assert seq == 1
    assert [(s["syncId"], s["state"]) for s in listed] == [(2, "applied")]
