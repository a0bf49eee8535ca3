"""Console access control (SPEC §4, §7): a read token like the API, never in a URL or cookie."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from markupsafe import escape

from tests.support.console_support import (
    AUTH_ON,
    READ_TOKEN,
    WRITE_TOKEN,
    csrf_of,
    seed_one_patient,
    sign_in,
)

PAGES = [
    "/console/",
    "/console/syncs",
    "/console/syncs/1",
    "/console/patient?id=p1",
    "/console/analytics",
    "/console/nowhere",
]
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Auth on: one read token, one write token, a fixed secret."""
    return dict(AUTH_ON)


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """One patient ("Lovelace") with one payment, through the API with the write token."""
    seed_one_patient(client)


@pytest.mark.parametrize("path", PAGES)
def test_console_page_without_credentials_is_401_with_the_sign_in_form_and_no_data(
    client: FlaskClient, seeded: None, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    page = response.get_data(as_text=True)
    assert 'name="token"' in page
    assert f'name="next" value="{escape(path)}"' in page
    assert "Lovelace" not in page and "12.34" not in page


def test_sign_in_with_a_read_token_opens_the_console(client: FlaskClient, seeded: None) -> None:
    assert sign_in(client).status_code == 303
    response = client.get("/console/patient?id=p1")
    assert response.status_code == 200
    assert "Lovelace" in response.get_data(as_text=True)


def test_sign_in_returns_to_the_page_asked_for(client: FlaskClient) -> None:
    response = sign_in(client, next="/console/analytics?payment_min=1")
    assert response.headers["Location"] == "/console/analytics?payment_min=1"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/console/", "//evil.example/console/", "/patients", "/console\\@evil"],
)
def test_sign_in_never_redirects_off_the_console(client: FlaskClient, target: str) -> None:
    response = sign_in(client, next=target)
    assert response.headers["Location"] == "/console/"


@pytest.mark.parametrize(
    "target",
    [
        "/console/\r\nSet-Cookie: x=1",
        "/console/\n",
        "/console/\r",
        "/console/\x00",
        "/console/\t",
        "/console/\x7f",
        "/console/\u2028",
    ],
)
def test_sign_in_with_a_control_character_in_next_goes_to_the_console_home(
    client: FlaskClient, target: str
) -> None:
    response = sign_in(client, next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/"
    assert client.get("/console/").status_code == 200


def test_sign_in_with_a_bad_token_shows_the_form_again_with_401(client: FlaskClient) -> None:
    response = sign_in(client, token="not-a-token")
    assert response.status_code == 401
    assert "That token is not valid." in response.get_data(as_text=True)
    assert client.get("/console/").status_code == 401


def test_sign_in_without_the_csrf_token_is_refused(client: FlaskClient) -> None:
    client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"token": READ_TOKEN})
    assert response.status_code == 400
    assert client.get("/console/").status_code == 401


def test_session_cookie_holds_no_token(client: FlaskClient) -> None:
    response = sign_in(client, token=WRITE_TOKEN)
    cookie = response.headers["Set-Cookie"]
    assert WRITE_TOKEN not in cookie
    assert client.get_cookie("console_session") is not None
    assert WRITE_TOKEN not in client.get_cookie("console_session").value


def test_session_cookie_is_httponly_and_samesite_strict(client: FlaskClient) -> None:
    cookie = sign_in(client).headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie


def test_removing_the_token_from_the_config_ends_its_sessions(
    app: Any, client: FlaskClient
) -> None:
    sign_in(client)
    assert client.get("/console/").status_code == 200
    app.extensions["auth_tokens"].__init__((), (WRITE_TOKEN,))
    assert client.get("/console/").status_code == 401


def test_sign_out_ends_the_session(client: FlaskClient) -> None:
    sign_in(client)
    page = client.get("/console/").get_data(as_text=True)
    response = client.post("/console/sign-out", data={"csrf": csrf_of(page)})
    assert response.status_code == 303
    assert client.get("/console/").status_code == 401


def test_console_without_the_slash_shows_a_stranger_the_sign_in_form(
    client: FlaskClient, seeded: None
) -> None:
    response = client.get("/console")
    assert response.status_code == 401 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP
    page = response.get_data(as_text=True)
    assert 'name="token"' in page and "Lovelace" not in page


def test_signing_in_from_console_without_the_slash_lands_on_the_overview(
    client: FlaskClient, seeded: None
) -> None:
    response = sign_in(client, next="/console")
    assert response.headers["Location"] == "/console/"


def test_console_without_the_slash_opens_the_overview_when_signed_in(
    client: FlaskClient, seeded: None
) -> None:
    sign_in(client)
    response = client.get("/console", follow_redirects=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.request.path == "/console/"
    assert 'id="figure-patients"' in response.get_data(as_text=True)


def test_console_without_the_slash_answers_other_methods_with_an_html_405(
    client: FlaskClient,
) -> None:
    sign_in(client)
    response = client.post("/console")
    assert response.status_code == 405 and response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == CSP


def test_a_bearer_header_also_opens_console_pages(client: FlaskClient, seeded: None) -> None:
    response = client.get("/console/", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    assert response.status_code == 200


def test_a_bad_bearer_header_is_a_401_page(client: FlaskClient) -> None:
    response = client.get("/console/", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("path", [*PAGES, "/console/sign-in", "/console/static/console.css"])
def test_every_console_response_carries_the_security_headers(
    client: FlaskClient, seeded: None, path: str
) -> None:
    sign_in(client)
    with client.get(path) as response:
        headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_redirects_to_sign_in_carry_the_security_headers(client: FlaskClient) -> None:
    response = client.get("/console/")
    assert response.headers["Content-Security-Policy"] == CSP


@pytest.mark.parametrize("path", [*PAGES, "/console/sign-in"])
def test_no_console_page_contains_a_token(client: FlaskClient, seeded: None, path: str) -> None:
    sign_in(client, token=WRITE_TOKEN)
    body = client.get(path).get_data(as_text=True)
    assert READ_TOKEN not in body and WRITE_TOKEN not in body


def test_console_pages_need_no_write_token_to_post_sign_in(client: FlaskClient) -> None:
    """Sign-in is a POST, but not a write: it is open, and counted as an auth attempt only."""
    assert sign_in(client).status_code == 303


def test_console_is_read_only(client: FlaskClient) -> None:
    sign_in(client)
    response = client.post("/console/syncs", data={})
    assert response.status_code == 405
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("app_config", [AUTH_ON | {"RATELIMIT_READ": "2 per minute"}])
def test_console_pages_spend_the_read_budget_like_the_api(client: FlaskClient) -> None:
    sign_in(client)
    statuses = [client.get("/console/syncs").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("app_config", [AUTH_ON | {"RATELIMIT_AUTH_FAILURES": "2 per minute"}])
def test_failed_sign_ins_beyond_the_budget_get_429(client: FlaskClient) -> None:
    statuses = [sign_in(client, token="wrong").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]
