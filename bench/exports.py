"""CSV exports and the console's name search, against a live server holding the bench data.

``export_figures(base_url, token, peak_rss)`` streams the whole payments and
patients listings as CSV (``Accept: text/csv``) once each, reading the body
as it arrives: rows per second, and the workers' peak RSS before and after
(``peak_rss`` returns it in MB, after the caller reset it; issue 22: at least
100k rows/s, worker RSS flat). ``search_figures`` times the console's name
search (issue 22: < 50 ms p50 at 100k patients) for a few queries picked
from the data.

    python -m bench.exports http://127.0.0.1:8000 <read-token>
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from bench.console import _Client


def export_figures(
    base_url: str, token: str, peak_rss: Callable[[], float] = lambda: 0.0
) -> dict[str, float]:
    """Seconds, rows per second and peak worker RSS (MB) of each whole-listing export."""
    figures: dict[str, float] = {"worker peak RSS before, MB": round(peak_rss(), 1)}
    for listing in ("/payments", "/patients?sort=-paymentsTotal"):
        seconds, rows = _export(base_url, token, listing)
        figures[f"{listing} CSV, seconds"] = round(seconds, 2)
        figures[f"{listing} CSV, rows"] = rows
        figures[f"{listing} CSV, rows/s"] = round(rows / seconds)
        figures[f"worker peak RSS after {listing}, MB"] = round(peak_rss(), 1)
    return figures


def _export(base_url: str, token: str, path: str) -> tuple[float, int]:
    """Stream one CSV export; its duration and its number of rows (header excluded)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    started = time.perf_counter()
    try:
        connection.request(
            "GET", path, headers={"Authorization": f"Bearer {token}", "Accept": "text/csv"}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read(200)!r}")
        lines = 0
        while chunk := response.read(1 << 20):
            lines += chunk.count(b"\n")  # the bench names hold no newline
        return time.perf_counter() - started, lines - 1
    finally:
        connection.close()


def search_figures(base_url: str, token: str, requests: int = 50) -> dict[str, dict[str, float]]:
    """p50/p95 of the console's name search for a few queries picked from the data."""
    client = _Client(base_url, token)
    try:
        first = client.json("/patients?limit=1")[0]
        first_name, last_name = first["firstName"], first["lastName"]
        queries = {
            "a whole first name": first_name,
            "first and last name": f"{first_name} {last_name}",
            "three letters of a last name": last_name[1:4],
            "two letters": last_name[:2],
            "no match": "qxzqxz",
        }
        return {
            f"search: {name} ({query!r})": client.timings(
                f"/console/patients?q={quote(query)}", requests, 3
            )
            for name, query in queries.items()
        }
    finally:
        client.close()


if __name__ == "__main__":
    result: dict[str, Any] = {
        "exports": export_figures(sys.argv[1], sys.argv[2]),
        "search": search_figures(sys.argv[1], sys.argv[2]),
    }
    print(json.dumps(result, indent=2))
