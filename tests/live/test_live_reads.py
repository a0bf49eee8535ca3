"""Reads are never stale (SPEC §4): two gunicorn workers, each with its own read cache.

Each test warms both workers' caches with the same GET requests, changes the
data behind the service's back (manual SQL through ``server.engine``,
committed), and then requires every one of many requests, answered by both
workers, to show the new state. The access log's pid for each request's own
X-Request-ID tells which worker answered it, so "both workers cached it" and
"both workers answered afterwards" are checked, not hoped for.

What these tests catch: the cache (and the ETags) used to key on
``max(sync_runs.id)``. A manual UPDATE, INSERT or DELETE of patients does not
touch sync_runs, so that key stayed the same and every worker went on serving
the answer it had cached before the change (and 304 to the old ETag). After
``TRUNCATE ... RESTART IDENTITY`` and one new sync, ``max(sync_runs.id)`` is 1
again, as it was before, so that key named two different states and the old
answers (``GET /syncs/1`` included) came back. Verified: with
``live.data_version`` reading ``max(sync_runs.id)`` every test in this file
fails.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.live_server import (
    ONE_REQUEST_PER_WORKER,
    HTTPResult,
    LiveServer,
    LiveServerFactory,
)

pytestmark = pytest.mark.postgresql_only

TOKEN = "live-reads-write-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Requests per path and phase, and how many are in flight at once. With one
# thread and one connection per worker (ONE_REQUEST_PER_WORKER) a busy worker
# does not accept, so concurrent requests spread over both workers.
ROUNDS = 20
CONNECTIONS = 6
# Batches of ROUNDS a phase may take until each path was answered by both workers.
MAX_BATCHES = 5
REQUEST_TIMEOUT = 60.0

PATIENTS = [
    {"externalId": "P1", "firstName": "Ann", "lastName": "Lee"},
    {"externalId": "P2", "firstName": "Bob", "lastName": "Kim"},
    {"externalId": "P3", "firstName": "Cid", "lastName": "Roe"},
]
# What GET /patients says about PATIENTS after the one sync of the fixture.
SYNCED = [(1, "P1", "Ann"), (2, "P2", "Bob"), (3, "P3", "Cid")]


@dataclass(frozen=True)
class Served:
    """One response and the pid of the worker that answered it."""

    path: str
    result: HTTPResult
    pid: int


@pytest.fixture
def two_workers(live_server_factory: LiveServerFactory) -> LiveServer:
    """Two gunicorn workers (one request at a time each) serving one sync of PATIENTS."""
    server = live_server_factory(
        env={**ONE_REQUEST_PER_WORKER, "GUNICORN_WORKERS": "2", "API_WRITE_TOKENS": TOKEN},
        headers=AUTH,
    )
    sync_patients(server, PATIENTS, sync_id=1)
    return server


def sync_patients(server: LiveServer, records: list[dict[str, str]], sync_id: int) -> None:
    """POST ``records`` as the patients snapshot; require it to be sync ``sync_id``."""
    result = server.post_snapshot("patients", json.dumps(records).encode())
    assert result.status == 200, result.body[:500]
    report = result.json()
    assert (report["syncId"], report["rejected"]) == (sync_id, 0), report


def execute(server: LiveServer, *statements: str) -> None:
    """Run SQL statements on the server's database in one committed transaction."""
    with server.engine.connect() as connection, connection.begin():
        for statement in statements:
            connection.execute(sa.text(statement))


def state(result: HTTPResult) -> Any:
    """What a response says, reduced to what the tests change: the status, ids and names."""
    if result.status != 200:
        return result.status
    body = result.json()
    if isinstance(body, list):
        return [(patient["id"], patient["externalId"], patient["firstName"]) for patient in body]
    if "syncId" in body:
        return ("sync", body["syncId"], body["received"], body["created"])
    return (body["id"], body["externalId"], body["firstName"])


def request_pids(server: LiveServer) -> dict[str, int]:
    """The pid of the worker that answered each request id, from the JSON access log."""
    pids = {}
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "app.access" and "request_id" in entry:
                pids[entry["request_id"]] = entry["pid"]
    return pids


def fire(
    server: LiveServer, paths: Iterable[str], headers: Mapping[str, str] | None = None
) -> list[Served]:
    """GET each path ROUNDS times, CONNECTIONS at a time, each on a fresh connection."""
    jobs = [(path, uuid.uuid4().hex) for _ in range(ROUNDS) for path in paths]

    def get(job: tuple[str, str]) -> HTTPResult:
        path, request_id = job
        return server.request(
            "GET",
            path,
            headers={**(headers or {}), "X-Request-ID": request_id},
            timeout=REQUEST_TIMEOUT,
        )

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        results = list(pool.map(get, jobs))
    pids = request_pids(server)
    missing = [request_id for _, request_id in jobs if request_id not in pids]
    assert not missing, f"{len(missing)} requests are not in the access log:\n{server.log_tail()}"
    return [
        Served(path, result, pids[request_id])
        for (path, request_id), result in zip(jobs, results, strict=True)
    ]


