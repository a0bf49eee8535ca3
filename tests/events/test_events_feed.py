"""The change events the relay publishes (SPEC §6), read in-process from the feed.

No broker here: what each event says, in what order, with which id, and how
far the stored position and the lag go. tests/test_events_relay.py runs the
relay itself against RabbitMQ.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from app.db.types import utcnow
from app.events import feed, position
from app.events.messages import SYNC_APPLIED, AppliedSync, Event, event_id
from app.events.position import START, Position
from app.events.status import RATE_FRESH_SECONDS, relay_status
from app.extensions import db
from app.models import EventRelayPosition, SyncRun
from tests.support.databases import base_config, scratch_database
from tests.support.events_support import expected_events
from tests.support.helpers import get_all, patient_record, payment_record, random_syncs, sync

ROOT = Path(__file__).resolve().parents[2]
OPS = ("created", "updated", "deleted", "restored")
COUNTS = ("received", "created", "updated", "restored", "unchanged", "rejected", "deleted")
CHANGE_KEYS = {"eventId", "syncId", "entity", "externalId", "op", "changedFields", "occurredAt"}
SYNC_SEQUENCE: dict[str, Any] = {"rounds": 8, "patients": 8, "payments": 12, "keep": 0.7}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget and no mass-delete guard (the sequences delete a lot); no broker."""
    return {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6, "EVENTS_BROKER_URL": None}


def connection() -> sa.Connection:
    """The test's database connection (inside its rolled-back transaction on PostgreSQL)."""
    return db.session.connection()


def events(after: Position = START, window: int = 1000) -> list[Event]:
    """Every event after ``after``, read window by window."""
    found: list[Event] = []
    while (read := feed.read_window(connection(), after, window)).events:
        assert len(read.events) <= window
        found += read.events
        after = read.end
    return found


def sync_samples(client: FlaskClient) -> list[dict[str, Any]]:
    """The sample files, then 501's amount changed, then 503 deleted, then 503 back."""
    payments = (ROOT / "samples" / "payments.json").read_bytes()
    changed = payments.replace(b'"amount": 4.46', b'"amount": 4.47')
    without_503 = changed.replace(
        b'''"amount": 7.10,
  "patientId": "5",
  "externalId": "503"''',
        b'''"amount": 7.10,
  "patientId": "5",
  "externalId": "509"''',
    )
    assert changed != payments and without_503 != changed
    return [
        sync(client, "patients", (ROOT / "samples" / "patients.json").read_bytes()),
        sync(client, "payments", payments),
        sync(client, "payments", changed),
        sync(client, "payments", without_503),
        sync(client, "payments", changed),
    ]


def test_every_change_of_the_samples_is_an_event_with_its_routing_key(
    app: Flask, client: FlaskClient
) -> None:
    reports = sync_samples(client)
    with app.app_context():
        published = events(window=2)
    by_sync: dict[int, list[Event]] = {}
    for event in published:
        by_sync.setdefault(event.message["syncId"], []).append(event)
    assert list(by_sync) == [report["syncId"] for report in reports]
    for report in reports:
        *changes, applied = by_sync[report["syncId"]]
        counted = Counter(event.routing_key for event in changes)
        assert counted == Counter(
            {f"{report['entity']}.{op}": report[op] for op in OPS if report[op]}
        ), report
        assert applied.routing_key == SYNC_APPLIED
        assert applied.message["counts"] == {name: report[name] for name in COUNTS}
        assert set(applied.message) == CHANGE_KEYS | {"counts"}
        assert (applied.message["externalId"], applied.message["changedFields"]) == (None, [])
        assert applied.message["occurredAt"] == report["startedAt"]
        for event in changes:
            assert set(event.message) == CHANGE_KEYS
            assert event.routing_key == f"{event.message['entity']}.{event.message['op']}"
            assert event.message["occurredAt"] == report["startedAt"]
    amount_changed, renamed, restored = (by_sync[report["syncId"]] for report in reports[2:])
    assert [(e.routing_key, e.message.get("externalId")) for e in amount_changed] == [
        ("payments.updated", "501"),
        (SYNC_APPLIED, None),
    ]
    assert amount_changed[0].message["changedFields"] == ["amount"]
    assert [(e.routing_key, e.message.get("externalId")) for e in renamed[:2]] == [
        ("payments.deleted", "503"),
        ("payments.created", "509"),
    ]
    assert restored[0].message | {"eventId": None, "occurredAt": None} == {
        "eventId": None,
        "syncId": reports[4]["syncId"],
        "entity": "payments",
        "externalId": "503",
        "op": "restored",
        "changedFields": [],
        "occurredAt": None,
    }


@pytest.mark.parametrize("seed", range(2))
def test_events_say_what_the_changes_feed_says(app: Flask, client: FlaskClient, seed: int) -> None:
    reports = [
        sync(client, entity, records)
        for entity, records in random_syncs(random.Random(seed), **SYNC_SEQUENCE)
    ]
    api = {
        report["syncId"]: [
            (change["entity"], change["externalId"], change["op"], change["changedFields"])
            for change in get_all(client, f"/syncs/{report['syncId']}/changes")
        ]
        for report in reports
    }
    with app.app_context():
        published = [
            event.message for event in events(window=5) if event.routing_key != SYNC_APPLIED
        ]
    relayed: dict[int, list[tuple[str, str, str, list[str]]]] = {n: [] for n in api}
    for message in published:
        relayed[message["syncId"]].append(
            (message["entity"], message["externalId"], message["op"], message["changedFields"])
        )
    assert relayed == api


