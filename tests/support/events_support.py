"""Fixtures for the relay tests: the real RabbitMQ, committed databases, relay subprocesses.

The relay is a separate process that reads what syncs committed, so these
tests cannot use the rolled-back transaction of conftest's ``app``: each one
gets a database of its own (PostgreSQL: a copy of a migrated template;
SQLite: a copy of the migrated file), syncs into it for real with an
in-process app, and runs `flask events relay` against it. Each test also
gets an exchange and a queue of its own on the broker, both deleted after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.events import feed
from app.events.messages import Event
from app.events.position import START, Position
from app.extensions import db
from tests.support.databases import REQUIRE_POSTGRES, base_config, migrate, scratch_database
from tests.support.live_server import BIN, ROOT, _terminate_with_parent

BROKER_URL = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
RELAY_TIMEOUT = 30.0
_databases = count()


@pytest.fixture(scope="session")
def broker_url() -> str:
    """The RabbitMQ of the relay tests; skips if it is down (fails with TEST_REQUIRE_POSTGRES)."""
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER_URL)).close()
    except pika.exceptions.AMQPError as error:
        message = f"RabbitMQ is not reachable at {BROKER_URL}: {error!r}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    return BROKER_URL


@dataclass
class Received:
    """One message as a consumer got it."""

    routing_key: str
    properties: pika.BasicProperties
    message: dict[str, Any]
    body: bytes


class Consumer:
    """A queue bound to ``#`` on a test's own exchange, read as a consumer would."""

    def __init__(self, url: str) -> None:
        suffix = uuid.uuid4().hex[:12]
        self.exchange = f"test-events-{suffix}"
        self.queue = f"test-events-{suffix}"
        self.received: list[Received] = []
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()
        # Declared as the relay declares it, so that whoever comes first wins nothing.
        self._channel.exchange_declare(self.exchange, "topic", durable=True)
        self._channel.queue_declare(self.queue, exclusive=True)
        self._channel.queue_bind(self.queue, self.exchange, "#")

    def receive(self, total: int, timeout: float = RELAY_TIMEOUT) -> list[Received]:
        """Read until ``total`` messages arrived in all; fail on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.received) < total:
            self._pull(deadline, f"{total} messages")
        return self.received

    def receive_event_ids(
        self, event_ids: Iterable[str], timeout: float = RELAY_TIMEOUT
    ) -> list[Received]:
        """Read until every one of ``event_ids`` arrived at least once; fail on timeout."""
        missing = set(event_ids) - {m.message["eventId"] for m in self.received}
        deadline = time.monotonic() + timeout
        while missing:
            got = self._pull(deadline, f"{len(missing)} more events")
            if got is not None:
                missing.discard(got.message["eventId"])
        return self.received

    def _pull(self, deadline: float, wanted: str) -> Received | None:
        """The next message, or None after a short wait; fail past ``deadline``."""
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(self.received)} messages received; waited in vain for {wanted}"
            )
        # The same consumer each time: pika resumes the generator for the same arguments.
        for method, properties, body in self._channel.consume(
            self.queue, auto_ack=True, inactivity_timeout=0.05
        ):
            if method is None:
                return None
            self.received.append(Received(method.routing_key, properties, json.loads(body), body))
            return self.received[-1]
        return None

    def quiet_for(self, seconds: float) -> list[Received]:
        """Everything received, after ``seconds`` in which nothing more arrived."""
        before = -1
        while before != len(self.received):
            before = len(self.received)
            with contextlib.suppress(AssertionError):
                self.receive(before + 1, timeout=seconds)
        return self.received

    def waiting(self) -> int:
        """How many messages sit in the queue, unread (before the first ``receive``)."""
        return self._channel.queue_declare(self.queue, passive=True).method.message_count

    def close(self) -> None:
        """Delete the queue and the exchange, then disconnect."""
        try:
            self._channel.cancel()
            self._channel.queue_delete(self.queue)
            self._channel.exchange_delete(self.exchange)
        finally:
            self._connection.close()


@pytest.fixture
def consumer(broker_url: str) -> Iterator[Consumer]:
    """A fresh exchange and bound queue, deleted after the test."""
    bound = Consumer(broker_url)
    yield bound
    bound.close()


@pytest.fixture(scope="session")
def relay_template_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated PostgreSQL database that each relay test's database copies."""
    request.getfixturevalue("postgres_url")  # skips or fails the same way when PG is absent
    with scratch_database("evtemplate") as url:
        migrate(url)
        yield url


