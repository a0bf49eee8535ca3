"""The read floor (issue 11): GET /patients as fast as this stack can serve it.

``application`` is a bare WSGI callable, no Flask: one psycopg2 connection
per worker thread, and per request one prepared statement whose single row is
the page's JSON, built by PostgreSQL, plus the keyset of the next page. It
answers ``GET /patients?payment_min=X&payment_max=Y[&limit=N][&cursor=C]``
with the rows, order and JSON objects of the service's default listing
(``sort=id``), and ``GET /healthz``. It checks no token.

The rest measures it under the service's gunicorn settings with wrk, on one
URL and on ~20,000 distinct range URLs, and checks that it answers what the
service answers.

    DATABASE_URL=postgresql://... python -m bench.read_floor [--service URL]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
LUA_SCRIPT = Path(__file__).with_name("varied_urls.lua")
SAME_PATH = "/patients?payment_min=100&payment_max=200"  # bench/run.py's range URL
VARIED_COUNT, VARIED_SEED = 20_000, 11
WRK_THREADS = 2  # as bench/run.py's wrk(); the Lua script spreads them over the list

# ---------------------------------------------------------------------------
# The WSGI application

# A timestamp as the service writes it (datetime.isoformat() of what psycopg2
# returns in the server's UTC session): no fraction when it is zero, else six digits.
_ISO = (
    "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN date_trunc('second', {0}) = {0} THEN ''"
    " ELSE to_char({0} AT TIME ZONE 'UTC', '.US') END || '+00:00'"
)

# $1/$2: the inclusive bounds (NULL: none), $3: the first id of the page, $4: the limit.
# The filter is that of app.reads.live.live_patients, so the planner has the same indexes to
# choose from. One row more than the page is read: its id, if there is one, is the next
# page's first id, and so the cursor.
PREPARE = f"""
PREPARE patients_page(numeric, numeric, integer, integer) AS
WITH page AS (
    SELECT id, external_id, first_name, last_name, middle_name, date_of_birth,
           payments_total, payments_count, created, updated
    FROM patients
    WHERE deleted IS NULL
      AND payments_total >= coalesce($1, '-Infinity')
      AND payments_total <= coalesce($2, 'Infinity')
      AND id >= $3
    ORDER BY id
    LIMIT $4 + 1
)
SELECT coalesce((
    SELECT json_agg(item)::text FROM (
        SELECT id, external_id AS "externalId", first_name AS "firstName",
               last_name AS "lastName", middle_name AS "middleName",
               date_of_birth AS "dateOfBirth", payments_total AS "paymentsTotal",
               payments_count AS "paymentsCount", {_ISO.format("created")} AS created,
               {_ISO.format("updated")} AS updated
        FROM page ORDER BY id LIMIT $4) AS item), '[]'),
    (SELECT id FROM page ORDER BY id OFFSET $4)
"""

_local = threading.local()


def _cursor() -> Any:
    """This thread's cursor, its connection opened and the statement prepared on first use."""
    cursor = getattr(_local, "cursor", None)
    if cursor is None:
        # Custom plans, as the service's unprepared queries get: a generic plan for a
        # range is blind to its width and picks the total index even for the widest
        # ranges, where walking the primary key is ~4x faster.
        connection = psycopg2.connect(
            os.environ["DATABASE_URL"], options="-c plan_cache_mode=force_custom_plan"
        )
        connection.autocommit = True  # no BEGIN round trip before each EXECUTE
        cursor = connection.cursor()
        cursor.execute(PREPARE)
        _local.cursor = cursor
    return cursor


def _fetch_page(
    low: Decimal | None, high: Decimal | None, first_id: int, limit: int
) -> tuple[bytes, int | None]:
    """The page's JSON array and the next page's first id (None on the last page)."""
    cursor = _cursor()
    try:
        cursor.execute("EXECUTE patients_page(%s, %s, %s, %s)", (low, high, first_id, limit))
        body, next_id = cursor.fetchone()
    except psycopg2.Error:
        cursor.connection.close()
        _local.cursor = None  # the next request reconnects
        raise
    return body.encode(), next_id


