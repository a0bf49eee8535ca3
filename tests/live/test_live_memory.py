"""Bounded resources (SPEC §4): nothing a client sends grows a worker's memory past a bound.

One gunicorn worker at the default MAX_CONTENT_LENGTH (256 MiB) gets one
hostile pattern per test; after each, the worker's peak resident memory
(VmHWM, which never goes down) must still be under MEMORY_BOUND_MB. The
tests share the worker, so the last one's figure covers every pattern before
it. Run with ``-s`` to see the figure per pattern.

What they catch:
- a non-array body read whole and parsed before it is classified (a 200 MB
  ``{"a":[{},{},...]}`` becomes gigabytes of Python dicts);
- one huge element parsed into memory instead of rejected as a record;
- a gzip bomb inflated before its size is checked;
- a read cache keyed on the raw URL (``?junk=N`` makes a new entry each time)
  and bounded in entries only: the big responses below fill it far past the
  bound;
- /metrics labelled with whatever method and path a client sends.
Verified: the code before c195d47 (cache keyed on the URL) peaks at 436 MB in
the junk-parameter test; before c2c6632 (raw methods as labels) /metrics is
3.7 MB after the made-up methods; the parser before the streaming fix needed
over 1 GB for the non-array body and decoded the 30 MB record.

A watchdog kills the worker if it passes KILL_MB, so a regression fails fast
instead of taking the shared machine's memory.
"""

from __future__ import annotations

import json
import os
import random
import signal
import string
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.live.test_live_request_limits import gzip_bomb, peak_rss_mb
from tests.support.live_server import HTTPResult, LiveServer, require_postgres

pytestmark = pytest.mark.postgresql_only

TOKEN = "live-memory-write-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # the default; the server does not set it
MEMORY_BOUND_MB = 200
KILL_MB = 1024
METRICS_BOUND_BYTES = 200 * 1024
REQUEST_TIMEOUT = 120.0
CHUNK = 1 << 20
# The sync reports stored for the junk-parameter reads: each carries the
# maximum of 1000 errors (SYNC_MAX_ERRORS), each error several hundred bytes.
REPORTS = 8
INVALID_RECORDS = 1001
LONG = 255  # the longest valid externalId and name


# --- bodies ------------------------------------------------------------------------------------


