"""Whole-request outcomes of POST /patients and /payments: errors change nothing."""

from __future__ import annotations

import fcntl
import gzip
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.sync import merge
from app.sync.lock import ADVISORY_LOCK_KEY
from tests.support.helpers import error_code, patient_record, post_snapshot, sync, to_json

LIMIT = 64 * 1024
RECORD_LIMIT = 1024
# What gunicorn puts in the environ: it ends the input itself, so werkzeug
# limits the body with a stream of its own instead of by Content-Length.
TERMINATED = {"wsgi.input_terminated": True}
CHUNKED = TERMINATED | {"CONTENT_LENGTH": ""}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Small body and record limits, so 413 and oversized records are cheap to provoke."""
    return {
        "MAX_CONTENT_LENGTH": LIMIT,
        "SYNC_MAX_RECORD_BYTES": RECORD_LIMIT,
        "SYNC_LOCK_TIMEOUT": 0.2,
    }


@pytest.fixture
def seeded(client: FlaskClient) -> list[dict[str, Any]]:
    """One stored patient; returns GET /patients as it was before the request under test."""
    sync(client, "patients", [patient_record("a")])
    return client.get("/patients").get_json()


def assert_nothing_changed(client: FlaskClient, before: list[dict[str, Any]]) -> None:
    assert client.get("/patients").get_json() == before
    assert len(client.get("/syncs").get_json()) == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'[{"externalId": "a"',
        b'[{"externalId": "a", "amount": NaN}]',
        b"[Infinity]",
        b"\xff\xfe\x00garbage",
        b"",
    ],
)
def test_sync_rejects_body_that_is_not_json(client: FlaskClient, seeded: list, body: bytes) -> None:
    response = post_snapshot(client, "patients", body)
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"
    assert_nothing_changed(client, seeded)


@pytest.mark.parametrize("body", [b'{"externalId": "a"}', b'"a"', b"5", b"null", b"true"])
def test_sync_rejects_json_that_is_not_an_array(
    client: FlaskClient, seeded: list, body: bytes
) -> None:
    response = post_snapshot(client, "patients", body)
    assert response.status_code == 422
    assert error_code(response) == "invalid_payload"
    assert_nothing_changed(client, seeded)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_sync_rejects_body_that_is_not_application_json(
    client: FlaskClient, seeded: list, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/patients", data=to_json([patient_record("b")]), headers=headers)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert_nothing_changed(client, seeded)


def test_sync_accepts_json_with_a_charset(client: FlaskClient) -> None:
    response = post_snapshot(
        client,
        "patients",
        [patient_record("a")],
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.get_json()["created"] == 1


def test_sync_rejects_unknown_content_encoding(client: FlaskClient, seeded: list) -> None:
    response = post_snapshot(
        client, "patients", [patient_record("b")], headers={"Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert_nothing_changed(client, seeded)


def test_sync_accepts_a_gzip_body(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [patient_record("a")], gzipped=True)
    assert response.status_code == 200
    assert response.get_json()["created"] == 1


def test_sync_accepts_a_gzip_body_of_several_members(client: FlaskClient) -> None:
    body = gzip.compress(to_json([patient_record("a")])[:-1].encode() + b",") + gzip.compress(
        to_json([patient_record("b")])[1:].encode()
    )
    response = post_snapshot(client, "patients", body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert (response.get_json()["received"], response.get_json()["created"]) == (2, 2)


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        gzip.compress(b"[]" * 100)[:-9],
        gzip.compress(b"[]") + b"garbage",
        gzip.compress(b"[]") + bytes(8),
    ],
    ids=["not_gzip", "truncated", "garbage_after_last_member", "zeros_after_last_member"],
)
def test_sync_rejects_broken_gzip_with_invalid_json(
    client: FlaskClient, seeded: list, body: bytes
) -> None:
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


def test_sync_rejects_gzip_bomb_by_its_decompressed_size(client: FlaskClient, seeded: list) -> None:
    bomb = gzip.compress(b"[" + b" " * (200 * LIMIT) + b"]")
    assert len(bomb) < LIMIT
    response = post_snapshot(client, "patients", bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert_nothing_changed(client, seeded)


def stored_gzip(size: int) -> bytes:
    """A gzip body of exactly ``size`` bytes: an empty array, padded, stored uncompressed."""
    for spaces in range(size - 100, size):
        body = gzip.compress(b"[" + b" " * spaces + b"]", compresslevel=0, mtime=0)
        if len(body) == size:
            return body
    raise AssertionError(f"no stored gzip body of {size} bytes")


def post_raw(
    client: FlaskClient, body: bytes, environ: dict[str, Any], *, gzipped: bool = False
) -> TestResponse:
    """POST body bytes as they are, with extra WSGI environ entries."""
    headers = {"Content-Type": "application/json"}
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return client.post("/patients", data=body, headers=headers, environ_overrides=environ)


EXACTLY_THE_LIMIT = b"[" + b" " * (LIMIT - 2) + b"]"


@pytest.mark.parametrize(
    ("body", "environ", "gzipped"),
    [
        (EXACTLY_THE_LIMIT, {}, False),
        (EXACTLY_THE_LIMIT, TERMINATED, False),
        (EXACTLY_THE_LIMIT, CHUNKED, False),
        (gzip.compress(EXACTLY_THE_LIMIT), TERMINATED, True),
        (stored_gzip(LIMIT), TERMINATED, True),
    ],
    ids=["identity", "identity_terminated", "identity_chunked", "gzip_inflated", "gzip_compressed"],
)
def test_sync_accepts_a_body_of_exactly_the_limit(
    client: FlaskClient, body: bytes, environ: dict[str, Any], gzipped: bool
) -> None:
    response = post_raw(client, body, environ, gzipped=gzipped)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["received"] == 0


@pytest.mark.parametrize(
    ("body", "environ", "gzipped"),
    [
        (EXACTLY_THE_LIMIT + b" ", {}, False),
        (EXACTLY_THE_LIMIT + b" ", CHUNKED, False),
        (gzip.compress(EXACTLY_THE_LIMIT + b" "), TERMINATED, True),
        (stored_gzip(LIMIT + 1), CHUNKED, True),
    ],
    ids=["identity", "identity_chunked", "gzip_inflated", "gzip_compressed_chunked"],
)
def test_sync_refuses_a_body_one_byte_over_the_limit(
    client: FlaskClient, seeded: list, body: bytes, environ: dict[str, Any], gzipped: bool
) -> None:
    response = post_raw(client, body, environ, gzipped=gzipped)
    assert response.status_code == 413
    assert error_code(response) == "payload_too_large"
    assert_nothing_changed(client, seeded)


OVER_THE_LIMIT = EXACTLY_THE_LIMIT + b" "
TOO_LARGE = {
    "error": {
        "code": "payload_too_large",
        "message": f"The request body exceeds the limit of {LIMIT} bytes.",
        "details": {"limit": LIMIT},
    }
}


@pytest.mark.parametrize(
    ("body", "environ", "gzipped"),
    [
        (OVER_THE_LIMIT, {}, False),
        (OVER_THE_LIMIT, TERMINATED, False),
        (OVER_THE_LIMIT, CHUNKED, False),
        (gzip.compress(OVER_THE_LIMIT), TERMINATED, True),
        (gzip.compress(OVER_THE_LIMIT), CHUNKED, True),
        (stored_gzip(LIMIT + 1), {}, True),
    ],
    ids=[
        "identity",
        "identity_terminated",
        "identity_chunked",
        "gzip_inflated",
        "gzip_inflated_chunked",
        "gzip_compressed",
    ],
)
def test_sync_answers_every_oversized_body_with_the_same_413(
    client: FlaskClient, body: bytes, environ: dict[str, Any], gzipped: bool
) -> None:
    response = post_raw(client, body, environ, gzipped=gzipped)
    assert response.status_code == 413
    assert response.get_json() == TOO_LARGE


def test_sync_rejects_oversized_record_and_keeps_its_stored_row(
    client: FlaskClient, seeded: list
) -> None:
    records = [
        patient_record("a", lastName="Changed", notes="x" * RECORD_LIMIT),
        patient_record("b"),
    ]
    response = post_snapshot(client, "patients", records)
    assert response.status_code == 200
    report = response.get_json()
    assert (report["received"], report["created"], report["rejected"], report["deleted"]) == (
        2,
        1,
        1,
        0,
    )
    assert report["errors"] == [
        {
            "index": 0,
            "externalId": "a",
            "messages": {"_schema": [f"Record is larger than {RECORD_LIMIT} bytes."]},
        }
    ]
    assert [p for p in client.get("/patients").get_json() if p["externalId"] == "a"] == seeded


def test_sync_failing_midway_changes_nothing(
    client: FlaskClient, seeded: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any) -> int:
        raise sa.exc.ProgrammingError("INSERT", {}, Exception("a bug"))

    monkeypatch.setattr(merge, "insert_new", explode)
    response = post_snapshot(
        client, "patients", [patient_record("a", lastName="Z"), patient_record("b")]
    )
    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "An internal error occurred.", "details": {}}
    }
    assert_nothing_changed(client, seeded)


def test_sync_losing_the_database_midway_is_503_and_changes_nothing(
    client: FlaskClient, seeded: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any) -> int:
        raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(merge, "insert_new", explode)
    response = post_snapshot(
        client, "patients", [patient_record("a", lastName="Z"), patient_record("b")]
    )
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0
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
            acquired = connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
            )
            assert acquired, "the test itself still holds the sync lock"
            yield
            connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
    finally:
        engine.dispose()


def test_sync_gets_409_while_another_sync_holds_the_lock(
    app: Flask, backend: str, client: FlaskClient
) -> None:
    with sync_lock_held_elsewhere(app, backend):
        response = post_snapshot(client, "patients", [patient_record("b")])
    assert response.status_code == 409
    assert error_code(response) == "sync_in_progress"
    assert client.get("/patients").get_json() == []
    assert client.get("/syncs").get_json() == []
    assert sync(client, "patients", [patient_record("b")])["created"] == 1


def test_sync_client_disconnecting_midway_changes_nothing(
    client: FlaskClient, seeded: list
) -> None:
    body = to_json([patient_record("a", lastName="Z"), patient_record("b")]).encode()
    # The client announces more bytes than it sends, then goes away.
    response = client.post(
        "/patients",
        data=body[:-5],
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(len(body))},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert_nothing_changed(client, seeded)


class DroppedConnection(io.BytesIO):
    """A WSGI input whose client goes away once it has sent its first bytes."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data:
            raise OSError("connection reset by peer")
        return data

    def readinto(self, buffer: Any) -> int:
        size = super().readinto(buffer)
        if not size:
            raise OSError("connection reset by peer")
        return size


def test_sync_client_disconnecting_from_terminated_input_changes_nothing(
    client: FlaskClient, seeded: list
) -> None:
    body = to_json([patient_record("a", lastName="Z"), patient_record("b")]).encode()
    response = client.post(
        "/patients",
        input_stream=DroppedConnection(body[:-5]),
        headers={"Content-Type": "application/json"},
        environ_overrides=CHUNKED,
    )
    assert response.status_code == 400
    assert error_code(response) == "bad_request"
    assert_nothing_changed(client, seeded)


@pytest.mark.postgresql_only
def test_sync_takes_the_advisory_lock_before_touching_any_table(
    client: FlaskClient, query_recorder: Any
) -> None:
    with query_recorder:
        sync(client, "patients", [patient_record("a")])
    statements = query_recorder.statements
    locked = next(n for n, sql in enumerate(statements) if "pg_try_advisory_xact_lock" in sql)
    # Before it, only the session's own stage, filled as the body arrives (SPEC §2).
    assert statements[:locked]
    for sql in statements[:locked]:
        assert "sync_stage_patients" in sql, sql
        assert not re.search(r"\b(patients|payments|sync_runs|data_version)\b", sql), sql
