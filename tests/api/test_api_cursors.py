"""Cursors a client forged (SPEC §3, §4): 422 invalid_parameter naming cursor, never a 500."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import error_code, patient_record, sync

# The calendar's ends, once in UTC: OverflowError where an instant is read leniently.
BEYOND_THE_CALENDAR = ["9999-12-31T23:59:59.999999-14:00", "0001-01-01T00:00:00+14:00"]


def cursor(*parts: Any) -> str:
    """A cursor as the service writes them: URL-safe base64 of a JSON list, unpadded."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def assert_cursor_refused(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert error_code(response) == "invalid_parameter"
    assert response.get_json()["error"]["details"]["parameter"] == "cursor"


@pytest.mark.parametrize("at", [*BEYOND_THE_CALENDAR, "2026-12-06T23.5Z", "yesterday", 5])
def test_a_pin_that_is_not_an_instant_is_refused(client: FlaskClient, at: Any) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert_cursor_refused(client, f"/patients?cursor={cursor('id', 1, {'v': 'x', 'at': at})}")


def test_a_pin_of_another_shape_is_refused(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    forged = cursor("id", 1, {"v": "x", "at": "2026-12-06T23:00:00Z", "more": 1})
    assert_cursor_refused(client, f"/patients?cursor={forged}")


@pytest.mark.parametrize("at", BEYOND_THE_CALENDAR)
def test_a_history_cursor_beyond_the_calendar_is_refused(client: FlaskClient, at: str) -> None:
    sync(client, "patients", [patient_record("a")])
    assert_cursor_refused(client, f"/patients/a/history?cursor={cursor('-validFrom', at)}")