def repeated(unit: bytes, total: int) -> Iterator[bytes]:
    """``unit`` repeated to about ``total`` bytes, in chunks of about CHUNK bytes."""
    chunk = unit * max(1, CHUNK // len(unit))
    for _ in range(total // len(chunk)):
        yield chunk


def gzipped(parts: Iterable[bytes]) -> bytes:
    """One gzip member of ``parts``, compressed as they are produced: never held inflated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(part) for part in parts]
    out.append(compressor.flush())
    return b"".join(out)


def non_array_body(inflated_bytes: int) -> bytes:
    """``{"a":[{},{},...]}`` of about ``inflated_bytes``, gzipped: valid JSON, not an array."""
    return gzipped([b'{"a":[', *repeated(b"{},", inflated_bytes), b"{}]}"])


def huge_record_body(name_bytes: int) -> bytes:
    """Two patients, gzipped: the first with a ``name_bytes`` firstName, then a small valid one."""
    return gzipped(
        [
            b'[{"externalId":"x","firstName":"',
            *repeated(b"A", name_bytes),
            b'","lastName":"b"},{"externalId":"y","firstName":"c","lastName":"d"}]',
        ]
    )


def invalid_payments(batch: int) -> bytes:
    """INVALID_RECORDS payments that are all rejected with long externalIds in their errors."""
    return json.dumps(
        [
            {
                "externalId": f"{batch}-{n}-".ljust(LONG, "e"),
                "patientId": f"{n}-".ljust(LONG, "p"),
                "amount": "4.455",
            }
            for n in range(INVALID_RECORDS)
        ]
    ).encode()


def long_patients(count: int) -> bytes:
    """``count`` valid patients whose ids and names are as long as allowed."""
    return json.dumps(
        [
            {
                "externalId": f"{n}-".ljust(LONG, "x"),
                "firstName": "F" * LONG,
                "lastName": "L" * LONG,
                "middleName": "M" * LONG,
            }
            for n in range(count)
        ]
    ).encode()


# --- the worker --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One gunicorn worker (default threads and MAX_CONTENT_LENGTH), shared by this module.

    Requests carry no token unless a test adds AUTH.
    """
    require_postgres()
    log = Path(tmp_path_factory.mktemp("memory")) / "gunicorn.log"
    server = LiveServer(log, env={"GUNICORN_WORKERS": "1", "API_WRITE_TOKENS": TOKEN})
    try:
        server.start()
        yield server
    finally:
        server.close()


def worker_pid(server: LiveServer) -> int:
    """The one worker's pid (a new one if the watchdog killed the last)."""
    (pid,) = server.wait_for_workers(1, timeout=60)
    return pid


def resident_mb(pid: int) -> float:
    """The process's resident memory now, in MB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


class Watchdog:
    """SIGKILLs ``pid`` if its resident memory passes KILL_MB while the block runs.

    On exit after a kill it raises AssertionError (in place of whatever
    connection error the killed worker caused).
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.killed_at_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            rss = resident_mb(self.pid)
            if rss > KILL_MB:
                self.killed_at_mb = rss
                os.kill(self.pid, signal.SIGKILL)
                return

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        if self.killed_at_mb:
            raise AssertionError(
                f"the worker reached {self.killed_at_mb:.0f} MB resident "
                f"(bound {MEMORY_BOUND_MB} MB) and was killed"
            ) from error


def within_bound(server: LiveServer, pattern: str, send: Callable[[], None]) -> None:
    """Run ``send`` under the watchdog, then require the worker's peak RSS under the bound."""
    pid = worker_pid(server)
    before = peak_rss_mb(pid)
    with Watchdog(pid):
        send()
    peak = peak_rss_mb(pid)
    print(f"\n{pattern}: worker peak RSS {peak:.0f} MB (before: {before:.0f} MB)")
    assert peak < MEMORY_BOUND_MB, (
        f"{pattern}: the worker's peak RSS is {peak:.0f} MB (it was {before:.0f} MB before), "
        f"bound {MEMORY_BOUND_MB} MB"
    )


def post_gzipped(server: LiveServer, body: bytes) -> HTTPResult:
    """POST a gzipped patients snapshot with the write token.

    ``force=true``: the mass-delete guard must not refuse it when the patients
    of the junk-parameter test are live (whatever order the tests run in).
    """
    return server.request(
        "POST",
        "/patients?force=true",
        body=body,
        timeout=REQUEST_TIMEOUT,
        headers={**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


def post_json(server: LiveServer, entity: str, body: bytes) -> dict[str, Any]:
    """POST a plain JSON snapshot with the write token; require 200 and return the report."""
    result = server.request(
        "POST",
        f"/{entity}",
        body=body,
        timeout=REQUEST_TIMEOUT,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert result.status == 200, result.body[:500]
    report: dict[str, Any] = result.json()
    return report


def send_all(
    server: LiveServer, requests: list[tuple[str, str]], connections: int, headers: dict[str, str]
) -> list[HTTPResult]:
    """Send every (method, path), ``connections`` at a time, each on a fresh connection."""
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return list(
            pool.map(
                lambda request: server.request(*request, headers=headers, timeout=REQUEST_TIMEOUT),
                requests,
            )
        )


# --- the patterns ------------------------------------------------------------------------------


def test_memory_non_array_gzip_body_gets_422_unparsed(one_worker: LiveServer) -> None:
    body = non_array_body(200_000_000)
    assert len(body) < 300_000
    results: list[HTTPResult] = []
    within_bound(
        one_worker,
        "(a) 200 MB non-array gzip body",
        lambda: results.append(post_gzipped(one_worker, body)),
    )
    (result,) = results
    assert result.status == 422, result.body[:500]
    assert result.json()["error"]["code"] == "invalid_payload"


def test_memory_huge_record_is_rejected_as_a_record(one_worker: LiveServer) -> None:
    body = huge_record_body(30 * 1024 * 1024)
    results: list[HTTPResult] = []
    within_bound(
        one_worker,
        "(b) one 30 MB patient record",
        lambda: results.append(post_gzipped(one_worker, body)),
    )
    (result,) = results
    assert result.status == 200, result.body[:500]
    report = result.json()
    assert (report["received"], report["rejected"], report["created"]) == (2, 1, 1), report
    (error,) = report["errors"]
    assert error["index"] == 0
    assert "Record is larger than" in json.dumps(error["messages"]), error


def test_memory_gzip_bomb_gets_413(one_worker: LiveServer) -> None:
    bomb = gzip_bomb(4 * MAX_CONTENT_LENGTH)  # 1 GiB inflated, about 1 MB sent
    results: list[HTTPResult] = []
    within_bound(
        one_worker, "(c) 1 GiB gzip bomb", lambda: results.append(post_gzipped(one_worker, bomb))
    )
    (result,) = results
    assert result.status == 413, result.body[:500]
    assert result.json()["error"]["code"] == "payload_too_large"


def test_memory_junk_query_parameters_make_no_cache_entries(one_worker: LiveServer) -> None:
    sync_ids = []
    for batch in range(REPORTS):
        report = post_json(one_worker, "payments", invalid_payments(batch))
        assert (report["rejected"], report["errorsTruncated"]) == (INVALID_RECORDS, True)
        sync_ids.append(report["syncId"])
    post_json(one_worker, "patients", long_patients(1000))
    # Each a large answer (a stored report with 1000 errors; 1000 patients of ~1 KB) that
    # a cache keyed on the raw URL would store once per junk value.
    paths = (
        [f"/syncs?limit=100&junk={n}" for n in range(40)]
        + [f"/syncs/{sync_ids[n % REPORTS]}?junk={n}" for n in range(40)]
        + [f"/patients?limit=1000&junk={n}" for n in range(200)]
    )
    results: list[HTTPResult] = []
    within_bound(
        one_worker,
        f"(d) {len(paths)} reads with distinct junk parameters",
        lambda: results.extend(
            send_all(one_worker, [("GET", path) for path in paths], connections=4, headers=AUTH)
        ),
    )
    assert {result.status for result in results} == {200}
    assert len(results[-1].json()) == 1000


def test_memory_made_up_methods_and_paths_leave_metrics_small(one_worker: LiveServer) -> None:
    rng = random.Random(4)
    requests = [
        (
            "".join(rng.choices(string.ascii_uppercase, k=8)),
            f"/{''.join(rng.choices(string.ascii_lowercase, k=12))}/{n}",
        )
        for n in range(2000)
    ]
    results: list[HTTPResult] = []

    def send() -> None:
        # Half without a token, as any stranger (401, then 429 once the address has spent
        # its budget of failed authentications), half with one, so that they reach routing.
        results.extend(send_all(one_worker, requests[:1000], connections=8, headers={}))
        results.extend(send_all(one_worker, requests[1000:], connections=8, headers=AUTH))

    within_bound(one_worker, f"(e) {len(requests)} made-up methods on unknown paths", send)
    assert not [result.status for result in results if result.status >= 500]
    metrics = one_worker.request("GET", "/metrics", timeout=REQUEST_TIMEOUT)
    assert metrics.status == 200
    print(
        f"/metrics after (e): {len(metrics.body)} bytes; statuses of (e): "
        f"{sorted(Counter(result.status for result in results).items())}"
    )
    assert len(metrics.body) < METRICS_BOUND_BYTES, f"/metrics is {len(metrics.body)} bytes"
