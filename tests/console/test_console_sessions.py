"""Console sessions end on the server (SPEC §7, §8): a signed-out cookie opens nothing, anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.db.types import utcnow
from app.extensions import db
from app.models import ConsoleSession
from tests.support.console_support import (
    AUTH_ON,
    READ_TOKEN,
    csrf_of,
    seed_one_patient,
    sign_in,
)
from tests.support.databases import base_config

COOKIE = "console_session"
PAGES = ["/console/", "/console/syncs", "/console/patient?id=p1", "/console/analytics"]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Auth on: one read token, one write token, a fixed secret."""
    return dict(AUTH_ON)


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """One patient ("Lovelace") with one payment of 12.34."""
    seed_one_patient(client)


@pytest.fixture
def other_node(app: Flask, backend: str, database_url: str) -> Iterator[Flask]:
    """A second app instance on the same database: another node behind the balancer.

    It shares nothing with ``app`` but the database (on PostgreSQL, the
    test's transaction, so that it sees what ``app`` committed in it).
    """
    node = create_app(base_config(database_url) | AUTH_ON)
    with node.app_context():
        engine = db.engine
    if backend == "sqlite":
        yield node
    else:
        with app.app_context():
            shared = db.engine.connect()
        with mock.patch.object(engine, "connect", return_value=shared):
            yield node
    engine.dispose()


def sign_out(client: FlaskClient) -> None:
    """Post the sign-out form of the overview page."""
    page = client.get("/console/").get_data(as_text=True)
    assert client.post("/console/sign-out", data={"csrf": csrf_of(page)}).status_code == 303


def replay(client: FlaskClient, cookie: str) -> FlaskClient:
    """A client of the same app holding only a copy of ``cookie``."""
    copy = client.application.test_client()
    copy.set_cookie(COOKIE, cookie)
    return copy


def session_rows(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(ConsoleSession)) or 0


@pytest.mark.parametrize("path", PAGES)
def test_a_copy_of_the_cookie_taken_before_sign_out_opens_nothing(
    client: FlaskClient, seeded: None, path: str
) -> None:
    sign_in(client)
    cookie = client.get_cookie(COOKIE).value
    assert replay(client, cookie).get(path).status_code == 200
    sign_out(client)
    response = replay(client, cookie).get(path)
    assert response.status_code == 401
    page = response.get_data(as_text=True)
    assert 'name="token"' in page
    assert "Lovelace" not in page and "12.34" not in page


def test_sign_out_on_one_node_ends_the_session_on_another(
    client: FlaskClient, other_node: Flask, seeded: None
) -> None:
    sign_in(client)
    cookie = client.get_cookie(COOKIE).value
    elsewhere = other_node.test_client()
    elsewhere.set_cookie(COOKIE, cookie)
    assert elsewhere.get("/console/patient?id=p1").status_code == 200
    sign_out(client)
    response = elsewhere.get("/console/patient?id=p1")
    assert response.status_code == 401
    assert "Lovelace" not in response.get_data(as_text=True)


def test_sign_in_stores_a_session_row_and_sign_out_deletes_it(
    app: Flask, client: FlaskClient
) -> None:
    sign_in(client)
    assert session_rows(app) == 1
    sign_out(client)
    assert session_rows(app) == 0


def test_signing_in_again_ends_the_previous_session(client: FlaskClient) -> None:
    sign_in(client)
    cookie = client.get_cookie(COOKIE).value
    sign_in(client)
    assert replay(client, cookie).get("/console/").status_code == 401
    assert client.get("/console/").status_code == 200


def test_a_session_past_its_expiry_on_the_server_opens_nothing(
    app: Flask, client: FlaskClient
) -> None:
    sign_in(client)
    with app.app_context():
        db.session.execute(
            sa.update(ConsoleSession).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert client.get("/console/").status_code == 401


def test_expired_session_rows_are_deleted_at_the_next_sign_in(
    app: Flask, client: FlaskClient
) -> None:
    sign_in(client)
    with app.app_context():
        db.session.execute(
            sa.update(ConsoleSession).values(expires_at=utcnow() - timedelta(hours=1))
        )
        db.session.commit()
    sign_in(app.test_client())
    assert session_rows(app) == 1


def test_a_signed_out_cookie_is_cleared_from_the_browser(client: FlaskClient) -> None:
    sign_in(client)
    cookie = client.get_cookie(COOKIE).value
    sign_out(client)
    copy = replay(client, cookie)
    copy.get("/console/")
    assert copy.get_cookie(COOKIE) is None or copy.get_cookie(COOKIE).value != cookie


def test_the_bearer_header_needs_no_session_row(app: Flask, client: FlaskClient) -> None:
    response = client.get("/console/", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert response.status_code == 200
    assert session_rows(app) == 0