@pytest.fixture
def committed_database_url(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A migrated database of this test's own, whose commits are real (and seen by the relay)."""
    if backend == "sqlite":
        path = tmp_path / "committed.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = sa.make_url(request.getfixturevalue("relay_template_url")).database
    with scratch_database(f"ev{_letters(next(_databases))}", template=template) as url:
        yield url


def _letters(number: int) -> str:
    """0 -> "a", 1 -> "b", ...: database names of the test runs allow only lowercase suffixes."""
    digits = ""
    while True:
        number, digit = divmod(number, 26)
        digits = "abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if number == 0:
            return digits


@pytest.fixture
def committed_app(committed_database_url: str) -> Iterator[Flask]:
    """An in-process app on the committed database: its syncs commit for real."""
    app = create_app(
        base_config(committed_database_url)
        | {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6, "EVENTS_BROKER_URL": None}
    )
    yield app
    with app.app_context():
        db.engine.dispose()


def expected_events(app: Flask) -> list[Event]:
    """Every event the relay must publish for what ``app``'s database holds, in order."""
    with app.app_context(), db.engine.connect() as connection:
        found: list[Event] = []
        after = START
        while (window := feed.read_window(connection, after, 1000)).events:
            found += window.events
            after = window.end
        return found


def stored(app: Flask) -> tuple[Position, int]:
    """The relay's stored position and published_total (the start and 0 before its first run)."""
    with app.app_context(), db.engine.connect() as connection:
        row = connection.execute(
            sa.text(
                "SELECT sync_id, record_id, sync_complete, sync_events, published_total "
                "FROM event_relay_position WHERE id = 1"
            )
        ).first()
    if row is None:
        return START, 0
    return Position(row[0], row[1], bool(row[2]), row[3]), row[4]


@dataclass
class RelayProcess:
    """`flask events relay` (or another long-running ``command``) in a subprocess,
    its JSON log lines in a file."""

    log_path: Path
    env: Mapping[str, str]
    command: tuple[str, ...] = ("events", "relay")
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "flask"), "--app", "wsgi", *self.command],
                cwd=ROOT,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_terminate_with_parent,
            )

    def log_lines(self) -> list[dict[str, Any]]:
        """The relay's JSON log lines so far (other lines skipped)."""
        lines = []
        for text in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(text))
        return lines

    def logged(self, message: str) -> int:
        """How many log lines so far start with ``message``."""
        return sum(1 for line in self.log_lines() if str(line.get("message")).startswith(message))

    def wait_for_log(self, message: str, times: int = 1, timeout: float = RELAY_TIMEOUT) -> None:
        """Wait until ``message`` was logged ``times`` times; fail with the log if not."""
        deadline = time.monotonic() + timeout
        while self.logged(message) < times:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no {message!r} x{times} (exit {self.process.poll()}); "
                    f"log:\n{self.log_path.read_text()[-4000:]}"
                )
            time.sleep(0.02)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the relay."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = RELAY_TIMEOUT) -> int:
        """Wait for the relay to exit; its exit status."""
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=RELAY_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


StartRelay = Callable[..., RelayProcess]


@pytest.fixture
def start_relay(committed_database_url: str, tmp_path: Path) -> Iterator[StartRelay]:
    """Start relays on the test's committed database: ``start_relay(exchange, **env)``."""
    relays: list[RelayProcess] = []

    def start(exchange: str, **env: str) -> RelayProcess:
        settings = {
            "DATABASE_URL": committed_database_url,
            "EVENTS_BROKER_URL": BROKER_URL,
            "EVENTS_EXCHANGE": exchange,
            "EVENTS_POLL_SECONDS": "0.05",
            "LOG_LEVEL": "INFO",
            **env,
        }
        relay = RelayProcess(tmp_path / f"relay-{len(relays)}.log", settings)
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()
