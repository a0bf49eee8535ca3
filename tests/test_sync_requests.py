"""Whole-request outcomes of POST /patients and /payments: errors change nothing."""

from __future__ import annotations

import fcntl
import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.sync import merge
from app.sync.lock import ADVISORY_LOCK_KEY
from tests.helpers import error_code, patient_record, post_snapshot, sync, to_json

LIMIT = 64 * 1024


@pytest.fixture
def app_config() -> dict[str, Any]:
    """A small body limit, so 413 is cheap to provoke."""
    return {"MAX_CONTENT_LENGTH": LIMIT, "SYNC_LOCK_TIMEOUT": 0.2}


@pytest.fixture
def seeded(client: FlaskClient) -> list[dict[str, Any]]:
    """One stored patient; returns GET /patients as it was before the request under test."""
    sync(client, "patients", [patient_record("a")])
    return client.get("/patients").get_json()


def assert_nothing_changed(client: FlaskClient, before: list[dict[str, Any]]) -> None:
    assert client.get("/patients").get_json() == before
    assert len(client.get("/syncs").get_json()) == 1


@pytest.mark.parametrize("body", [
    b"not json", b'[{"externalId": "a"', b'[{"externalId": "a", "amount": NaN}]',
    b"[Infinity]", b"\xff\xfe\x00garbage", b"",
])
def test_sync_rejects_body_that_is_not_json(client: FlaskClient, seeded: list, body: bytes) -> None:
    response = post_snapshot(client, "patients", body)
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"
    assert_nothing_changed(client, seeded)


@pytest.mark.parametrize("body", [b'{"externalId": "a"}', b'"a"', b"5", b"null", b"true"])
def test_sync_rejects_json_that_is_not_an_array(client: FlaskClient, seeded: list,
                                                body: bytes) -> None:
    response = post_snapshot(client, "patients", body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_payload"
    assert_nothing_changed(client, seeded)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_sync_rejects_body_that_is_not_application_json(client: FlaskClient, seeded: list,
                                                        content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/patients", data=to_json([patient_record("b")]), headers=headers)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert_nothing_changed(client, seeded)


def test_sync_accepts_json_with_a_charset(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [patient_record("a")],
                             headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200
    assert response.get_json()["created"] == 1


def test_sync_rejects_unknown_content_encoding(client: FlaskClient, seeded: list) -> None:
    response = post_snapshot(client, "patients", [patient_record("b")],
                             headers={"Content-Encoding": "br"})
    assert response.status_code == 415
    assert_nothing_changed(client, seeded)


def test_sync_accepts_a_gzip_body(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [patient_record("a")], gzipped=True)
    assert response.status_code == 200
    assert response.get_json()["created"] == 1


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"[]" * 100)[:-9]])
def test_sync_rejects_broken_gzip_with_invalid_json(client: FlaskClient, seeded: list,
                                                    body: bytes) -> None:
    response = post_snapshot(client, "patients", body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"
    assert_nothing_changed(client, seeded)


def test_sync_rejects_body_over_the_limit(client: FlaskClient, seeded: list) -> None:
    records = [patient_record(f"p{i}", lastName="x" * 200) for i in range(400)]
    response = post_snapshot(client, "patients", records)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert_nothing_changed(client, seeded)


def test_sync_rejects_gzip_bomb_by_its_decompressed_size(client: FlaskClient,
                                                         seeded: list) -> None:
    bomb = gzip.compress(b"[" + b" " * (200 * LIMIT) + b"]")
    assert len(bomb) < LIMIT
    response = post_snapshot(client, "patients", bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert_nothing_changed(client, seeded)


def test_sync_failing_midway_changes_nothing(client: FlaskClient, seeded: list,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any) -> int:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk full"))

    monkeypatch.setattr(merge, "insert_new", explode)
    response = post_snapshot(client, "patients", [patient_record("a", lastName="Z"),
                                                  patient_record("b")])
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "internal_error",
                                             "message": "An internal error occurred.",
                                             "details": {}}}
    assert_nothing_changed(client, seeded)


@contextmanager
def sync_lock_held_elsewhere(app: Flask, backend: str) -> Iterator[None]:
    """Hold the sync lock from outside the app, as another process would."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if backend == "sqlite":
        with open(f"{url.database}.sync-lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            yield
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            # Try, never wait: under the per-test transaction an earlier sync in the
            # same test would still hold the lock, and waiting would hang.
            acquired = connection.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                         {"k": ADVISORY_LOCK_KEY})
            assert acquired, "the test itself still holds the sync lock"
            yield
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
    finally:
        engine.dispose()


def test_sync_gets_409_while_another_sync_holds_the_lock(app: Flask, backend: str,
                                                         client: FlaskClient) -> None:
    with sync_lock_held_elsewhere(app, backend):
        response = post_snapshot(client, "patients", [patient_record("b")])
    assert response.status_code == 409
    assert error_code(response) == "sync_in_progress"
    assert client.get("/patients").get_json() == []
    assert client.get("/syncs").get_json() == []
    assert sync(client, "patients", [patient_record("b")])["created"] == 1


def test_sync_client_disconnecting_midway_changes_nothing(client: FlaskClient,
                                                          seeded: list) -> None:
    body = to_json([patient_record("a", lastName="Z"), patient_record("b")]).encode()
    # The client announces more bytes than it sends, then goes away.
    response = client.post("/patients", data=body[:-5],
                           headers={"Content-Type": "application/json"},
                           environ_overrides={"CONTENT_LENGTH": str(len(body))})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert_nothing_changed(client, seeded)


@pytest.mark.postgresql_only
def test_sync_takes_the_advisory_lock_before_touching_any_table(
        client: FlaskClient, query_recorder: Any) -> None:
    with query_recorder:
        sync(client, "patients", [patient_record("a")])
    assert "pg_try_advisory_xact_lock" in query_recorder.statements[0]
