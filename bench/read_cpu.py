"""CPU per uncached first page of GET /patients, in process: the fast path, Flask's path, the floor.

    DATABASE_URL=postgresql://.../pp_reads python -m bench.read_cpu [--pages 1000] [--rounds 3]

Builds the service's WSGI app twice (READ_FAST_PATH on and off, production
settings, a read token, rate limits far above what is sent) and takes
bench/read_floor.py's bare WSGI app, then calls each directly (no HTTP, no
test client) with distinct range URLs, so that every page is a cache miss,
and prints the process's CPU time per page, round by round, in turns. The
access log is silenced for all three (it is a write to stderr). Wall time is
printed too, but PostgreSQL's share of it is the same for all three.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

TOKEN = "bench-read-cpu-0123456789abcdef"


def environs(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` GET /patients range requests, each with its own range."""
    from werkzeug.test import EnvironBuilder

    rng = random.Random(seed)
    requests = []
    for _ in range(count):
        low = rng.randint(0, 900)
        high = f"{low + rng.randint(1, 50)}.{rng.randint(10, 99)}"
        builder = EnvironBuilder(
            path="/patients",
            query_string=f"payment_min={low}&payment_max={high}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        requests.append(builder.get_environ())
    return requests


def per_page(
    app: Callable[..., Iterable[bytes]], requests: list[dict[str, Any]]
) -> tuple[float, float]:
    """CPU and wall milliseconds per request of ``app`` over ``requests``."""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        assert status.startswith("200"), status

    cpu, wall = time.process_time(), time.perf_counter()
    for environ in requests:
        body = app(environ, start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()
    count = len(requests)
    return (time.process_time() - cpu) / count * 1000, (time.perf_counter() - wall) / count * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    os.environ |= {
        "APP_ENV": "production",
        "SECRET_KEY": "bench-" + "0" * 32,
        "API_READ_TOKENS": TOKEN,
        "RATELIMIT_READ": "1000000000 per minute",
    }
    from app.factory import create_app
    from bench import read_floor

    apps = {
        "fast path": create_app({"READ_FAST_PATH": True}).wsgi_app,
        "Flask": create_app({"READ_FAST_PATH": False}).wsgi_app,
        "floor": read_floor.application,
    }
    logging.getLogger("app.access").setLevel(logging.WARNING)
    figures: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for round_ in range(options.rounds):
        for index, (name, app) in enumerate(apps.items()):
            requests = environs(options.pages + 1, seed=round_ * 10 + index)
            per_page(app, requests[:1])  # connect, compile, warm the pin
            figures[name].append(per_page(app, requests[1:]))
    print(
        "| uncached first page, in process | CPU ms per page (rounds) | median | wall ms median |"
    )
    print("|---|---|---|---|")
    for name, rounds in figures.items():
        cpus = ", ".join(f"{cpu:.2f}" for cpu, _ in rounds)
        cpu_median = statistics.median(cpu for cpu, _ in rounds)
        wall_median = statistics.median(wall for _, wall in rounds)
        print(f"| {name} | {cpus} | {cpu_median:.2f} | {wall_median:.2f} |")


if __name__ == "__main__":
    main()
