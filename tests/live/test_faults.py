"""Fault tests: the real app under gunicorn (subprocesses) against a real PostgreSQL.

What the in-process test client cannot show: a worker process killed in the
middle of a sync, two worker processes syncing at the same moment, readers
racing a sync that is rewriting every row. Each test gets its own database
and server (tests/live_server.py). Run with ``-s`` to see the timings.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from app.sync.lock import ADVISORY_LOCK_KEY
from bench.generate import patient_json, payment_json, write_array
from tests.support.helpers import REPORT_OUTCOMES
from tests.support.live_server import (
    ONE_REQUEST_PER_WORKER,
    HTTPResult,
    LiveServer,
    LiveServerFactory,
)

pytestmark = pytest.mark.postgresql_only

TOKEN = "fault-tests-write-token"
# A token is configured so the servers run with access control on, as in production.
BASE_ENV = {"API_WRITE_TOKENS": TOKEN, "GUNICORN_GRACEFUL_TIMEOUT": "5"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Generous bounds for this shared 2-core machine: a sync here lasts a few seconds.
REQUEST_TIMEOUT = 120.0
WAIT_TIMEOUT = 60.0

T = TypeVar("T")


# --- data ------------------------------------------------------------------------------------


def write_snapshot(path: Path, records: Iterable[str]) -> bytes:
    """Write JSON records (already serialized) as a snapshot file; return its bytes."""
    write_array(path, list(records))
    return path.read_bytes()


def patients_snapshot(path: Path, count: int, generation: int = 0) -> bytes:
    """``count`` patients P00000000...; each generation changes every patient's names."""
    rng = random.Random(0)  # patient_json takes one; it draws nothing from it
    return write_snapshot(path, (patient_json(n, rng, generation) for n in range(count)))


def payments_snapshot(
    path: Path, payments: int, patients: int, cents: Callable[[int], int]
) -> bytes:
    """``payments`` payments M000000000..., payment n of patient n % ``patients``."""
    return write_snapshot(path, (payment_json(n, n % patients, cents(n)) for n in range(payments)))


# --- the database, seen directly ---------------------------------------------------------------

_LOCK_HOLDER = sa.text("""
    SELECT pid, virtualtransaction FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objsubid = 1
      AND classid = :high AND objid = :low
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
""").bindparams(high=ADVISORY_LOCK_KEY >> 32, low=ADVISORY_LOCK_KEY & 0xFFFF_FFFF)


def sync_lock_holder(connection: sa.Connection) -> tuple[int, str] | None:
    """(backend pid, virtual transaction id) holding the sync's advisory lock, or None."""
    row = connection.execute(_LOCK_HOLDER).first()
    return None if row is None else (row.pid, row.virtualtransaction)


def open_transactions(connection: sa.Connection, last_statement: str = "%") -> list[int]:
    """Pids of the other backends of this database that are inside a transaction.

    ``last_statement`` (a LIKE pattern) narrows them to those whose current
    or latest statement matches it. A sync opens its transaction only once
    its snapshot is parsed, and nothing else the app does keeps one open.
    """
    return list(
        connection.scalars(
            sa.text("""
        SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND xact_start IS NOT NULL AND query LIKE :pattern
    """),
            {"pattern": last_statement},
        )
    )


def fingerprint(connection: sa.Connection) -> dict[str, tuple[int, str]]:
    """Row count and md5 of every column of every row (by primary key), per synced table."""
    query = (
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM {} t"
    )
    return {
        table: tuple(connection.execute(sa.text(query.format(table))).one())
        for table in ("patients", "payments", "sync_runs")
    }