def _bound(value: str | None) -> Decimal | None:
    """A finite decimal bound, or None."""
    if value is None:
        return None
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("bound is not finite")
    return number


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """GET /patients (the service's default listing) and GET /healthz."""
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return _respond(start_response, "200 OK", b'{"status":"ok"}')
    if path != "/patients" or environ["REQUEST_METHOD"] != "GET":
        return _respond(start_response, "404 Not Found", b'{"error":"not found"}')
    query = parse_qsl(environ.get("QUERY_STRING", ""))
    args = dict(query)
    try:
        low, high = _bound(args.get("payment_min")), _bound(args.get("payment_max"))
        limit, first_id = int(args.get("limit", 100)), int(args.get("cursor", 0))
        if not 1 <= limit <= 1000:
            raise ValueError("limit out of range")
    except (ValueError, InvalidOperation):
        return _respond(start_response, "422 Unprocessable Entity", b'{"error":"bad query"}')
    body, next_id = _fetch_page(low, high, first_id, limit)
    headers = []
    if next_id is not None:
        kept = [(name, value) for name, value in query if name != "cursor"]
        url = (
            f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}/patients?"
            f"{urlencode([*kept, ('cursor', next_id)])}"
        )
        headers.append(("Link", f'<{url}>; rel="next"'))
    return _respond(start_response, "200 OK", body, headers)


def _respond(
    start_response: Callable[..., Any],
    status: str,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *(headers or []),
        ],
    )
    return [body]


# ---------------------------------------------------------------------------
# Checking it against the service

CHECK_PATHS = [
    SAME_PATH,
    "/patients",
    "/patients?payment_min=300&payment_max=301",
    "/patients?payment_min=25.005&payment_max=60.5&limit=7",
    "/patients?payment_max=1000000",
    "/patients?payment_min=100000",
]


def _get(url: str, headers: Mapping[str, str]) -> tuple[Any, str | None]:
    """The parsed body (numbers as Decimal or int, exact) and the next page's URL."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers))) as response:
        body = json.loads(response.read(), parse_float=Decimal)
        link = response.headers.get("Link")
    return body, None if link is None else link[1 : link.index(">")]


def check_same_output(
    service_base: str, floor_base: str, urls: list[str], headers: Mapping[str, str]
) -> None:
    """Raise RuntimeError unless both answer each path (and its next page) alike.

    ``urls`` are paths; bodies are compared parsed, item by item, and both
    must have a next page or neither.
    """
    for path in urls:
        service_url, floor_url = service_base + path, floor_base + path
        for page in ("first page", "next page"):
            (service, service_next), (floor, floor_next) = (
                _get(service_url, headers),
                _get(floor_url, headers),
            )
            where = f"{path}, {page}"
            if service != floor:
                raise RuntimeError(
                    f"{where}: the floor differs from the service\n{_difference(service, floor)}"
                )
            if (service_next is None) != (floor_next is None):
                raise RuntimeError(
                    f"{where}: Link from the service {service_next!r}, "
                    f"from the floor {floor_next!r}"
                )
            if service_next is None or floor_next is None:
                break
            service_url, floor_url = service_next, floor_next


def _difference(service: list[dict[str, Any]], floor: list[dict[str, Any]]) -> str:
    """The first item that differs, field by field."""
    if len(service) != len(floor):
        return f"  {len(service)} items from the service, {len(floor)} from the floor"
    index, mine, theirs = next(
        (i, mine, theirs)
        for i, (mine, theirs) in enumerate(zip(service, floor, strict=True))
        if mine != theirs
    )
    fields = sorted(set(mine) | set(theirs))
    return "\n".join(
        f"  item {index} {name}: service {mine.get(name)!r}, floor {theirs.get(name)!r}"
        for name in fields
        if mine.get(name) != theirs.get(name)
    )


# ---------------------------------------------------------------------------
# Measuring


def varied_paths(count: int = VARIED_COUNT, seed: int = VARIED_SEED) -> list[str]:
    """``count`` distinct range paths in a fixed shuffled order (the same on every run).

    Totals sum ~10 payments of 1-50 each (bench/generate.py): the bounds start
    at 100-399 and span 1-100, where nearly every page is a full one.
    """
    ranges = [(low, low + width) for low in range(100, 400) for width in range(1, 101)]
    return [
        f"/patients?payment_min={low}&payment_max={high}"
        for low, high in random.Random(seed).sample(ranges, count)
    ]


def wrk(
    url: str,
    seconds: int,
    headers: Mapping[str, str],
    connections: int = 8,
    script: list[str] | None = None,
) -> dict[str, float]:
    """p50/p99 latency (ms) and requests/s for ``url`` (``script``: ``-s`` and its args)."""
    target = [url] if script is None else ["-s", script[0], url, "--", *script[1:]]
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *header_args,
            *target,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return {"p50_ms": latency("50%"), "p99_ms": latency("99%"), "rps": float(rps.group(1))}


def wrk_varied(base_url: str, seconds: int, headers: Mapping[str, str]) -> dict[str, float]:
    """wrk at 8 connections over varied_paths(), in order: no per-URL cache can help."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="varied-urls-") as paths:
        paths.write("\n".join(varied_paths()) + "\n")
        paths.flush()
        return wrk(
            base_url, seconds, headers, script=[str(LUA_SCRIPT), paths.name, str(WRK_THREADS)]
        )


