"""The relay loop: read a window of events, publish it, wait for the confirms, store the position.

At least once, in order (SPEC §6): the position moves only after the broker
confirmed the whole window, in the same statement that counts it, so a
relay killed at any moment resumes after the last confirmed window and
publishes the unconfirmed rest again. One relay at a time (lock.py).
Neither an unreachable broker nor an unreachable database ends the relay:
it logs, waits with exponential backoff and carries on from the stored
position. A stop request (SIGTERM, SIGINT) lets the window in flight finish
and its position be stored; then ``run`` returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.events import feed, position
from app.events.feed import Window
from app.events.lock import relay_lock
from app.events.publisher import BrokerError, Publisher
from app.loops import Backoff, StopFlag, first_line

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class RelaySettings:
    """The EVENTS_* settings the relay runs with, as config.py reads them (defaults live there)."""

    broker_url: str
    exchange: str
    batch_size: int
    poll_seconds: float
    confirm_timeout: float
    # Return once every committed event is confirmed (batch runs, benchmarks).
    exit_when_idle: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any], exit_when_idle: bool = False) -> RelaySettings:
        """Read the settings from a Flask config mapping (EVENTS_BROKER_URL must be set)."""
        return cls(
            broker_url=config["EVENTS_BROKER_URL"],
            exchange=config["EVENTS_EXCHANGE"],
            batch_size=config["EVENTS_BATCH_SIZE"],
            poll_seconds=config["EVENTS_POLL_SECONDS"],
            confirm_timeout=config["EVENTS_CONFIRM_TIMEOUT"],
            exit_when_idle=exit_when_idle,
        )


PublisherFactory = Callable[[RelaySettings], Publisher]


def _publisher(settings: RelaySettings) -> Publisher:
    return Publisher(settings.broker_url, settings.exchange, settings.confirm_timeout)


class Relay:
    """Publishes every committed change event, in order, at least once (SPEC §6)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: RelaySettings,
        stop: StopFlag,
        publisher: PublisherFactory = _publisher,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._stop = stop
        self._new_publisher = publisher
        self._backoff = Backoff()
        self._caught_up = False
        self._progress = _Progress()
        self._stored_at = time.monotonic()

    def run(self) -> None:
        """Publish until stopped (or caught up, with ``exit_when_idle``); never gives up."""
        while not (self._stop.requested or self._caught_up):
            try:
                with self._engine.connect() as connection:
                    self._run_locked(connection)
            except sa.exc.SQLAlchemyError as error:
                delay = self._backoff.next()
                log.warning(
                    "database error; retrying in %.1f s",
                    delay,
                    extra={"fields": {"error": first_line(error)}},
                )
                self._stop.wait(delay)
        log.info("relay stopped", extra={"fields": self._progress.fields()})

    def _run_locked(self, connection: sa.Connection) -> None:
        """Wait for the single-relay lock, then publish while holding it."""
        lock = relay_lock(connection)
        announced = False
        while not lock.try_acquire():
            if not announced:
                log.info(
                    "another relay holds the relay lock; waiting for it (retrying every %g s)",
                    self._settings.poll_seconds,
                )
                announced = True
            if self._stop.wait(self._settings.poll_seconds):
                return
        try:
            log.info(
                "holding the relay lock; publishing",
                extra={"fields": {"exchange": self._settings.exchange}},
            )
            position.ensure(connection)
            connection.commit()
            self._serve(connection)
        finally:
            lock.release()

    def _serve(self, connection: sa.Connection) -> None:
        """Connect to the broker and publish; on a broker failure, back off and reconnect."""
        while not (self._stop.requested or self._caught_up):
            publisher = self._new_publisher(self._settings)
            failure = None
            try:
                publisher.open()
                log.info(
                    "connected to the broker",
                    extra={
                        "fields": {"broker": publisher.broker, "exchange": self._settings.exchange}
                    },
                )
                self._publish(connection, publisher)
            except BrokerError as error:
                failure = str(error)
            finally:
                publisher.close()
            if failure is not None:
                delay = self._backoff.next()
                log.warning(
                    "broker unavailable; retrying in %.1f s",
                    delay,
                    extra={"fields": {"broker": publisher.broker, "error": failure}},
                )
                self._stop.wait(delay)

    def _publish(self, connection: sa.Connection, publisher: Publisher) -> None:
        """Window after window from the stored position, until stopped or caught up.

        While the broker stores and confirms one window, the next is read:
        the database and the broker work at the same time.
        """
        current = position.load(connection)
        connection.commit()
        window = self._read(connection, current)
        while not self._stop.requested:
            if not window.events:
                self._backoff.reset()
                if self._settings.exit_when_idle:
                    self._caught_up = True
                    return
                publisher.idle(self._settings.poll_seconds, lambda: self._stop.requested)
                window = self._read(connection, current)
                continue
            began = time.monotonic()
            sent = publisher.send(window.events)
            following = self._read(connection, window.end)
            publisher.wait_confirmed(sent)
            current = self._store(connection, current, window, began)
            self._backoff.reset()
            window = following if current == window.end else self._read(connection, current)

    def _read(self, connection: sa.Connection, after: position.Position) -> Window:
        window = feed.read_window(connection, after, self._settings.batch_size)
        # End the read transaction: nothing stays open while the broker works.
        connection.commit()
        return window

    def _store(
        self, connection: sa.Connection, current: position.Position, window: Window, began: float
    ) -> position.Position:
        """Record that the broker confirmed ``window``; return where the relay now stands.

        The publish rate stored with it is the window's events over the time
        since the previous window was stored, or since this one was sent if
        the relay was idle in between.
        """
        now = time.monotonic()
        elapsed, self._stored_at = now - max(self._stored_at, began), now
        rate = len(window.events) / elapsed if elapsed > 0 else 0.0
        if not position.store(connection, current, window.end, len(window.events), rate):
            connection.rollback()
            log.warning(
                "the stored position moved under this relay (reset by an operator, or "
                "another relay without the lock?); continuing from the stored one"
            )
            current = position.load(connection)
            connection.commit()
            return current
        connection.commit()
        self._progress.advance(window)
        return window.end


class _Progress:
    """Log lines while publishing: each sync once fully confirmed, and a rate every 10 s."""

    def __init__(self) -> None:
        self.published = 0
        self._since = 0
        self._at = time.monotonic()

    def advance(self, window: Window) -> None:
        self.published += len(window.events)
        self._since += len(window.events)
        for sync in window.completed:
            log.info(
                "published sync %s",
                sync.id,
                extra={
                    "fields": {
                        "sync_id": sync.id,
                        "entity": sync.entity,
                        "events": sync.change_count + 1,
                    }
                },
            )
        elapsed = time.monotonic() - self._at
        if elapsed >= PROGRESS_EVERY_SECONDS:
            log.info(
                "publishing",
                extra={
                    "fields": {
                        **self.fields(),
                        "sync_id": window.end.sync_id,
                        "events_per_s": round(self._since / elapsed, 1),
                    }
                },
            )
            self._since, self._at = 0, time.monotonic()

    def fields(self) -> dict[str, Any]:
        return {"published": self.published}