def stored_patients(connection: sa.Connection) -> dict[str, dict[str, Any]]:
    """Every stored patient (soft-deleted ones too), by externalId, in the upload format."""
    rows = connection.execute(
        sa.text(
            "SELECT external_id, first_name, last_name, middle_name, date_of_birth::text AS dob, "
            "deleted FROM patients"
        )
    ).all()
    assert all(row.deleted is None for row in rows), "a patient was soft-deleted"
    return {
        row.external_id: {
            "externalId": row.external_id,
            "firstName": row.first_name,
            "lastName": row.last_name,
            "middleName": row.middle_name,
            "dateOfBirth": row.dob,
        }
        for row in rows
    }


def as_records(snapshot: bytes) -> dict[str, dict[str, Any]]:
    """A patients snapshot's records by externalId."""
    return {record["externalId"]: record for record in json.loads(snapshot)}


# --- waiting and requests ----------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    give_up: Callable[[], bool] = lambda: False,
) -> T:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` or on give_up."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if give_up():
            pytest.fail(f"gave up waiting for {what}")
        if time.monotonic() >= deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.01)


class BackgroundPost(threading.Thread):
    """POST a snapshot from a thread; keeps the response or the error, never raises."""

    def __init__(
        self, server: LiveServer, entity: str, body: bytes, barrier: threading.Barrier | None = None
    ) -> None:
        super().__init__(name=f"POST /{entity}", daemon=True)
        self.server, self.entity, self.body, self.barrier = server, entity, body, barrier
        self.result: HTTPResult | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0

    def run(self) -> None:
        """Send the request (after the barrier, when there is one)."""
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=WAIT_TIMEOUT)
            began = time.monotonic()
            try:
                self.result = self.server.post_snapshot(
                    self.entity, self.body, timeout=REQUEST_TIMEOUT
                )
            finally:
                self.seconds = time.monotonic() - began
        except BaseException as error:  # reported by outcome(), in the test's thread
            self.error = error

    def outcome(self, timeout: float = REQUEST_TIMEOUT) -> HTTPResult | BaseException:
        """The response or the error, once the request has ended; fails if it hangs."""
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not finish within {timeout:g} s"
        if self.result is not None:
            return self.result
        assert self.error is not None
        return self.error


def applied(server: LiveServer, entity: str, body: bytes) -> dict[str, Any]:
    """POST a snapshot, require 200, and return the report."""
    result = server.post_snapshot(entity, body, timeout=REQUEST_TIMEOUT)
    assert result.status == 200, f"POST /{entity}: {result.status} {result.body[:500]!r}"
    report = result.json()
    assert sum(report[name] for name in REPORT_OUTCOMES) == report["received"]
    return report


def at(timestamp: str) -> datetime:
    """A report's ISO 8601 timestamp (string order fails when microseconds are 0)."""
    return datetime.fromisoformat(timestamp)


def counts(report: dict[str, Any]) -> dict[str, int]:
    """The row outcomes of a report."""
    return {name: report[name] for name in ("received", *REPORT_OUTCOMES, "deleted")}


# --- a: a worker killed mid-sync ---------------------------------------------------------------

KILL_PATIENTS = 20_000
KILL_PAYMENTS = 150_000


def test_worker_killed_mid_sync_leaves_database_as_before_and_next_sync_succeeds(
    live_server_factory: LiveServerFactory, tmp_path: Path
) -> None:
    """SIGKILL of the workers while a payments sync is writing inside PostgreSQL.

    Proves: the client gets no 200; after the orphaned backend's transaction
    ends, patients, payments and sync_runs are identical, row for row, to
    their state before the sync (its updates of existing payments and its
    partial insert are gone, no report was recorded); the master respawns
    the workers; resending the same snapshot then applies it completely.
    """
    server = live_server_factory(
        env=BASE_ENV | {"GUNICORN_WORKERS": "2", "SYNC_LOCK_TIMEOUT": "60"}, headers=AUTH
    )
    applied(server, "patients", patients_snapshot(tmp_path / "patients.json", KILL_PATIENTS))
    # Day 1: one payment per patient. The large snapshot changes every one of
    # them and adds the rest, so the killed sync has updated rows, not just inserted.
    applied(
        server,
        "payments",
        payments_snapshot(
            tmp_path / "day1.json", KILL_PATIENTS, KILL_PATIENTS, lambda n: 100 + n % 900
        ),
    )
    large = payments_snapshot(
        tmp_path / "large.json", KILL_PAYMENTS, KILL_PATIENTS, lambda n: 1000 + n % 900
    )
    with server.engine.connect() as db:
        before = fingerprint(db)
        workers = server.worker_pids()
        post = BackgroundPost(server, "payments", large)
        post.start()
        # By the INSERT, the same transaction has already updated the day-1 payments.
        wait_until(
            lambda: open_transactions(db, "INSERT INTO payments%"),
            WAIT_TIMEOUT,
            "the sync inserting payments",
            give_up=lambda: not post.is_alive(),
        )
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()

        outcome = post.outcome()
        assert not isinstance(outcome, HTTPResult), f"the client got a response: {outcome!r}"
        respawned = server.wait_for_workers(len(workers), WAIT_TIMEOUT, exclude=workers)
        assert server.process is not None and server.process.poll() is None
        # The worker's PostgreSQL backend outlives it until it notices the client is
        # gone (client_connection_check_interval, or at the end of its statement).
        wait_until(
            lambda: not open_transactions(db) and sync_lock_holder(db) is None,
            WAIT_TIMEOUT,
            "the orphaned sync's transaction to end",
        )
        ended = time.monotonic() - killed_at
        assert fingerprint(db) == before

    report = applied(server, "payments", large)
    recovered = time.monotonic() - killed_at
    assert counts(report) == {
        "received": KILL_PAYMENTS,
        "created": KILL_PAYMENTS - KILL_PATIENTS,
        "updated": KILL_PATIENTS,
        "restored": 0,
        "unchanged": 0,
        "rejected": 0,
        "deleted": 0,
    }
    print(
        f"\n[worker killed] workers {workers} -> {respawned}; the orphaned sync's transaction "
        f"ended {ended:.2f} s after SIGKILL; the resent sync returned 200 "
        f"{recovered:.2f} s after SIGKILL"
    )


# --- b: two syncs at once ----------------------------------------------------------------------

RACE_PATIENTS = 60_000


def response_of(outcome: HTTPResult | BaseException) -> HTTPResult:
    """The response of a finished BackgroundPost; fails the test if it got none."""
    assert isinstance(outcome, HTTPResult), f"the request failed: {outcome!r}"
    return outcome


def both_applied_one_after_the_other(
    snapshots: list[bytes],
    responses: list[HTTPResult],
) -> tuple[bytes, int]:
    """Both syncs got 200 and ran strictly in turn; return the later one's snapshot, 2 runs."""
    assert [r.status for r in responses] == [200, 200], [r.body[:300] for r in responses]
    reports = [response.json() for response in responses]
    first, last = sorted(reports, key=lambda report: report["syncId"])
    # The later sync saw every row the earlier one created, fully committed.
    assert counts(first) == {
        "received": RACE_PATIENTS,
        "created": RACE_PATIENTS,
        "updated": 0,
        "restored": 0,
        "unchanged": 0,
        "rejected": 0,
        "deleted": 0,
    }
    assert counts(last) == counts(first) | {"created": 0, "updated": RACE_PATIENTS}
    assert at(last["startedAt"]) >= at(first["finishedAt"]), "the two syncs overlapped"
    return snapshots[reports.index(last)], 2


def loser_refused_with_409(
    snapshots: list[bytes],
    responses: list[HTTPResult],
) -> tuple[bytes, int]:
    """One sync got 200, the other 409 sync_in_progress; return the winner's snapshot, 1 run."""
    statuses = [response.status for response in responses]
    assert sorted(statuses) == [200, 409], [r.body[:300] for r in responses]
    winner, loser = statuses.index(200), statuses.index(409)
    assert responses[loser].json()["error"]["code"] == "sync_in_progress"
    assert counts(responses[winner].json())["created"] == RACE_PATIENTS
    return snapshots[winner], 1


def post_together(
    server: LiveServer, snapshots: list[bytes], *, hold_lock: bool
) -> list[BackgroundPost]:
    """POST each snapshot from its own thread, released together by a barrier.

    With ``hold_lock``, the test holds the sync lock itself until both syncs
    are waiting for it, then lets go: they contend for it whatever the
    scheduling, instead of one finishing before the other arrives.
    """
    barrier = threading.Barrier(len(snapshots))
    posts = [BackgroundPost(server, "patients", body, barrier) for body in snapshots]
    with server.engine.connect() as db:
        if hold_lock:
            db.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        try:
            for post in posts:
                post.start()
            if hold_lock:
                wait_until(
                    lambda: len(open_transactions(db, "%advisory%lock%")) == len(posts),
                    WAIT_TIMEOUT,
                    "both syncs waiting for the lock",
                    give_up=lambda: not all(post.is_alive() for post in posts),
                )
        finally:
            if hold_lock:
                db.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
    return posts


@pytest.mark.parametrize(
    ("lock_timeout", "hold_lock", "check"),
    [
        ("60", True, both_applied_one_after_the_other),
        ("0.2", False, loser_refused_with_409),
    ],
    ids=["loser-waits", "loser-gets-409"],
)
def test_concurrent_syncs_leave_exactly_one_snapshot_without_deadlock(
    live_server_factory: LiveServerFactory,
    tmp_path: Path,
    lock_timeout: str,
    hold_lock: bool,
    check: Callable[[list[bytes], list[HTTPResult]], tuple[bytes, int]],
) -> None:
    """Two large patients snapshots, same externalIds, every record different, POSTed at once.

    Each goes to its own worker process (one connection per worker at a time).
    Proves: both requests end within a bounded time (no deadlock); with a
    long lock timeout both apply, one strictly after the other (the second
    started after the first finished, and updated every row the first
    created), and the table equals the snapshot of the later sync; with a
    0.2 s timeout the loser gets 409 sync_in_progress, nothing of it is
    recorded, and the table equals the winner's snapshot. The whole table
    is compared with the snapshot, field by field. With the long timeout
    the two are released onto the lock at the same instant (see
    post_together); with the short one they meet by their own timing, and
    the 409 shows that they did.
    """
    server = live_server_factory(
        env=BASE_ENV
        | ONE_REQUEST_PER_WORKER
        | {"GUNICORN_WORKERS": "2", "SYNC_LOCK_TIMEOUT": lock_timeout},
        headers=AUTH,
    )
    snapshots = [
        patients_snapshot(tmp_path / f"{name}.json", RACE_PATIENTS, generation)
        for generation, name in enumerate(("a", "b"))
    ]
    posts = post_together(server, snapshots, hold_lock=hold_lock)
    responses = [response_of(post.outcome()) for post in posts]

    final, runs = check(snapshots, responses)
    with server.engine.connect() as db:
        assert stored_patients(db) == as_records(final)
        assert db.scalar(sa.text("SELECT count(*) FROM sync_runs")) == runs
    print(
        f"\n[concurrent syncs, lock timeout {lock_timeout} s] "
        + ", ".join(
            f"{r.status} after {post.seconds:.2f} s"
            for post, r in zip(posts, responses, strict=True)
        )
    )


# --- c: readers during a sync ------------------------------------------------------------------

# Few patients with many payments each: GET /patients?limit=1000 returns every
# patient in one response, so one response shows the whole table's totals.
READ_PATIENTS = 1_000
READ_PAYMENTS_EACH = 150
OLD_CENTS, NEW_CENTS = 100, 200
READ_URLS = (
    "/patients?limit=1000",
    "/payments?limit=1000",
    "/payments?external_id=P00000500&limit=1000",
)


def read_amounts(server: LiveServer, url: str) -> set[Decimal]:
    """The distinct payment amounts one response shows (a patient's: its total / 150)."""
    result = server.request("GET", url, timeout=REQUEST_TIMEOUT)
    assert result.status == 200, f"GET {url}: {result.status} {result.body[:300]!r}"
    items = json.loads(result.body, parse_float=Decimal)
    assert items, f"GET {url} returned no rows"
    if url.startswith("/patients"):
        assert len(items) == READ_PATIENTS
        assert {item["paymentsCount"] for item in items} == {READ_PAYMENTS_EACH}
        return {Decimal(item["paymentsTotal"]) / READ_PAYMENTS_EACH for item in items}
    return {Decimal(item["amount"]) for item in items}


def test_readers_during_a_sync_see_the_old_or_the_new_state_never_a_mix(
    live_server_factory: LiveServerFactory, tmp_path: Path
) -> None:
    """Reads racing a payments sync that changes every amount from 1.00 to 2.00.

    Every patient's total, and every listed payment, is either all old or all
    new. Proves: no single response mixes the two states; every read made
    entirely while the sync's transaction held the lock (checked in pg_locks
    before and after it, same transaction) saw the old state, and at least
    one read did; once a read has seen the new state no later read sees the
    old one (no part of the sync becomes visible before the rest); reads
    after the sync see the new state.
    """
    server = live_server_factory(
        env=BASE_ENV
        | {
            "GUNICORN_WORKERS": "2",
            "SYNC_LOCK_TIMEOUT": "60",
            # Every read must query the database, not a response cached per data version.
            "READ_CACHE_SIZE": "0",
        },
        headers=AUTH,
    )
    total = READ_PATIENTS * READ_PAYMENTS_EACH
    applied(server, "patients", patients_snapshot(tmp_path / "patients.json", READ_PATIENTS))
    applied(
        server,
        "payments",
        payments_snapshot(tmp_path / "old.json", total, READ_PATIENTS, lambda n: OLD_CENTS),
    )
    new = payments_snapshot(tmp_path / "new.json", total, READ_PATIENTS, lambda n: NEW_CENTS)
    old_amount, new_amount = Decimal(OLD_CENTS) / 100, Decimal(NEW_CENTS) / 100

    reads: list[tuple[str, set[Decimal], bool]] = []
    post = BackgroundPost(server, "payments", new)
    with server.engine.connect() as db:
        post.start()
        deadline = time.monotonic() + REQUEST_TIMEOUT
        while post.is_alive() and time.monotonic() < deadline:
            url = READ_URLS[len(reads) % len(READ_URLS)]
            holder = sync_lock_holder(db)
            amounts = read_amounts(server, url)
            during = holder is not None and sync_lock_holder(db) == holder
            reads.append((url, amounts, during))
    outcome = post.outcome()
    assert isinstance(outcome, HTTPResult) and outcome.status == 200, outcome
    assert counts(outcome.json())["updated"] == total
    after = [(url, read_amounts(server, url)) for url in READ_URLS]

    mixed = [(url, amounts) for url, amounts, _ in reads if len(amounts) != 1]
    assert not mixed, f"responses mixing old and new amounts: {mixed[:3]}"
    during = [(url, amounts) for url, amounts, was_during in reads if was_during]
    assert during, f"no read happened while the sync held the lock ({len(reads)} reads)"
    assert all(amounts == {old_amount} for _, amounts in during), during
    assert all(amounts == {new_amount} for _, amounts in after), after
    # One reader, one request after another: once it has seen the new state
    # (some part of it committed), no later read may show the old one.
    seen = [amount for _, amounts, _ in reads for amount in amounts]
    newer = seen[seen.index(new_amount) :] if new_amount in seen else []
    assert old_amount not in newer, f"the old state reappeared after the new: {seen}"
    print(
        f"\n[readers during a sync] {len(reads)} reads while the sync ran, {len(during)} of "
        f"them inside its transaction; none mixed"
    )
