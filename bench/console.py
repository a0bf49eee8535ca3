"""Console page timings (issue 12: every page <= 100 ms p50 at 100k patients / 1M payments).

``console_pages(base_url, token)`` measures each console page against a
live server that already holds the bench data: one client, one keep-alive
connection, sequential requests, so a figure is the time one person waits
for a page (server render included, no browser). The console takes the
API's bearer header as well as its sign-in cookie, so no sign-in is needed.

    python -m bench.console http://127.0.0.1:8000 <read-token> [requests]
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import quote, urlsplit


def console_pages(
    base_url: str, token: str, requests: int = 50, warmup: int = 3
) -> dict[str, dict[str, float]]:
    """p50 and p95 (ms) of each console page over ``requests`` GETs, after ``warmup`` ones.

    The pages are picked from the data: the newest sync, the top payer (the
    patient with the most history to show), and an instant before the newest
    sync for ``as_of``. Returns ``{page name: {"p50_ms", "p95_ms", "requests"}}``.
    """
    client = _Client(base_url, token)
    try:
        syncs = client.json("/syncs?limit=1")
        patients = client.json("/patients?sort=-paymentsTotal&limit=1")
        newest = syncs[0] if syncs else None
        pages = {
            "overview": "/console/",
            "syncs": "/console/syncs",
            "analytics": "/console/analytics",
            "analytics, range 100-200": "/console/analytics?payment_min=100&payment_max=200",
        }
        if newest is not None:
            pages["sync (report, rejections, first changes)"] = f"/console/syncs/{newest['syncId']}"
        if patients:
            patient = f"/console/patient?id={quote(patients[0]['externalId'], safe='')}"
            pages["patient (top payer)"] = patient
            if newest is not None:
                pages["patient as of before the newest sync"] = (
                    f"{patient}&as_of={quote(newest['startedAt'])}"
                )
        return {name: client.timings(path, requests, warmup) for name, path in pages.items()}
    finally:
        client.close()


class _Client:
    """One keep-alive HTTP connection with the bearer token."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=120
        )
        self._headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of one GET."""
        self._connection.request("GET", path, headers=self._headers)
        response = self._connection.getresponse()
        return response.status, response.read()

    def json(self, path: str) -> Any:
        """A JSON API read, which must succeed."""
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)

    def timings(self, path: str, requests: int, warmup: int) -> dict[str, float]:
        """p50/p95 of ``path`` in ms; every answer must be 200."""
        for _ in range(warmup):
            self.get(path)
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            status, body = self.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        cuts = statistics.quantiles(samples, n=20, method="inclusive")
        return {
            "p50_ms": round(statistics.median(samples), 2),
            "p95_ms": round(cuts[18], 2),
            "requests": requests,
        }

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


if __name__ == "__main__":
    figures = console_pages(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 50)
    print(json.dumps(figures, indent=2))
