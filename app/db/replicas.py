"""Reads on PostgreSQL streaming replicas (SPEC §8): which database answers a read.

One Router per app when DATABASE_REPLICA_URLS is set. It keeps, per process,
what it last saw of each database (a monitor thread checks every
REPLICA_CHECK_SECONDS): whether it answers, its data position (the counter
the data version token begins with, app/db/positions.py) and, for a
replica, its lag. ``choose`` picks the database for one request's reads;
the web layer binds it (``reading_from``) and the app's session
(RoutedSession) then runs every statement there. Whatever is not bound (a
sync, the relay, prune, migrations, the CLI) uses the primary.

Lag is measured against the primary, in WAL: each check samples the
primary's flushed WAL position, and a replica is as far behind as the
oldest sample it has not replayed yet (0 once it has replayed everything
the primary had flushed, however long ago that was). A replica beyond
REPLICA_MAX_LAG, or that did not answer its last check, gets no reads.
Without a primary (it did not answer) lag cannot be measured: every replica
that answers serves, as of what it has replayed.

A read that presents a position is answered from that position or later: a
replica known to have it serves at once; a position newer than the
primary's last check (a sync that just committed, or a made-up value) is
read on the primary, and so is one a replica lagging more than REPLICA_WAIT
would not reach in time; otherwise the replica is polled for it up to
REPLICA_WAIT, then the primary answers.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_sqlalchemy.session import Session

from app.db.engine import configure_engine
from app.db.positions import counter_of

log = logging.getLogger(__name__)

# The engine this context's reads are bound to (None: the app's primary engine).
_READS_FROM: ContextVar[sa.Engine | None] = ContextVar("reads_from", default=None)

# A replica's counter is polled this often while a read waits for a position (growing).
_FIRST_POLL, _LONGEST_POLL = 0.01, 0.1
# A connection attempt to a replica that vanished from the network gives up after this.
CONNECT_TIMEOUT_SECONDS = 2

_PRIMARY_CHECK = sa.text(
    "SELECT pg_current_wal_flush_lsn()::text, (SELECT token FROM data_version WHERE id = 1)"
)
_REPLICA_CHECK = sa.text(
    "SELECT pg_last_wal_replay_lsn()::text, (SELECT token FROM data_version WHERE id = 1)"
)
_COUNTER = sa.text("SELECT counter FROM data_version WHERE id = 1")


class RoutedSession(Session):
    """The app's session: statements go to the engine bound by ``reading_from``, if any."""

    def get_bind(
        self,
        mapper: Any | None = None,
        clause: Any | None = None,
        bind: sa.Engine | sa.Connection | None = None,
        **kwargs: Any,
    ) -> sa.Engine | sa.Connection:
        """The bound read engine, else what Flask-SQLAlchemy picks (the primary)."""
        if bind is None:
            routed = _READS_FROM.get()
            if routed is not None:
                return routed
        return super().get_bind(mapper, clause, bind, **kwargs)


def bind_reads(engine: sa.Engine | None) -> Token[sa.Engine | None]:
    """Send this context's statements to ``engine`` (None: the primary) until ``unbind``."""
    return _READS_FROM.set(engine)


def unbind(token: Token[sa.Engine | None]) -> None:
    """Undo the ``bind_reads`` that returned ``token``."""
    _READS_FROM.reset(token)


@contextlib.contextmanager
def reading_from(engine: sa.Engine | None) -> Iterator[None]:
    """Run the body's statements on ``engine`` (None: the primary)."""
    token = bind_reads(engine)
    try:
        yield
    finally:
        unbind(token)


def lsn(text: str | None) -> int | None:
    """A WAL position (``16/B374D848``) as a number, or None."""
    if not text:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


@dataclass(eq=False)
class Database:
    """One database as this process last saw it."""

    role: str  # "primary" or "replica"
    index: int  # the replica's place in DATABASE_REPLICA_URLS (0 for the primary)
    engine: sa.Engine
    up: bool = True
    checked: bool = False
    counter: int | None = None
    replayed: int | None = None
    lag: float | None = None

    @property
    def host(self) -> str:
        """host:port, for /readyz and the metrics' labels (a closed set: the configuration)."""
        url = self.engine.url
        return f"{url.host or 'localhost'}:{url.port or 5432}"

    @property
    def is_primary(self) -> bool:
        """Whether this is the primary."""
        return self.role == "primary"


@dataclass
class _Samples:
    """The primary's flushed WAL positions at recent checks, oldest first."""

    keep_seconds: float
    items: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)

    def add(self, moment: float, position: int) -> None:
        if not self.items or self.items[-1][1] != position:
            self.items.append((moment, position))
        # Keep the newest sample older than keep_seconds: it still bounds an old lag.
        while len(self.items) > 1 and moment - self.items[1][0] > self.keep_seconds:
            self.items.popleft()

    def lag(self, replayed: int, now: float) -> float:
        """How long ago the primary had flushed WAL that ``replayed`` does not reach yet."""
        for moment, position in self.items:
            if position > replayed:
                return max(0.0, now - moment)
        return 0.0


