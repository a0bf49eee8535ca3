"""Probes and the JSON error envelope (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app import create_app
from app.extensions import db


def assert_envelope(response: TestResponse, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)


def test_healthz_returns_200(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_returns_200_on_migrated_database(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert len(body["revision"]) == 1


def test_readyz_names_the_one_database_that_answers_without_replicas(client: FlaskClient) -> None:
    databases = client.get("/readyz").get_json()["databases"]
    assert databases["primary"]["state"] == "up"
    assert databases["replicas"] == []


def readyz_against(database_url: str) -> TestResponse:
    """GET /readyz from an app on ``database_url``, its engine disposed afterwards."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url})
    try:
        return app.test_client().get("/readyz")
    finally:
        with app.app_context():
            db.engine.dispose()


def test_readyz_returns_503_when_schema_is_not_migrated(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    assert not path.exists()
    response = readyz_against(f"sqlite:///{path}")
    assert_envelope(response, 503, "not_ready")
    assert response.get_json()["error"]["details"]["current"] == []
    assert len(response.get_json()["error"]["details"]["expected"]) == 1


# Nothing listens on port 1: the connection is refused at once.
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/none"


def test_readyz_says_the_database_is_unreachable_not_unmigrated() -> None:
    response = readyz_against(UNREACHABLE)
    assert_envelope(response, 503, "database_unavailable")
    assert "migrat" not in response.get_json()["error"]["message"]
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/patients"),
        ("GET", "/patients/p1"),
        ("GET", "/payments"),
        ("GET", "/payments/m1"),
        ("GET", "/syncs"),
        ("GET", "/syncs/1"),
        ("POST", "/patients"),
        ("POST", "/payments"),
    ],
)
def test_data_endpoints_answer_503_with_retry_after_when_the_database_is_gone(
    method: str, path: str
) -> None:
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": UNREACHABLE})
    try:
        response = app.test_client().open(
            path, method=method, data=b"[]", content_type="application/json"
        )
    finally:
        with app.app_context():
            db.engine.dispose()
    assert_envelope(response, 503, "database_unavailable")
    assert int(response.headers["Retry-After"]) > 0


def test_unknown_route_gives_404_json_envelope(client: FlaskClient) -> None:
    response = client.get("/no/such/route")
    assert_envelope(response, 404, "not_found")


def test_delete_patients_gives_405_json_envelope_with_allow_header(client: FlaskClient) -> None:
    response = client.delete("/patients")
    assert_envelope(response, 405, "method_not_allowed")
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed


ERROR_REQUESTS: dict[str, tuple[Callable[[FlaskClient], TestResponse], int, str]] = {
    "unknown-route": (lambda c: c.get("/nope"), 404, "not_found"),
    "unknown-patient": (lambda c: c.get("/patients/nobody"), 404, "not_found"),
    "unknown-sync": (lambda c: c.get("/syncs/424242"), 404, "not_found"),
    "method-not-allowed": (lambda c: c.put("/payments"), 405, "method_not_allowed"),
    "bad-query": (lambda c: c.get("/patients?limit=0"), 422, "invalid_parameter"),
    "bad-cursor": (lambda c: c.get("/payments?cursor=%%%"), 422, "invalid_parameter"),
    "bad-json": (
        lambda c: c.post("/patients", data=b"{not json", content_type="application/json"),
        400,
        "invalid_json",
    ),
    "not-an-array": (
        lambda c: c.post("/patients", data=b"{}", content_type="application/json"),
        422,
        "invalid_payload",
    ),
    "wrong-media-type": (
        lambda c: c.post("/patients", data=b"[]", content_type="text/plain"),
        415,
        "unsupported_media_type",
    ),
}


@pytest.mark.parametrize("case", list(ERROR_REQUESTS))
def test_every_error_response_is_json_envelope(client: FlaskClient, case: str) -> None:
    send, status, code = ERROR_REQUESTS[case]
    assert_envelope(send(client), status, code)
