"""Asynchronous syncs (issue 20): the 202's latency, and end to end against a synchronous sync.

On a fresh database with the day-1 patients applied and one ``flask syncs
worker`` already waiting (as in production), the day-1 payments are POSTed
gzip with ``Prefer: respond-async``: the time from the last byte sent to the
202 is what the client waits for beyond uploading. End to end is from the
first byte sent until ``GET /syncs/<id>`` says ``applied`` (polled every
50 ms), against the synchronous sync of the same body (``initial_payments_s``
of the HTTP round). The worker's peak RSS is its VmHWM.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def async_payments(
    data: Path,
    *,
    fresh_database: Callable[[], None],
    server: Callable[[], Any],
    post: Callable[..., tuple[float, dict[str, Any]]],
    port: int,
    headers: dict[str, str],
    worker_command: list[str],
    env: dict[str, str],
    root: Path,
) -> dict[str, float]:
    """One round: accept the day-1 payments asynchronously, then apply them with one worker."""
    fresh_database()
    running = server()
    try:
        post(data / "day1" / "patients.json.gz", "patients")
        with tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
            worker = subprocess.Popen(
                [*worker_command, "syncs", "worker"],
                cwd=root,
                env=env | {"SYNC_WORKER_POLL_SECONDS": "0.05"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                _wait_for(lambda: b"holding the worker lock" in Path(log.name).read_bytes())
                began = time.perf_counter()
                after_last_byte, accepted = _post_async(
                    data / "day1" / "payments.json.gz", "payments", port, headers
                )
                path = f"/syncs/{accepted['syncId']}"
                _wait_for(lambda: _get(path, port, headers).get("state") not in UNFINISHED)
                end_to_end = time.perf_counter() - began
                peak_rss_mb = _vm_hwm_kb(worker.pid) / 1024
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=60)
        report = _get(path, port, headers)
        if report.get("state") != "applied":
            raise RuntimeError(f"async sync not applied: {json.dumps(report)[:300]}")
    finally:
        running.stop()
    return {
        "async_accept_after_last_byte_s": after_last_byte,
        "async_end_to_end_payments_s": end_to_end,
        "async_worker_peak_rss_mb": peak_rss_mb,
    }


UNFINISHED = ("queued", "running")


def _wait_for(condition: Callable[[], bool], timeout: float = 3600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.05)


def _vm_hwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _post_async(
    path: Path, entity: str, port: int, headers: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """POST a gzip body with Prefer: respond-async; seconds from its last byte to the 202."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    with path.open("rb") as body:
        connection.request(
            "POST",
            f"/{entity}",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(path.stat().st_size),
                "Prefer": "respond-async",
                **headers,
            },
        )
        # request() returns once the last byte is written to the socket.
        sent = time.perf_counter()
        response = connection.getresponse()
        payload = response.read()
    waited = time.perf_counter() - sent
    connection.close()
    if response.status != 202:
        raise RuntimeError(f"POST /{entity} async: {response.status} {payload[:300]!r}")
    return waited, json.loads(payload)


def _get(path: str, port: int, headers: dict[str, str]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = json.loads(response.read())
    connection.close()
    return body
