"""Data positions (SPEC §8) on one database: every read and sync report says the state it reflects.

Without replicas there is one database, always current, so a presented
position changes nothing; what these prove is that positions are emitted,
ordered, carried by ETags and cursors, and that a value that is not one of
ours is ignored (tests/topology/ proves what replicas do with them).
"""

from __future__ import annotations

import base64
import json

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.helpers import patient_record, sync


def position(response: TestResponse) -> int:
    return int(response.headers["X-Data-Position"])


def test_every_read_says_its_data_position(client: FlaskClient) -> None:
    before = position(client.get("/patients"))
    report = sync(client, "patients", [patient_record("p1")])
    urls = ("/patients", "/patients/p1", "/patients/nobody", f"/syncs/{report['syncId']}")
    after = {position(client.get(url)) for url in urls}
    # One state, one position; the sync's own is above every earlier state's,
    # and the state that shows it is at it or later.
    assert len(after) == 1
    assert before < int(report["dataPosition"]) <= after.pop()


def test_the_stored_report_answers_the_position_the_sync_answered(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")])
    stored = client.get(f"/syncs/{report['syncId']}").get_json()
    assert stored["dataPosition"] == report["dataPosition"]


def test_a_sync_moves_the_position_forward(client: FlaskClient) -> None:
    first = sync(client, "patients", [patient_record("p1")])
    second = sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    assert int(second["dataPosition"]) > int(first["dataPosition"])
    response = client.post("/patients", json=[patient_record("p1")])
    assert response.headers["X-Data-Position"] == response.get_json()["dataPosition"]


def test_the_etag_and_the_304_carry_the_position(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")])
    response = client.get("/patients")
    assert position(response) >= int(report["dataPosition"])
    assert response.headers["ETag"].startswith(f'"{position(response)}.')
    again = client.get("/patients", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert position(again) == position(response)


def test_a_cursor_pins_the_state_its_first_page_showed(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    first = client.get("/patients?limit=1")
    cursor = first.headers["Link"].split("cursor=")[1].split(">")[0]
    pin = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))[-1]
    assert int(pin["v"].split(".")[0]) == position(first)


def test_a_position_that_is_not_ours_is_ignored(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    for sent in ("garbage", "-1", "9" * 40, "\u00e9", "999999999"):
        response = client.get("/patients", headers={"X-Data-Position": sent})
        assert response.status_code == 200, sent
        assert [p["externalId"] for p in response.get_json()] == ["p1"]
