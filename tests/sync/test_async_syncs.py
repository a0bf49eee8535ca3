"""Asynchronous syncs (SPEC §2): Prefer: respond-async, the queue, and a worker in process.

Each test has a committed database of its own (the worker commits for
real); the worker runs in this process until the queue is empty. Killed
workers, two workers and an unreachable database are in
tests/live/test_sync_worker.py.
"""

from __future__ import annotations

import gzip
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import orm

from app.api.snapshots import preferences
from app.events import feed
from app.events.messages import SYNC_APPLIED
from app.events.position import START
from app.extensions import db
from app.snapshot import iter_snapshot
from app.sync import SyncSettings, queue, run_sync
from app.sync.uploads import open_upload, upload_source
from tests.support.helpers import get_all, patient_record, post_snapshot, sync, to_json
from tests.support.sync_queue import (
    RESPOND_ASYNC,
    post_async,
    queue_sync,
    run_worker,
    scalar,
)

PATIENTS = [patient_record(f"p{n}") for n in range(1, 6)]
# dataPosition: each sync's own state's position (SPEC §8).
TIMES = ("startedAt", "finishedAt", "syncId", "dataPosition")


@pytest.fixture
def client(queue_app: Flask) -> FlaskClient:
    return queue_app.test_client()


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between two syncs of the same body: id, times and
    the data position."""
    return {key: value for key, value in report.items() if key not in TIMES}


def test_respond_async_answers_202_with_location_and_the_queued_state(client: FlaskClient) -> None:
    response = post_async(client, "patients", PATIENTS)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["state"], body["entity"], body["dryRun"]) == ("queued", "patients", False)
    assert response.headers["Location"] == f"/syncs/{body['syncId']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert client.get("/patients").get_json() == []


def test_queued_sync_shows_its_state_and_acceptance_until_a_worker_applies_it(
    client: FlaskClient,
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    shown = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert shown == queued
    assert set(shown) == {"syncId", "entity", "dryRun", "state", "acceptedAt"}


def test_worker_applies_an_accepted_sync_with_the_report_of_a_synchronous_one(
    queue_app: Flask, client: FlaskClient, app: Flask
) -> None:
    queued = queue_sync(client, "patients", [*PATIENTS, {"externalId": "bad"}])
    assert run_worker(queue_app) == 1
    finished = client.get(f"/syncs/{queued['syncId']}").get_json()
    synchronous = sync(app.test_client(), "patients", [*PATIENTS, {"externalId": "bad"}])
    assert finished["state"] == "applied"
    assert comparable(finished) == comparable(synchronous)
    assert [p["externalId"] for p in get_all(client, "/patients")] == ["p1", "p2", "p3", "p4", "p5"]


def test_a_gzip_upload_is_applied_like_a_plain_one(queue_app: Flask, client: FlaskClient) -> None:
    queued = queue_sync(client, "patients", PATIENTS, gzipped=True)
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert (report["state"], report["created"]) == ("applied", 5)


def test_worker_applies_queued_syncs_in_the_order_they_were_accepted(
    queue_app: Flask, client: FlaskClient
) -> None:
    first = queue_sync(client, "patients", PATIENTS)
    second = queue_sync(
        client, "patients", [patient_record("p1", firstName="Second"), *PATIENTS[1:]]
    )
    third = queue_sync(client, "patients", [patient_record("p1", firstName="Third"), *PATIENTS[1:]])
    assert run_worker(queue_app) == 3
    reports = [client.get(f"/syncs/{q['syncId']}").get_json() for q in (first, second, third)]
    assert [(r["created"], r["updated"]) for r in reports] == [(5, 0), (0, 1), (0, 1)]
    assert reports[0]["startedAt"] < reports[1]["startedAt"] < reports[2]["startedAt"]
    assert client.get("/patients/p1").get_json()["firstName"] == "Third"


def test_guard_refusal_ends_refused_with_the_409_body_and_changes_nothing(
    queue_app: Flask, client: FlaskClient
) -> None:
    sync(client, "patients", PATIENTS)
    refused_sync = post_snapshot(client, "patients", PATIENTS[:1])
    queued = queue_sync(client, "patients", PATIENTS[:1])
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert report["state"] == "refused"
    assert report["error"] == refused_sync.get_json()["error"]
    assert report["error"]["code"] == "mass_delete_refused"
    assert len(get_all(client, "/patients")) == 5


def test_force_is_kept_with_the_upload_and_honoured_by_the_worker(
    queue_app: Flask, client: FlaskClient
) -> None:
    sync(client, "patients", PATIENTS)
    queued = queue_sync(client, "patients", PATIENTS[:1], query="?force=true")
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert (report["state"], report["deleted"]) == ("applied", 4)
    assert [p["externalId"] for p in get_all(client, "/patients")] == ["p1"]


def test_async_dry_run_ends_applied_with_dry_run_true_and_changes_nothing(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS, query="?dry_run=true")
    assert queued["dryRun"] is True
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert (report["state"], report["dryRun"], report["created"]) == ("applied", True, 5)
    assert client.get("/patients").get_json() == []


def test_bad_json_in_an_accepted_upload_ends_failed_with_invalid_json(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", b'[{"externalId": "p1",')
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    synchronous = post_snapshot(client, "patients", b'[{"externalId": "p1",')
    assert report["state"] == "failed"
    assert report["error"] == synchronous.get_json()["error"]
    assert report["error"]["code"] == "invalid_json"


def test_a_body_that_is_not_an_array_ends_failed_with_invalid_payload(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", {"externalId": "p1"})
    run_worker(queue_app)
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert (report["state"], report["error"]["code"]) == ("failed", "invalid_payload")


def test_stored_upload_is_kept_until_the_sync_finished_then_deleted(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    parts = "SELECT count(*) FROM sync_uploads WHERE sync_id = :id"
    assert scalar(queue_app, parts, id=queued["syncId"]) >= 1
    run_worker(queue_app)
    assert scalar(queue_app, parts, id=queued["syncId"]) == 0


def test_upload_is_stored_compressed(queue_app: Flask, client: FlaskClient) -> None:
    records = [patient_record(f"p{n}") for n in range(2000)]
    queued = queue_sync(client, "patients", records)
    stored = scalar(
        queue_app,
        "SELECT sum(length(chunk)) FROM sync_uploads WHERE sync_id = :id",
        id=queued["syncId"],
    )
    sent = len(to_json(records).encode())
    assert stored < sent / 4


def test_a_gzip_bomb_is_refused_at_acceptance_and_nothing_is_queued(
    queue_app: Flask, client: FlaskClient
) -> None:
    queue_app.config["MAX_CONTENT_LENGTH"] = 10_000
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    response = client.post(
        "/patients",
        data=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip", **RESPOND_ASYNC},
    )
    assert response.status_code == 413
    assert scalar(queue_app, "SELECT count(*) FROM sync_runs") == 0


def test_bad_gzip_is_refused_at_acceptance(queue_app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/patients",
        data=b"not gzip at all",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip", **RESPOND_ASYNC},
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "invalid_json")
    assert scalar(queue_app, "SELECT count(*) FROM sync_uploads") == 0


def test_wrong_content_type_is_refused_at_acceptance(client: FlaskClient) -> None:
    response = client.post(
        "/patients", data=b"[]", headers={"Content-Type": "text/plain", **RESPOND_ASYNC}
    )
    assert response.status_code == 415


def test_several_preferences_in_one_header_still_ask_for_an_async_sync(
    client: FlaskClient,
) -> None:
    response = post_snapshot(
        client, "patients", PATIENTS, headers={"Prefer": "wait=10, Respond-Async"}
    )
    assert response.status_code == 202


def test_other_preferences_leave_the_sync_synchronous(client: FlaskClient) -> None:
    response = post_snapshot(
        client, "patients", PATIENTS, headers={"Prefer": 'handling=lenient; x="respond-async"'}
    )
    assert response.status_code == 200
    assert response.get_json()["state"] == "applied"


def test_prefer_names_are_read_as_rfc_7240_writes_them() -> None:
    assert preferences(["respond-async, wait=10", 'foo="a,b;respond-async"; bar']) == {
        "respond-async",
        "wait",
        "foo",
    }


def test_queued_sync_applied_after_a_later_synchronous_one_is_not_missed_by_the_feed(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    later = sync(client, "patients", PATIENTS[:4])
    assert queued["syncId"] < later["syncId"]
    # A consumer that processed the synchronous sync, and a relay past it.
    assert client.get(f"/syncs?after={later['syncId']}").get_json() == []
    with queue_app.app_context(), db.engine.connect() as connection:
        past = feed.read_window(connection, START, 1000).end
    run_worker(queue_app)
    listed = client.get(f"/syncs?after={later['syncId']}").get_json()
    assert [(s["syncId"], s["state"]) for s in listed] == [(queued["syncId"], "applied")]
    everything = client.get(f"/syncs?after={queued['syncId'] - 1}").get_json()
    assert [s["syncId"] for s in everything] == [later["syncId"], queued["syncId"]]
    with queue_app.app_context(), db.engine.connect() as connection:
        published = feed.read_window(connection, past, 1000).events
        applied = [
            e.message["syncId"]
            for e in feed.read_window(connection, START, 1000).events
            if e.routing_key == SYNC_APPLIED
        ]
    assert [e.message["syncId"] for e in published if e.routing_key == SYNC_APPLIED] == [
        queued["syncId"]
    ]
    assert applied == [later["syncId"], queued["syncId"]]


def test_unfinished_syncs_are_listed_with_their_state_but_not_after_a_sync(
    client: FlaskClient,
) -> None:
    first = sync(client, "patients", PATIENTS)
    queued = queue_sync(client, "patients", PATIENTS)
    listed = client.get("/syncs").get_json()
    assert [(s["syncId"], s["state"]) for s in listed] == [
        (queued["syncId"], "queued"),
        (first["syncId"], "applied"),
    ]
    assert client.get(f"/syncs?after={first['syncId'] - 1}").get_json() == [
        {key: value for key, value in first.items() if key != "errors"}
    ]


def test_metrics_show_the_queue_depth_and_the_oldest_age(
    queue_app: Flask, client: FlaskClient
) -> None:
    queue_sync(client, "patients", PATIENTS)
    queue_sync(client, "patients", PATIENTS)
    figures = metric_values(client)
    assert figures["sync_queue_depth"] == 2
    assert figures["sync_queue_oldest_age_seconds"] >= 0
    run_worker(queue_app)
    after = metric_values(client)
    assert (after["sync_queue_depth"], after["sync_queue_oldest_age_seconds"]) == (0, 0)


def metric_values(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("sync_queue")
    }


def test_relay_publishes_sync_applied_for_an_async_sync(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    run_worker(queue_app)
    with queue_app.app_context(), db.engine.connect() as connection:
        events = feed.read_window(connection, START, 1000).events
    assert [e.routing_key for e in events] == ["patients.created"] * 5 + [SYNC_APPLIED]
    assert events[-1].message["syncId"] == queued["syncId"]


def test_console_lists_a_queued_sync_with_its_state_and_age(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    page = client.get("/console/syncs").get_data(as_text=True)
    assert "queued" in page and "accepted less than a minute ago" in page
    one = client.get(f"/console/syncs/{queued['syncId']}").get_data(as_text=True)
    assert "Queued: accepted" in one


def test_a_queued_sync_has_no_changes_yet(client: FlaskClient) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    response = client.get(f"/syncs/{queued['syncId']}/changes")
    assert (response.status_code, response.get_json()) == (200, [])


def test_the_feed_pages_in_the_order_syncs_finished(queue_app: Flask, client: FlaskClient) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    later = [sync(client, "patients", PATIENTS[:4]), sync(client, "patients", PATIENTS[:4])]
    run_worker(queue_app)
    listed = get_all(client, f"/syncs?after={queued['syncId'] - 1}&limit=1")
    assert [s["syncId"] for s in listed] == [
        later[0]["syncId"],
        later[1]["syncId"],
        queued["syncId"],
    ]


def test_a_sync_claimed_by_another_worker_is_never_applied_by_this_one(
    queue_app: Flask, client: FlaskClient
) -> None:
    queued = queue_sync(client, "patients", PATIENTS)
    with queue_app.app_context(), db.engine.connect() as connection:
        mine = queue.claim_next(connection, "worker-a")
        assert mine is not None and mine.sync_id == queued["syncId"]
        stolen = replace(mine, claimant="worker-b")
        with (
            orm.Session(bind=connection) as session,
            upload_source(session) as upload,
            pytest.raises(queue.LostClaim),
        ):
            run_sync(
                session,
                "patients",
                iter_snapshot(open_upload(upload, mine.sync_id, 1 << 20), max_record_bytes=1024),
                settings=SyncSettings.from_config(queue_app.config),
                claimed=stolen,
            )
    assert client.get(f"/syncs/{queued['syncId']}").get_json()["state"] == "running"
    assert client.get("/patients").get_json() == []


def test_analytics_syncs_list_unfinished_and_refused_syncs_without_counts(
    queue_app: Flask, client: FlaskClient
) -> None:
    sync(client, "patients", PATIENTS)
    refused = queue_sync(client, "patients", PATIENTS[:1])
    run_worker(queue_app)
    queued = queue_sync(client, "patients", PATIENTS)
    applied, refused_item, queued_item = get_all(client, "/analytics/syncs")
    assert (applied["state"], applied["received"]) == ("applied", 5)
    assert refused_item["syncId"] == refused["syncId"]
    assert refused_item["state"] == "refused"
    assert refused_item["received"] is None
    assert refused_item["durationSeconds"] is not None
    assert queued_item["syncId"] == queued["syncId"]
    assert queued_item["state"] == "queued"
    assert (queued_item["startedAt"], queued_item["durationSeconds"]) == (None, None)
    assert queued_item["created"] is None
