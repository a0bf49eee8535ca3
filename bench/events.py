"""The event relay's publish rate (SPEC §6): every event of a database, from the start.

``events_bench(database_url)`` runs `flask events relay --exit-when-idle` on
a database whose syncs were applied (make bench's: the 1M-payment initial
load is ~1.1M events), from position zero, to a throwaway exchange bound to
a durable queue (or to none: the broker then drops every message, and still
confirms it), and returns the time to publish them all and the rates. The
exchange and queue are deleted afterwards; the relay's stored position is
reset before and left at the end.

    python -m bench.events [--patients 10000 --payments 100000]

generates a small data set, syncs its two days into a fresh database
(pp_bench_events) with `flask sync`, and prints the figures for both cases.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import pika
import sqlalchemy as sa

from bench.database import ADMIN_URL, recreate_database
from bench.generate import generate

ROOT = Path(__file__).resolve().parent.parent
FLASK = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi"]
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
DB_NAME = "pp_bench_events"
# Events per applied sync: one per record it created, updated, deleted or restored, plus
# its sync.applied (app/events/status.py counts the lag the same way).
EVENTS_SQL = sa.text(
    "SELECT count(*), coalesce(sum(CAST(report ->> 'created' AS integer) "
    "+ CAST(report ->> 'updated' AS integer) + CAST(report ->> 'deleted' AS integer) "
    "+ CAST(report ->> 'restored' AS integer) + 1), 0) FROM sync_runs WHERE NOT dry_run"
)
_SAMPLE_SECONDS = 0.25


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def events_bench(
    database_url: str,
    broker_url: str = BROKER_URL,
    *,
    bound: bool = True,
    env: Mapping[str, str] | None = None,
    batch_size: int | None = None,
) -> dict[str, float]:
    """Publish every event of ``database_url`` from the start with the relay; the figures.

    ``publish_s``: from the relay's start to the last confirm; ``events_per_s``:
    events / publish_s; ``sustained_events_per_s``: the rate between 10% and
    90% of the events (startup and the last window left out);
    ``relay_cpu_s``: the relay process's CPU time. ``env`` is the
    environment the relay runs with (os.environ by default).
    """
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        syncs, total = connection.execute(EVENTS_SQL).one()
        connection.execute(sa.text("DELETE FROM event_relay_position"))
    exchange = f"bench-events-{uuid.uuid4().hex[:12]}"
    broker = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = broker.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    if bound:
        channel.queue_declare(exchange, durable=True)
        channel.queue_bind(exchange, exchange, "#")
    try:
        figures = _run_relay(
            engine,
            {
                **(env or os.environ),
                "DATABASE_URL": database_url,
                "EVENTS_BROKER_URL": broker_url,
                "EVENTS_EXCHANGE": exchange,
                **({"EVENTS_BATCH_SIZE": str(batch_size)} if batch_size else {}),
            },
            total,
        )
        if bound:
            held = channel.queue_declare(exchange, passive=True).method.message_count
            if held != total:
                raise RuntimeError(f"the queue holds {held} messages, expected {total}")
    finally:
        if bound:
            channel.queue_delete(exchange)
        channel.exchange_delete(exchange)
        broker.close()
        engine.dispose()
    return {"syncs": float(syncs), "events": float(total), **figures}


def _run_relay(engine: sa.Engine, env: Mapping[str, str], total: int) -> dict[str, float]:
    """Run the relay until it exits idle, sampling its stored total; time, rates and CPU."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    relay = subprocess.Popen(
        [*FLASK, "events", "relay", "--exit-when-idle"],
        cwd=ROOT,
        env=dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    samples: list[tuple[float, int]] = []
    while relay.poll() is None:
        time.sleep(_SAMPLE_SECONDS)
        with engine.connect() as connection:
            published = (
                connection.scalar(
                    sa.text("SELECT published_total FROM event_relay_position WHERE id = 1")
                )
                or 0
            )
        samples.append((time.monotonic() - began, published))
    elapsed = time.monotonic() - began
    stderr = relay.stderr.read().decode(errors="replace") if relay.stderr else ""
    if relay.returncode != 0:
        raise RuntimeError(f"the relay exited {relay.returncode}:\n{stderr[-3000:]}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with engine.connect() as connection:
        published = (
            connection.scalar(
                sa.text("SELECT published_total FROM event_relay_position WHERE id = 1")
            )
            or 0
        )
    if published != total:
        raise RuntimeError(f"the relay confirmed {published} events, expected {total}")
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "publish_s": round(elapsed, 2),
        "events_per_s": round(total / elapsed),
        "sustained_events_per_s": round(_sustained(samples, total)),
        "relay_cpu_s": round(cpu, 1),
    }


def _sustained(samples: list[tuple[float, int]], total: int) -> float:
    """The rate between the samples at 10% and at 90% of ``total`` (0 if too few samples)."""
    low = next(((t, n) for t, n in samples if n >= total * 0.1), None)
    high = next(((t, n) for t, n in samples if n >= total * 0.9), None)
    if low is None or high is None or high[0] <= low[0]:
        return 0.0
    return (high[1] - low[1]) / (high[0] - low[0])


def _prepare(patients: int, payments: int) -> str:
    """A fresh database with a generated data set's two days synced; its URL."""
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + DB_NAME
    recreate_database(DB_NAME)
    env = os.environ | {"DATABASE_URL": url, "SYNC_GUARD_MIN_ROWS": str(10**9)}
    subprocess.run([*FLASK, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as out:
        log(f"generating {patients} patients / {payments} payments")
        generate(Path(out), patients, payments)
        for day in ("day1", "day2"):
            for entity in ("patients", "payments"):
                log(f"flask sync {entity} {day}")
                subprocess.run(
                    [*FLASK, "sync", entity, str(Path(out) / day / f"{entity}.json")],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
    return url


def main() -> None:
    """Command-line entry point: a small data set, both cases, figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--payments", type=int, default=100_000)
    parser.add_argument(
        "--database-url",
        help="an existing database with applied syncs "
        "(default: generate and sync into a fresh pp_bench_events)",
    )
    args = parser.parse_args()
    url = args.database_url or _prepare(args.patients, args.payments)
    figures = {}
    for case, bound in (("bound_queue", True), ("no_queue", False)):
        log(f"relay, {case.replace('_', ' ')}")
        figures[case] = events_bench(url, bound=bound)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