def fire_at_both_workers(
    server: LiveServer, paths: list[str], headers: Mapping[str, str] | None = None
) -> list[Served]:
    """Fire batches of requests until both workers have answered every path; all responses.

    Fails if that does not happen within MAX_BATCHES batches.
    """
    workers = set(server.wait_for_workers(2, timeout=REQUEST_TIMEOUT))
    served: list[Served] = []
    answered: dict[str, set[int]] = defaultdict(set)
    for _ in range(MAX_BATCHES):
        for response in fire(server, paths, headers):
            served.append(response)
            answered[response.path].add(response.pid)
        if all(answered[path] >= workers for path in paths):
            return served
    raise AssertionError(
        f"not every path was answered by both workers {sorted(workers)}: {dict(answered)}"
    )


def assert_all_show(served: list[Served], expected: Mapping[str, Any]) -> None:
    """Every response shows the ``expected`` state of its path; the failures, by worker."""
    wrong = [
        (response.pid, response.path, state(response.result))
        for response in served
        if state(response.result) != expected[response.path]
    ]
    assert not wrong, (
        f"{len(wrong)} of {len(served)} responses are stale, e.g. {wrong[:3]}; expected {expected}"
    )


def test_reads_after_a_manual_update_show_the_new_value(two_workers: LiveServer) -> None:
    paths = ["/patients", "/patients/P1"]
    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {"/patients": SYNCED, "/patients/P1": (1, "P1", "Ann")},
    )

    execute(two_workers, "UPDATE patients SET first_name = 'Ada' WHERE external_id = 'P1'")

    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {"/patients": [(1, "P1", "Ada"), *SYNCED[1:]], "/patients/P1": (1, "P1", "Ada")},
    )


def test_reads_after_a_manual_insert_show_the_new_row(two_workers: LiveServer) -> None:
    paths = ["/patients", "/patients/P9"]
    assert_all_show(
        fire_at_both_workers(two_workers, paths), {"/patients": SYNCED, "/patients/P9": 404}
    )

    # Every NOT NULL column without a default: payments_total and payments_count have one.
    execute(
        two_workers,
        "INSERT INTO patients (external_id, first_name, last_name, created, updated) "
        "VALUES ('P9', 'Eve', 'Poe', now(), now())",
    )

    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {"/patients": [*SYNCED, (4, "P9", "Eve")], "/patients/P9": (4, "P9", "Eve")},
    )


def test_reads_after_a_manual_delete_miss_the_row(two_workers: LiveServer) -> None:
    paths = ["/patients", "/patients/P3"]
    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {"/patients": SYNCED, "/patients/P3": (3, "P3", "Cid")},
    )

    execute(two_workers, "DELETE FROM patients WHERE external_id = 'P3'")

    assert_all_show(
        fire_at_both_workers(two_workers, paths), {"/patients": SYNCED[:2], "/patients/P3": 404}
    )


def test_reads_after_truncate_and_resync_show_the_new_data_under_repeated_ids(
    two_workers: LiveServer,
) -> None:
    paths = ["/patients", "/patients/P1", "/syncs/1"]
    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {"/patients": SYNCED, "/patients/P1": (1, "P1", "Ann"), "/syncs/1": ("sync", 1, 3, 3)},
    )

    execute(two_workers, "TRUNCATE patients, payments, sync_runs RESTART IDENTITY CASCADE")
    # Different data under the same sync id (1) and the same row ids (1, 2).
    sync_patients(
        two_workers,
        [
            {"externalId": "P1", "firstName": "Zed", "lastName": "Fox"},
            {"externalId": "P4", "firstName": "Yul", "lastName": "Orr"},
        ],
        sync_id=1,
    )

    assert_all_show(
        fire_at_both_workers(two_workers, paths),
        {
            "/patients": [(1, "P1", "Zed"), (2, "P4", "Yul")],
            "/patients/P1": (1, "P1", "Zed"),
            "/syncs/1": ("sync", 1, 2, 2),
        },
    )


def test_etag_from_before_a_manual_update_no_longer_matches(two_workers: LiveServer) -> None:
    paths = ["/patients"]
    before = fire_at_both_workers(two_workers, paths)
    assert_all_show(before, {"/patients": SYNCED})
    (old_etag,) = {response.result.headers["ETag"] for response in before}

    execute(two_workers, "UPDATE patients SET first_name = 'Ada' WHERE external_id = 'P1'")

    revalidated = fire_at_both_workers(two_workers, paths, {"If-None-Match": old_etag})
    assert_all_show(revalidated, {"/patients": [(1, "P1", "Ada"), *SYNCED[1:]]})
    (new_etag,) = {response.result.headers["ETag"] for response in revalidated}
    assert new_etag != old_etag

    current = fire_at_both_workers(two_workers, paths, {"If-None-Match": new_etag})
    assert {(response.result.status, response.result.body) for response in current} == {(304, b"")}