@contextlib.contextmanager
def serving(port: int, env: Mapping[str, str]) -> Iterator[str]:
    """gunicorn serving the floor with the service's settings; yields its base URL."""
    process = subprocess.Popen(
        [
            GUNICORN,
            "--config",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
            "--error-logfile",
            "-",
            "bench.read_floor:application",
        ],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("gunicorn did not start the read floor") from None
                time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def read_floor_figures(
    database_url: str,
    env: dict[str, str],
    port: int,
    seconds: int,
    service_base: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, dict[str, float]]:
    """The floor's same-URL and varied-URL figures (wrk, 8 connections).

    Served on ``port`` by gunicorn with ``env`` (which must satisfy
    gunicorn.conf.py's check) and ``database_url``. With ``service_base``,
    first checks that the floor answers what the service answers. ``headers``
    are sent with every request (the floor ignores them; the service may not).
    """
    headers = headers or {}
    with serving(port, env | {"DATABASE_URL": database_url}) as base:
        if service_base is not None:
            check_same_output(service_base, base, CHECK_PATHS + varied_paths()[:3], headers)
        return {
            "same-URL": wrk(base + SAME_PATH, seconds, headers),
            "varied-URL": wrk_varied(base, seconds, headers),
        }


def main() -> None:
    """Print the floor's figures; with --service, check it and print the service's too."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--service",
        help="base URL of a running service, e.g. http://127.0.0.1:8099: check and measure it too",
    )
    parser.add_argument("--token", help="read token to send as Authorization: Bearer")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    if not database_url:
        parser.error("set DATABASE_URL to the database to read")
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    figures = {
        f"floor {name}": value
        for name, value in read_floor_figures(
            database_url, dict(os.environ), args.port, args.seconds, args.service, headers
        ).items()
    }
    if args.service:
        print("the floor answers what the service answers")
        figures["service same-URL"] = wrk(args.service + SAME_PATH, args.seconds, headers)
        figures["service varied-URL"] = wrk_varied(args.service, args.seconds, headers)
    print("| read (wrk, 8 connections) | p50 ms | p99 ms | req/s |\n|---|---|---|---|")
    for name, value in figures.items():
        print(f"| {name} | {value['p50_ms']:.2f} | {value['p99_ms']:.2f} | {value['rps']:.0f} |")
    if args.service:
        for name in ("same-URL", "varied-URL"):
            ratio = figures[f"service {name}"]["rps"] / figures[f"floor {name}"]["rps"]
            print(f"service/floor, {name}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
