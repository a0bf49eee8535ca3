"""`flask events relay` against the real RabbitMQ (SPEC §6): at least once, in order, one relay.

Each test syncs into a database of its own for real, runs relay processes
on it, and reads what a consumer bound to the test's own exchange receives.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from pika.frame import Method
from pika.spec import Basic

from app.events.messages import SYNC_APPLIED
from app.events.publisher import BrokerError, Publisher
from app.events.relay import Backoff, StopFlag
from app.extensions import db
from tests.support.events_support import (
    Consumer,
    Received,
    StartRelay,
    expected_events,
    stored,
)
from tests.support.helpers import patient_record, payment_record, sync
from tests.support.live_server import BIN, ROOT

OPS = ("created", "updated", "deleted", "restored")
COUNTS = ("received", "created", "updated", "restored", "unchanged", "rejected", "deleted")
# Enough events (4,000) that a relay publishing 50 at a time is caught mid-stream.
PAYMENTS = 1200


def sync_samples(app: Flask) -> list[dict[str, Any]]:
    """The sample files, then 501's amount changed (the issue's walk-through)."""
    client = app.test_client()
    payments = (ROOT / "samples" / "payments.json").read_bytes()
    return [
        sync(client, "patients", (ROOT / "samples" / "patients.json").read_bytes()),
        sync(client, "payments", payments),
        sync(client, "payments", payments.replace(b'"amount": 4.46', b'"amount": 4.47')),
    ]


def sync_many(app: Flask) -> list[dict[str, Any]]:
    """PAYMENTS payments created, all their amounts changed, a third deleted, then restored."""
    client = app.test_client()
    patients = [patient_record(f"p{n}") for n in range(10)]

    def payments(amount: str, upto: int = PAYMENTS) -> list[dict[str, Any]]:
        return [payment_record(f"m{n}", f"p{n % 10}", amount) for n in range(upto)]

    return [
        sync(client, "patients", patients),
        sync(client, "payments", payments("1.00")),
        sync(client, "payments", payments("2.00")),
        sync(client, "payments", payments("2.00", upto=PAYMENTS * 2 // 3)),
        sync(client, "payments", payments("3.00")),
    ]


def by_event_id(received: list[Received]) -> Counter[str]:
    """How many times each eventId arrived."""
    return Counter(message.message["eventId"] for message in received)


def wait_until_published(app: Flask, at_least: int, timeout: float = 30.0) -> int:
    """Poll the stored position until the relay confirmed ``at_least`` events; that number."""
    deadline = time.monotonic() + timeout
    while (published := stored(app)[1]) < at_least:
        assert time.monotonic() < deadline, f"only {published} events confirmed"
        time.sleep(0.005)
    return published


def test_the_walk_through_delivers_each_change_with_its_routing_key_and_counts(
    committed_app: Flask, consumer: Consumer, start_relay: StartRelay
) -> None:
    relay = start_relay(consumer.exchange)
    relay.wait_for_log("connected to the broker")
    reports = sync_samples(committed_app)
    expected = sum(report[op] for report in reports for op in OPS) + len(reports)
    received = consumer.receive(expected)
    assert [message.routing_key for message in received] == ["patients.created"] * 4 + [
        SYNC_APPLIED
    ] + ["payments.created"] * 3 + [SYNC_APPLIED, "payments.updated", SYNC_APPLIED]
    assert [m.message["externalId"] for m in received if m.routing_key != SYNC_APPLIED] == [
        "5",
        "4",
        "8",
        "15",
        "501",
        "502",
        "503",
        "501",
    ]
    summaries = [m.message for m in received if m.routing_key == SYNC_APPLIED]
    assert [summary["counts"] for summary in summaries] == [
        {name: report[name] for name in COUNTS} for report in reports
    ]
    samples = (ROOT / "samples" / "patients.json").read_text()
    for message in received:
        # No name or birth date of the samples travels (test_events_feed.py checks amounts).
        for value in (
            "Rick",
            "Deckard",
            "Pris",
            "Stratton",
            "Tyrell",
            "2094-02-01",
            "2093-12-20",
            "2056-04-01",
        ):
            assert value in samples and value.encode() not in message.body
        assert message.properties.delivery_mode == 2
        assert message.properties.content_type == "application/json"
        assert message.properties.message_id == message.message["eventId"]
    assert [m.message for m in received] == [e.message for e in expected_events(committed_app)]
    relay.signal(signal.SIGTERM)
    assert relay.wait() == 0
    assert stored(committed_app)[1] == expected
    assert consumer.quiet_for(0.3) == received


@pytest.mark.postgresql_only
def test_a_relay_killed_mid_stream_and_restarted_delivers_every_event_in_order(
    committed_app: Flask, consumer: Consumer, start_relay: StartRelay
) -> None:
    sync_many(committed_app)
    expected = [event.event_id for event in expected_events(committed_app)]
    relay = start_relay(consumer.exchange, EVENTS_BATCH_SIZE="50")
    at_kill = wait_until_published(committed_app, len(expected) // 4)
    relay.signal(signal.SIGKILL)
    relay.wait()
    assert stored(committed_app)[1] < len(expected), "the relay was not killed mid-stream"
    start_relay(consumer.exchange, EVENTS_BATCH_SIZE="50")
    received = consumer.receive_event_ids(expected)
    assert set(by_event_id(received)) == set(expected)
    # In sync order per record: first arrivals follow the syncs, and so does the stream.
    first_seen: dict[str, Received] = {}
    for message in received:
        first_seen.setdefault(message.message["eventId"], message)
    syncs_of: dict[tuple[str, str], list[int]] = {}
    for message in first_seen.values():
        if message.routing_key != SYNC_APPLIED:
            key = (message.message["entity"], message.message["externalId"])
            syncs_of.setdefault(key, []).append(message.message["syncId"])
    assert all(syncs == sorted(syncs) for syncs in syncs_of.values())
    assert [m for m in first_seen] == expected
    assert at_kill > 0


@pytest.mark.postgresql_only
def test_sigterm_finishes_the_window_in_flight_stores_its_position_and_exits_0(
    committed_app: Flask, consumer: Consumer, start_relay: StartRelay
) -> None:
    sync_many(committed_app)
    total = len(expected_events(committed_app))
    relay = start_relay(consumer.exchange, EVENTS_BATCH_SIZE="50")
    wait_until_published(committed_app, total // 4)
    relay.signal(signal.SIGTERM)
    assert relay.wait() == 0
    position, published = stored(committed_app)
    assert 0 < published < total, "the relay was not stopped mid-stream"
    with committed_app.app_context(), db.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT publish_rate FROM event_relay_position")) > 0
    # Every message the broker holds was confirmed and counted, and nothing more.
    assert consumer.waiting() == published
    received = consumer.receive(published)
    assert max(m.message["syncId"] for m in received) == position.sync_id
    assert relay.logged("relay stopped") == 1


def test_two_relays_publish_each_event_once_while_one_waits(
    committed_app: Flask, consumer: Consumer, start_relay: StartRelay
) -> None:
    first = start_relay(consumer.exchange)
    first.wait_for_log("connected to the broker")
    second = start_relay(consumer.exchange)
    second.wait_for_log("another relay holds the relay lock")
    reports = sync_samples(committed_app)
    expected = [event.event_id for event in expected_events(committed_app)]
    consumer.receive(len(expected))
    assert list(by_event_id(consumer.quiet_for(0.3))) == expected
    assert max(by_event_id(consumer.received).values()) == 1
    assert second.logged("holding the relay lock") == 0
    # The waiting relay takes over when the first one dies.
    first.signal(signal.SIGKILL)
    first.wait()
    second.wait_for_log("connected to the broker")
    more = sync(committed_app.test_client(), "patients", [patient_record("5")])
    everything = [event.event_id for event in expected_events(committed_app)]
    assert len(everything) == len(expected) + sum(more[op] for op in OPS) + 1
    consumer.receive(len(everything))
    assert list(by_event_id(consumer.quiet_for(0.3))) == everything
    assert len(reports) == 3


@pytest.mark.postgresql_only
def test_an_unreachable_broker_changes_nothing_for_syncs_and_reads_and_its_events_follow(
    committed_app: Flask, consumer: Consumer, start_relay: StartRelay
) -> None:
    down = start_relay(consumer.exchange, EVENTS_BROKER_URL="amqp://guest:guest@127.0.0.1:1/%2F")
    down.wait_for_log("broker unavailable")
    began = time.monotonic()
    reports = sync_samples(committed_app) + sync_many(committed_app)
    client = committed_app.test_client()
    assert client.get("/payments/m1").status_code == 200
    assert client.get("/patients?payment_min=10&payment_max=20").status_code == 200
    elapsed = time.monotonic() - began
    down.wait_for_log("broker unavailable", times=3)
    assert down.process.poll() is None
    assert stored(committed_app)[1] == 0
    assert elapsed < 20, f"syncs and reads took {elapsed:.1f} s"
    down.signal(signal.SIGTERM)
    assert down.wait(timeout=5) == 0
    up = start_relay(consumer.exchange)
    expected = [event.event_id for event in expected_events(committed_app)]
    consumer.receive(len(expected))
    assert list(by_event_id(consumer.quiet_for(0.3))) == expected
    assert len(expected) == sum(r[op] for r in reports for op in OPS) + len(reports)
    up.stop()


def test_the_api_and_flask_sync_never_load_the_broker_client(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import json, sys
        from app import create_app
        import flask_migrate
        app = create_app({{"SQLALCHEMY_DATABASE_URI": "sqlite:///{tmp_path / "api.db"}",
                          "EVENTS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/%2F"}})
        with app.app_context():
            flask_migrate.upgrade()
        client = app.test_client()
        body = json.dumps([{{"externalId": "p1", "firstName": "A", "lastName": "B",
                            "dateOfBirth": "2000-01-01"}}])
        assert client.post("/patients", data=body,
                           content_type="application/json").status_code == 200
        assert client.get("/patients/p1").status_code == 200
        assert client.get("/metrics").status_code == 200
        path = "{tmp_path / "patients.json"}"
        open(path, "w").write(body)
        result = app.test_cli_runner().invoke(args=["sync", "patients", path])
        assert result.exit_code == 0, result.output
        print(sorted(name for name in sys.modules if name.split(".")[0] in ("pika", "aio_pika")))
    """)
    done = subprocess.run(
        [str(BIN / "python"), "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def confirmation(kind: type, tag: int, multiple: bool = False) -> Method:
    """A Basic.Ack or Basic.Nack frame as the broker sends it."""
    return Method(1, kind(delivery_tag=tag, multiple=multiple))


def test_confirms_count_once_every_tag_up_to_the_window_is_acknowledged() -> None:
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1/%2F", "unused", confirm_timeout=1)
    publisher._published = 6
    for frame in (
        confirmation(Basic.Ack, 2),
        confirmation(Basic.Ack, 1, multiple=False),
        confirmation(Basic.Ack, 4),
    ):
        publisher._on_delivery_confirmation(frame)
    assert publisher._confirmed == 2  # 3 is still out, so 4 does not count yet
    publisher._on_delivery_confirmation(confirmation(Basic.Ack, 5, multiple=True))
    assert publisher._confirmed == 5
    publisher._on_delivery_confirmation(confirmation(Basic.Ack, 6))
    assert (publisher._confirmed, publisher._acked_ahead) == (6, set())


def test_a_refused_message_fails_the_window() -> None:
    publisher = Publisher("amqp://guest:guest@127.0.0.1:1/%2F", "unused", confirm_timeout=1)
    publisher._published = 2
    publisher._on_delivery_confirmation(confirmation(Basic.Nack, 2))
    with pytest.raises(BrokerError, match="nack"):
        publisher.wait_confirmed(2)


def test_retries_back_off_exponentially_up_to_a_cap_and_start_over_after_success() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0)
    assert [backoff.next() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next() == 0.5


def test_a_stop_request_ends_a_wait_early() -> None:
    stop = StopFlag()
    began = time.monotonic()
    assert not stop.wait(0.05)
    stop.request()
    assert stop.wait(60)
    assert time.monotonic() - began < 5
