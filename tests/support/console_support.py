"""Helpers for the console's tests: sign in through the form, read a page's CSRF token."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.helpers import patient_record, payment_record, post_snapshot

READ_TOKEN = "console-read-token-0123456789"
WRITE_TOKEN = "console-write-token-0123456789"
AUTH_ON = {
    "API_READ_TOKENS": (READ_TOKEN,),
    "API_WRITE_TOKENS": (WRITE_TOKEN,),
    "SECRET_KEY": "test-secret-key-0123456789-0123456789",
}


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def sign_in(client: FlaskClient, token: str = READ_TOKEN, **form: str) -> TestResponse:
    """Load the sign-in form, then post ``token`` with the form's CSRF token."""
    page = client.get("/console/sign-in")
    return client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(page.get_data(as_text=True)), "token": token, **form},
    )


def seed_one_patient(client: FlaskClient) -> None:
    """One patient (p1, "Lovelace") with one payment of 12.34, synced with the write token."""
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    for entity, records in (
        ("patients", [patient_record("p1")]),
        ("payments", [payment_record("m1", "p1", "12.34")]),
    ):
        assert post_snapshot(client, entity, records, headers=headers).status_code == 200