def test_no_event_carries_a_name_birth_date_amount_or_patient_id(
    app: Flask, client: FlaskClient
) -> None:
    secrets = {
        "patient": "ext-Secret-77",
        "first": "Zebediah",
        "last": "Quuxworthy",
        "middle": "Marmaduke",
        "birth": "1911-11-11",
        "amount": "12345.67",
        "new_amount": "76543.21",
        "other_patient": "ext-Other-88",
    }
    sync(
        client,
        "patients",
        [
            patient_record(
                secrets["patient"],
                firstName=secrets["first"],
                lastName=secrets["last"],
                middleName=secrets["middle"],
                dateOfBirth=secrets["birth"],
            ),
            patient_record(secrets["other_patient"]),
        ],
    )
    sync(client, "payments", [payment_record("pay-1", secrets["patient"], secrets["amount"])])
    sync(
        client,
        "payments",
        [payment_record("pay-1", secrets["other_patient"], secrets["new_amount"])],
    )
    sync(client, "payments", [])
    with app.app_context():
        bodies = [(event.message["entity"], event.body().decode()) for event in events()]
    assert len(bodies) == 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1
    for entity, body in bodies:
        for name in ("first", "last", "middle", "birth", "amount", "new_amount"):
            assert secrets[name] not in body
        if entity == "payments":
            assert secrets["patient"] not in body and secrets["other_patient"] not in body


def test_event_ids_are_the_same_when_the_events_are_read_again(
    app: Flask, client: FlaskClient
) -> None:
    last = sync_samples(client)[-1]
    with app.app_context():
        first = [event.event_id for event in events(window=3)]
        again = [event.event_id for event in events(window=1000)]
    assert first == again
    assert len(set(first)) == len(first)
    assert all(uuid.UUID(value).version == 5 for value in first)
    with app.app_context():
        uid = db.session.get(SyncRun, last["syncId"]).uid
    assert first[-1] == str(uuid.uuid5(uuid.UUID(uid), "sync"))


def test_every_recorded_sync_gets_a_random_identity_of_its_own(
    app: Flask, client: FlaskClient
) -> None:
    reports = sync_samples(client)
    with app.app_context():
        uids = [db.session.get(SyncRun, report["syncId"]).uid for report in reports]
    assert len(set(uids)) == len(uids)
    assert all(uuid.UUID(uid).version == 4 for uid in uids)


def test_syncs_recorded_before_they_had_an_identity_keep_their_published_event_ids() -> None:
    legacy = AppliedSync(
        7,
        "payments",
        "2026-12-01T00:00:00.000000+00:00",
        dict.fromkeys(
            ("received", "created", "updated", "restored", "unchanged", "rejected", "deleted"), 0
        ),
    )
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, "events.patient-payments")
    assert event_id(legacy, 12) == str(uuid.uuid5(namespace, "7:payments:12"))
    assert event_id(legacy) == str(uuid.uuid5(namespace, "7:sync"))


def test_a_database_restored_from_an_older_backup_never_reuses_an_event_id(
    committed_app: Flask, backend: str, tmp_path: Path
) -> None:
    """Sync ids repeat after a restore; the changes they name are new, and so are their ids."""
    client = committed_app.test_client()
    sync(client, "patients", [patient_record("1"), patient_record("2")])
    with committed_app.app_context():
        db.engine.dispose()
        url = db.engine.url
    with backup_of(url, backend, tmp_path) as restored_url:
        original = sync(client, "payments", [payment_record("m1", "1", amount="1.00")])
        restored_app = create_app(base_config(restored_url) | {"RATELIMIT_ENABLED": False})
        restored = sync(
            restored_app.test_client(), "payments", [payment_record("m1", "2", amount="9.00")]
        )
        assert original["syncId"] == restored["syncId"]
        ids = [
            {
                sync_id: {
                    event.event_id for event in events_of if event.message["syncId"] == sync_id
                }
                for sync_id in (1, 2)
            }
            for events_of in map(expected_events, (committed_app, restored_app))
        ]
        with restored_app.app_context():
            db.engine.dispose()
    assert ids[0][1] == ids[1][1] and len(ids[0][1]) == 3  # the backup's own sync: the same
    assert len(ids[0][2]) == len(ids[1][2]) == 2
    assert ids[0][2] & ids[1][2] == set()


