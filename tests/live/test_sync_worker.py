"""`flask syncs worker` as a real process on PostgreSQL (SPEC §2, asynchronous syncs).

Syncs are queued over HTTP in this process (the app on the test's committed
database); the workers are subprocesses on the same database, killed and
started as an operator (or a crash) would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from app.extensions import db
from tests.support.databases import base_config, scratch_database
from tests.support.events_support import RelayProcess
from tests.support.helpers import patient_record, payment_record, sync
from tests.support.sync_queue import queue_sync, scalar

pytestmark = pytest.mark.postgresql_only

LARGE = 200_000
WORKER_TIMEOUT = 300.0

StartWorker = Callable[..., RelayProcess]


@pytest.fixture
def start_worker(committed_database_url: str, tmp_path: Path) -> Iterator[StartWorker]:
    """Start `flask syncs worker` processes: ``start_worker(database_url=..., **env)``."""
    workers: list[RelayProcess] = []

    def start(database_url: str = committed_database_url, **env: str) -> RelayProcess:
        settings = {
            "DATABASE_URL": database_url,
            "SYNC_WORKER_POLL_SECONDS": "0.05",
            "LOG_LEVEL": "INFO",
            **env,
        }
        worker = RelayProcess(
            tmp_path / f"worker-{len(workers)}.log", settings, command=("syncs", "worker")
        )
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for_state(app: Flask, sync_id: int, states: set[str], timeout: float) -> str:
    """Poll the sync's state until it is one of ``states``; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = scalar(app, "SELECT state FROM sync_runs WHERE id = :id", id=sync_id)
        if state in states:
            return state
        assert time.monotonic() < deadline, f"sync {sync_id} still {state}"
        time.sleep(0.05)


def large_payments(patients: int) -> list[dict[str, Any]]:
    return [payment_record(f"m{n}", f"p{n % patients}", n % 1000 + 1) for n in range(LARGE)]


def test_a_worker_killed_mid_apply_leaves_the_sync_to_the_next_which_applies_it_once(
    queue_app: Flask, start_worker: StartWorker
) -> None:
    client = queue_app.test_client()
    sync(client, "patients", [patient_record(f"p{n}") for n in range(100)])
    queued = queue_sync(client, "payments", large_payments(100), gzipped=True)
    first = start_worker()
    wait_for_state(queue_app, queued["syncId"], {"running"}, WORKER_TIMEOUT)
    time.sleep(1.0)  # into the apply: reading, staging or merging
    first.process.kill()
    first.wait()
    assert scalar(queue_app, "SELECT state FROM sync_runs WHERE id = :id", id=queued["syncId"]) == (
        "running"
    )
    assert scalar(queue_app, "SELECT count(*) FROM payments") == 0
    second = start_worker(SYNC_LOCK_TIMEOUT="60")
    wait_for_state(queue_app, queued["syncId"], {"applied"}, WORKER_TIMEOUT)
    second.wait_for_log("taking over sync")
    report = client.get(f"/syncs/{queued['syncId']}").get_json()
    assert (report["received"], report["created"], report["unchanged"]) == (LARGE, LARGE, 0)
    assert scalar(queue_app, "SELECT count(*) FROM payments") == LARGE
    assert (
        scalar(queue_app, "SELECT count(*) FROM payments WHERE sync_id = :id", id=queued["syncId"])
        == LARGE
    )
    assert scalar(queue_app, "SELECT count(*) FROM payment_versions") == 0
    assert scalar(queue_app, "SELECT count(*) FROM sync_uploads") == 0
    total = sum(n % 1000 + 1 for n in range(LARGE))
    assert scalar(queue_app, "SELECT sum(amount) FROM payments") == total


def test_two_workers_never_apply_one_sync_twice(
    queue_app: Flask, start_worker: StartWorker
) -> None:
    client = queue_app.test_client()
    snapshots = [
        [patient_record(f"p{n}", firstName=f"v{version}") for n in range(50)]
        for version in range(6)
    ]
    queued = [queue_sync(client, "patients", snapshot) for snapshot in snapshots]
    workers = [start_worker(), start_worker()]
    for one in queued:
        wait_for_state(queue_app, one["syncId"], {"applied"}, WORKER_TIMEOUT)
    applied = [w.logged("applied sync") for w in workers]
    assert sum(applied) == len(queued)
    reports = [client.get(f"/syncs/{one['syncId']}").get_json() for one in queued]
    assert [(r["created"], r["updated"]) for r in reports] == [(50, 0)] + [(0, 50)] * 5
    assert scalar(queue_app, "SELECT count(*) FROM patient_versions") == 50 * 5
    assert scalar(queue_app, "SELECT count(DISTINCT applied_seq) FROM sync_runs") == len(queued)


def test_a_worker_started_before_the_database_is_reachable_waits_and_retries(
    start_worker: StartWorker, relay_template_url: str
) -> None:
    suffix = "workerlate"
    url = sa.make_url(relay_template_url).set(database=f"pp_test_{os.getpid()}_{suffix}")
    worker = start_worker(database_url=url.render_as_string(hide_password=False))
    worker.wait_for_log("database unavailable")
    template = sa.make_url(relay_template_url).database
    with scratch_database(suffix, template=template) as created:
        app = create_app(base_config(created) | {"RATELIMIT_ENABLED": False})
        queued = queue_sync(app.test_client(), "patients", [patient_record("p1")])
        wait_for_state(app, queued["syncId"], {"applied"}, WORKER_TIMEOUT)
        worker.stop()
        with app.app_context():
            db.engine.dispose()


def test_sigterm_stops_an_idle_worker_cleanly(start_worker: StartWorker) -> None:
    worker = start_worker()
    worker.wait_for_log("holding the worker lock")
    worker.signal(signal.SIGTERM)
    assert worker.wait() == 0
    assert worker.logged("sync worker stopped") == 1
