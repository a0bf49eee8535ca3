"""Several gunicorn workers act as one service: one Redis rate budget, one /metrics view."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.support.live_server import LiveServer, LiveServerFactory

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("TEST_REQUIRE_POSTGRES", "") not in ("", "0")
TOKEN = "live-read-token-0123456789"
BUDGET = 10
EXTRA = 6


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own in the real Redis, and its keys deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as error:
        client.close()
        message = f"Redis is not reachable at {REDIS_URL}: {error}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"pp-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield prefix
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture
def two_workers(live_server_factory: LiveServerFactory, redis_prefix: str) -> LiveServer:
    """gunicorn with two workers sharing a read budget in Redis."""
    return live_server_factory(
        env={
            "GUNICORN_WORKERS": "2",
            "API_READ_TOKENS": TOKEN,
            "RATELIMIT_STORAGE_URI": REDIS_URL,
            "RATELIMIT_KEY_PREFIX": redis_prefix,
            # Per hour, so that no window boundary falls inside the test.
            "RATELIMIT_READ": f"{BUDGET} per hour",
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )


def reads(server: LiveServer, count: int) -> list[int]:
    """The statuses of ``count`` GET /patients, a few at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda _: server.request("GET", "/patients").status, range(count)))


def replace_workers(server: LiveServer) -> None:
    """SIGKILL every worker and wait for gunicorn to start fresh ones.

    Whatever a worker kept in its own memory is gone; only what it shared
    (Redis, the metrics directory) survives. Requests spread over workers
    only by chance, so this is how a test makes sure two processes served.
    """
    old = server.worker_pids()
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    server.wait_for_workers(len(old), timeout=60, exclude=old)


def serving_pids(server: LiveServer, path: str) -> Counter[int]:
    """How many requests for ``path`` each worker answered, from the JSON access log."""
    pids: Counter[int] = Counter()
    for line in server.log_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("logger") == "app.access" and entry.get("path") == path:
                pids[entry["pid"]] += 1
    return pids


def test_workers_share_one_rate_budget_in_redis(two_workers: LiveServer) -> None:
    assert reads(two_workers, BUDGET) == [200] * BUDGET
    replace_workers(two_workers)
    # With per-process (memory) counters the new workers would allow BUDGET more.
    assert reads(two_workers, EXTRA) == [429] * EXTRA
    assert len(serving_pids(two_workers, "/patients")) >= 2


def test_metrics_add_up_every_workers_requests(two_workers: LiveServer) -> None:
    first = Counter(reads(two_workers, BUDGET // 2))
    replace_workers(two_workers)
    statuses = first + Counter(reads(two_workers, BUDGET // 2 + EXTRA))
    assert len(serving_pids(two_workers, "/patients")) >= 2
    text = two_workers.request("GET", "/metrics").body.decode()
    counts = {}
    for line in text.splitlines():
        if line.startswith('http_request_duration_seconds_count{endpoint="/patients"'):
            status = line.split('status="')[1].split('"')[0]
            counts[int(status)] = float(line.rsplit(" ", 1)[1])
    assert counts == {200: BUDGET, 429: EXTRA}
    assert statuses == {200: BUDGET, 429: EXTRA}