class Router:
    """Which database answers a read; the health, position and lag of each, per process."""

    def __init__(
        self,
        primary: sa.Engine,
        replica_urls: tuple[str, ...],
        engine_options: dict[str, Any],
        *,
        max_lag: float,
        wait: float,
        interval: float,
    ) -> None:
        self.primary = Database("primary", 0, primary)
        self.replicas = [
            Database("replica", index, _replica_engine(url, engine_options))
            for index, url in enumerate(replica_urls)
        ]
        self.max_lag = max_lag
        self.wait = wait
        self.interval = interval
        self._samples = _Samples(keep_seconds=2 * max_lag + 5 * interval)
        self._turn = itertools.count()
        self._pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # The monitor.
    def start(self) -> None:
        """Check every database once, then keep checking in a thread (once per process)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self.check()
            threading.Thread(target=self._run, name="replica-monitor", daemon=True).start()

    def stop(self) -> None:
        """End this process's monitor thread and close the replicas' connections."""
        self._stop.set()
        for replica in self.replicas:
            replica.engine.dispose()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the monitor must outlive any one failure
                log.exception("replica check failed")

    def check(self) -> None:
        """Check the primary, then each replica: up or not, position, lag."""
        now = time.monotonic()
        flushed = self._check(self.primary, _PRIMARY_CHECK)
        if flushed is not None:
            self._samples.add(now, flushed)
        for replica in self.replicas:
            replica.replayed = self._check(replica, _REPLICA_CHECK)
            if replica.replayed is None or not self.primary.up:
                replica.lag = None
            else:
                replica.lag = self._samples.lag(replica.replayed, time.monotonic())

    def _check(self, database: Database, statement: sa.TextClause) -> int | None:
        """Ask ``database`` its WAL position and data version; None when it does not answer."""
        try:
            with database.engine.connect() as connection:
                position, version = connection.execute(statement).one()
        except sa.exc.SQLAlchemyError as error:
            if database.up or not database.checked:
                log.warning(
                    "%s %s does not answer: %s",
                    database.role,
                    database.host,
                    type(getattr(error, "orig", error)).__name__,
                )
            database.up, database.checked = False, True
            return None
        database.up, database.checked = True, True
        database.counter = counter_of(version)
        return lsn(position)

    def mark_down(self, database: Database) -> None:
        """Take ``database`` out of service until its next check answers."""
        database.up = False
        if not database.is_primary:
            database.lag = None

    # Choosing.
    def readable(self) -> list[Database]:
        """The replicas that may answer reads now."""
        if self.primary.up:
            return [
                r for r in self.replicas if r.up and r.lag is not None and r.lag <= self.max_lag
            ]
        return [replica for replica in self.replicas if replica.up]

    def choose(self, required: int | None, exclude: tuple[Database, ...] = ()) -> Database:
        """The database to answer a read presenting position ``required`` (None: any)."""
        self.start()
        candidates = [r for r in self.readable() if r not in exclude]
        if not candidates:
            return self.primary
        replica = candidates[next(self._turn) % len(candidates)]
        if required is None or (replica.counter is not None and replica.counter >= required):
            return replica
        if not self.primary.up:
            # Nothing newer to be had: the replica's state is the best there is.
            return replica
        newest = self.primary.counter
        if newest is not None and required > newest:
            # Newer than anything the last check saw: just committed (or made up).
            return self.primary
        if replica.lag is not None and replica.lag > self.wait:
            # Behind by more than a wait: it would not catch up in time.
            return self.primary
        if self._wait_for(replica, required):
            return replica
        return self.primary

    def _wait_for(self, replica: Database, required: int) -> bool:
        """Poll ``replica`` until it has replayed position ``required``, up to REPLICA_WAIT."""
        deadline = time.monotonic() + self.wait
        pause = _FIRST_POLL
        while True:
            try:
                with replica.engine.connect() as connection:
                    counter = connection.execute(_COUNTER).scalar()
            except sa.exc.SQLAlchemyError:
                self.mark_down(replica)
                return False
            if counter is not None and counter >= required:
                replica.counter = max(counter, replica.counter or 0)
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_POLL)

    def for_sessions(self) -> Database:
        """Where console sessions are read: the primary (it has every sign-in and
        sign-out), or while it is lost a replica that answers."""
        if self.primary.up:
            return self.primary
        return next((r for r in self.replicas if r.up), self.primary)

    def status(self) -> dict[str, Any]:
        """Who answers, for /readyz: the primary and each replica, with its lag."""
        self.start()
        return {
            "primary": {"host": self.primary.host, "state": _state(self.primary, self.max_lag)},
            "replicas": [
                {
                    "index": replica.index,
                    "host": replica.host,
                    "state": _state(replica, self.max_lag),
                    "lagSeconds": None if replica.lag is None else round(replica.lag, 3),
                }
                for replica in self.replicas
            ],
        }


def _state(database: Database, max_lag: float) -> str:
    if not database.up:
        return "down"
    if database.lag is not None and database.lag > max_lag:
        return "lagging"
    return "up"


def _replica_engine(url: str, options: dict[str, Any]) -> sa.Engine:
    """An engine for one hot standby, set up like the primary's."""
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS, **options.get("connect_args", {})}
    engine = sa.create_engine(url, **{**options, "connect_args": connect_args})
    configure_engine(engine)
    return engine