@contextmanager
def backup_of(url: sa.URL, backend: str, tmp_path: Path) -> Iterator[str]:
    """A copy of the database at ``url`` as it stands now, as a restore of a backup would be."""
    if backend == "sqlite":
        copy = tmp_path / "restored.db"
        shutil.copyfile(url.database or "", copy)
        yield f"sqlite:///{copy}"
        return
    with scratch_database("restored", template=url.database) as copy_url:
        yield copy_url


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_any_window_size_reads_the_same_events_and_resumes_from_its_end(
    app: Flask, client: FlaskClient, window: int
) -> None:
    last = sync_samples(client)[-1]
    sync(client, "patients", [patient_record("5")], query="?dry_run=true")
    with app.app_context():
        whole = [event.event_id for event in events()]
        after, seen = START, []
        while (read := feed.read_window(connection(), after, window)).events:
            seen += [event.event_id for event in read.events]
            assert [event.event_id for event in events(read.end)] == whole[len(seen) :]
            after = read.end
    assert seen == whole
    assert (after.sync_id, after.sync_complete) == (last["syncId"], True)


def test_a_dry_run_has_no_events(app: Flask, client: FlaskClient) -> None:
    applied = sync(client, "patients", [patient_record("a")])["syncId"]
    sync(client, "patients", [patient_record("b")], query="?dry_run=true")
    with app.app_context():
        assert [(e.routing_key, e.message["syncId"]) for e in events()] == [
            ("patients.created", applied),
            (SYNC_APPLIED, applied),
        ]


def test_the_position_moves_only_from_where_the_mover_expected_it(
    app: Flask, client: FlaskClient
) -> None:
    report = sync(client, "patients", [patient_record("a"), patient_record("b")])
    with app.app_context():
        position.ensure(connection())
        middle = Position(report["syncId"], 1, sync_complete=False, sync_events=1)
        assert position.store(connection(), START, middle, 1)
        assert not position.store(connection(), START, middle, 1)
        assert position.load(connection()) == middle
        assert relay_status(db.session, configured=False).published_total == 1


def test_the_lag_is_the_number_of_events_not_yet_confirmed(app: Flask, client: FlaskClient) -> None:
    sync_samples(client)
    with app.app_context():
        total = len(events())
        assert relay_status(db.session, configured=False) is None
        assert relay_status(db.session, configured=True).lag == total
        position.ensure(connection())
        confirmed, at = 0, START
        while (read := feed.read_window(connection(), at, 2)).events:
            assert position.store(connection(), at, read.end, len(read.events))
            confirmed, at = confirmed + len(read.events), read.end
            status = relay_status(db.session, configured=False)
            assert (status.lag, status.published_total) == (total - confirmed, confirmed)
        db.session.commit()
    report = sync(client, "patients", [patient_record("5")])
    with app.app_context():
        assert relay_status(db.session, configured=False).lag == sum(report[op] for op in OPS) + 1


def relay_series(client: FlaskClient) -> dict[str, float]:
    """The events_* samples of /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.name.startswith("events_")
    }


def test_metrics_show_the_relay_once_it_ran(app: Flask, client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert relay_series(client) == {}
    with app.app_context():
        position.ensure(connection())
        [first, *_] = events()
        one = Position(report["syncId"], 0, sync_complete=False, sync_events=1)
        assert first.message["syncId"] == report["syncId"]
        assert position.store(connection(), START, one, 1)
        db.session.commit()
    assert relay_series(client) == {
        "events_relay_lag": 2.0,
        "events_published_total": 1.0,
        "events_relay_publish_rate": 0.0,
    }


def test_metrics_show_the_publish_rate_of_the_latest_window_while_it_is_fresh(
    app: Flask, client: FlaskClient
) -> None:
    report = sync(client, "patients", [patient_record("a"), patient_record("b")])
    with app.app_context():
        position.ensure(connection())
        one = Position(report["syncId"], 0, sync_complete=False, sync_events=1)
        assert position.store(connection(), START, one, 1, rate=8500.0)
        db.session.commit()
    assert relay_series(client)["events_relay_publish_rate"] == 8500.0
    with app.app_context():
        # A relay that stored nothing for a while is idle or gone: its rate is 0.
        stale = utcnow() - timedelta(seconds=RATE_FRESH_SECONDS + 1)
        connection().execute(sa.update(EventRelayPosition).values(updated_at=stale))
        db.session.commit()
    assert relay_series(client)["events_relay_publish_rate"] == 0.0


class TestConfiguredRelay:
    """EVENTS_BROKER_URL set: the lag shows before the relay first ran."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"EVENTS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}

    def test_metrics_count_every_event_as_lag_before_the_first_run(
        self, client: FlaskClient
    ) -> None:
        sync(client, "patients", [patient_record("a"), patient_record("b")])
        assert relay_series(client) == {
            "events_relay_lag": 3.0,
            "events_published_total": 0.0,
            "events_relay_publish_rate": 0.0,
        }


def test_metrics_are_served_without_the_relay_series_when_the_database_is_down() -> None:
    app = create_app(
        base_config("postgresql://postgres@127.0.0.1:1/none")
        | {"EVENTS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}
    )
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert b"http_request_duration_seconds" in response.data
    assert b"events_relay_lag" not in response.data


def test_relay_without_a_broker_url_exits_2_with_one_line(app: Flask) -> None:
    app.config["EVENTS_BROKER_URL"] = None
    result = app.test_cli_runner().invoke(args=["events", "relay"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "EVENTS_BROKER_URL is not set" in result.output
