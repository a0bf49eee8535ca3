"""A CSV export through gunicorn streams in bounded memory (SPEC §3 "CSV"), in one snapshot.

One worker serves a payments export far larger than the memory it may grow
by: the rows are read through a server-side cursor and written a batch at a
time, so its peak resident memory (VmHWM) stays near where a small export
left it. A body built whole (or rows fetched whole) grows it by hundreds of
MB for these rows. The client reads the body as it arrives and keeps only
counts. A sync committed while the export streams changes nothing in it.
"""

from __future__ import annotations

import http.client
import threading
import time
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.live.test_live_request_limits import peak_rss_mb
from tests.support.live_server import LiveServer, LiveServerFactory

pytestmark = pytest.mark.postgresql_only

READ_TOKEN = "live-export-read-token-0123456789"
WRITE_TOKEN = "live-export-write-token-0123456789"
PATIENTS = 20_000
PAYMENTS = 400_000
# What the worker may grow by over the export, beyond where a small export left it.
GROWTH_BOUND_MB = 60


def _load(server: LiveServer) -> None:
    """PATIENTS patients and PAYMENTS payments written directly (a sync of this size is slow)."""
    with server.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO patients (external_id, first_name, last_name, created, updated,"
                " payments_total, payments_count)"
                " SELECT 'p' || n, 'Zoë ' || n, 'O''Brien, \"Jr\"', now(), now(), 0, 0"
                " FROM generate_series(1, :n) AS n"
            ),
            {"n": PATIENTS},
        )
        connection.execute(
            sa.text(
                "INSERT INTO payments (external_id, amount, patient_id, created, updated)"
                " SELECT 'm' || n, (n % 100000) / 100.0 - 500, 1 + n % :patients, now(), now()"
                " FROM generate_series(1, :n) AS n"
            ),
            {"n": PAYMENTS, "patients": PATIENTS},
        )


def _stream(server: LiveServer, path: str, on_first_chunk: threading.Event | None = None) -> int:
    """GET ``path`` as CSV, reading the body in chunks; the number of lines (header included)."""
    url = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=300)
    try:
        connection.request(
            "GET", path, headers={"Authorization": f"Bearer {READ_TOKEN}", "Accept": "text/csv"}
        )
        response = connection.getresponse()
        assert response.status == 200, response.read(500)
        assert response.getheader("Content-Type") == "text/csv; charset=utf-8"
        lines = 0
        while chunk := response.read(1 << 16):
            lines += chunk.count(b"\n")  # no name here holds a newline
            if on_first_chunk is not None:
                on_first_chunk.set()
                # Slow down so that the sync below commits while rows are still to come.
                time.sleep(0.002)
        return lines
    finally:
        connection.close()


def test_a_large_export_streams_in_bounded_memory_from_one_snapshot(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(
        env={
            "API_READ_TOKENS": READ_TOKEN,
            "API_WRITE_TOKENS": WRITE_TOKEN,
            "GUNICORN_WORKERS": "1",
            "RATELIMIT_ENABLED": "false",
        }
    )
    _load(server)
    (worker,) = server.worker_pids()
    assert _stream(server, "/payments?external_id=p1") == PAYMENTS // PATIENTS + 1
    before = peak_rss_mb(worker)
    started = threading.Event()
    lines: list[int] = []
    reader = threading.Thread(target=lambda: lines.append(_stream(server, "/payments", started)))
    reader.start()
    assert started.wait(60)
    with server.engine.begin() as connection:  # a change committed mid-export
        connection.execute(
            sa.text("DELETE FROM payments WHERE id > :half"), {"half": PAYMENTS // 2}
        )
    reader.join(300)
    growth = peak_rss_mb(worker) - before
    print(f"\nexport of {PAYMENTS:,} payments: worker peak RSS {before:.0f} MB, +{growth:.1f} MB")
    assert lines == [PAYMENTS + 1]
    assert growth < GROWTH_BOUND_MB
