"""Asynchronous syncs in tests: queue one over HTTP, run a worker until the queue is empty."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from app.extensions import db
from app.loops import StopFlag
from app.sync.worker import Worker, WorkerSettings
from tests.support.databases import base_config
from tests.support.helpers import post_snapshot

RESPOND_ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def queue_app(committed_database_url: str) -> Iterator[Flask]:
    """An app on a committed database of the test's own (a worker needs real commits).

    The mass-delete guard trips from 4 live rows, so a small snapshot can trip it.
    """
    app = create_app(
        base_config(committed_database_url)
        | {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 4, "EVENTS_BROKER_URL": None}
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def queue_sync(
    client: FlaskClient, entity: str, records: Any, query: str = "", gzipped: bool = False
) -> dict[str, Any]:
    """POST a snapshot with Prefer: respond-async, assert the 202, return its body."""
    response = post_async(client, entity, records, query=query, gzipped=gzipped)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def post_async(
    client: FlaskClient, entity: str, records: Any, *, query: str = "", gzipped: bool = False
) -> TestResponse:
    """POST a snapshot asking for an asynchronous sync."""
    return post_snapshot(
        client, entity, records, query=query, gzipped=gzipped, headers=RESPOND_ASYNC
    )


def run_worker(app: Flask) -> int:
    """Run one worker in this process until the queue is empty; the syncs it finished."""
    with app.app_context():
        worker = Worker(
            db.engine, WorkerSettings.from_config(app.config, exit_when_idle=True), StopFlag()
        )
        worker.run()
        return worker.finished


def scalar(app: Flask, statement: str, **parameters: Any) -> Any:
    """One value read from the app's database on a connection of its own."""
    with app.app_context(), db.engine.connect() as connection:
        return connection.execute(sa.text(statement), parameters).scalar()
