"""A/B of the read path: cached and uncached GET /patients, two trees, one database.

    python -m bench.read_ab --before DIR --after DIR [--rounds 3] [--seconds 10]
                            [--patients 20000] [--payments 200000] [--keep-db]
                            [--data DAY1_DIR] [--db-name NAME] [--reuse-db] [--floor]

DIR is a checkout of the service (a git worktree, say) whose ``.venv`` runs
it. Builds one database (pp_ab: ``bench.generate``'s day-1 snapshots synced
through the after tree's ``flask sync``, then VACUUM ANALYZE), then, round by
round, serves it from each tree in turn (before, after, before, after, ...)
with ``make bench``'s gunicorn settings and environment (bench/run.py env():
production, tokens, rate limits out of the way) and measures with wrk at 8
connections, after a short warm-up:

* cached: one URL repeated (bench/run.py's range URL), a per-process cache hit;
* uncached: bench/read_floor.py's 20,000 distinct range URLs, in order, each a
  miss (the warm-up uses range URLs that are not in that list).

It also counts, in process (the Flask test client through a proxy that logs
the simple-protocol queries psycopg2 sends), the statements of a miss and of
a hit in each tree. Prints a table of medians over the rounds with the
after/before ratio and writes JSON under bench/results/. Drops pp_ab at the
end unless --keep-db.

``--data`` loads existing day-1 snapshots (``bench/data/default/day1``, say)
instead of generating them; ``--db-name`` names a database of its own (so
that two people can measure at once) and ``--reuse-db`` keeps one already
built by an earlier ``--keep-db`` run. ``--floor`` also measures
bench/read_floor.py's bare WSGI floor in every round, after the two trees,
and prints each tree's ratio to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import read_floor, run
from bench.database import recreate_database
from bench.generate import generate

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "pp_ab"  # --db-name replaces it
PORT = int(os.environ.get("BENCH_AB_PORT", "8093"))
FLOOR_PORT = PORT + 1
WARMUP_SECONDS = 3


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database_url() -> str:
    return run.ADMIN_URL.rsplit("/", 1)[0] + "/" + DB_NAME


def service_env() -> dict[str, str]:
    """bench/run.py's environment (what make bench serves with), on pp_ab."""
    return run.env() | {"DATABASE_URL": database_url()}


def git_head(tree: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def build_database(
    after: Path, patients: int, payments: int, day1: Path | None = None
) -> dict[str, int]:
    """Create the database from scratch and load day-1 snapshots through the after tree's CLI.

    ``day1`` holds existing snapshots (patients.json, payments.json) of that
    scale; without it they are generated.
    """
    recreate_database(DB_NAME)
    flask = [str(after / ".venv" / "bin" / "flask"), "--app", "wsgi"]
    subprocess.run(
        [*flask, "db", "upgrade"], check=True, capture_output=True, cwd=after, env=service_env()
    )
    with tempfile.TemporaryDirectory(prefix="read-ab-data-") as generated:
        if day1 is None:
            log(f"generating {patients} patients / {payments} payments")
            generate(Path(generated), patients, payments)
            day1 = Path(generated) / "day1"
        for entity in ("patients", "payments"):
            began = time.perf_counter()
            done = subprocess.run(
                [*flask, "sync", entity, str(day1 / f"{entity}.json")],
                cwd=after,
                env=service_env(),
                capture_output=True,
                text=True,
            )
            if done.returncode not in (0, 1):
                raise RuntimeError(f"flask sync {entity}: {done.stderr[-2000:]}")
            log(f"synced {entity} in {time.perf_counter() - began:.1f} s")
    subprocess.run(
        ["psql", database_url(), "-qc", "VACUUM ANALYZE"], check=True, capture_output=True
    )
    loaded = live_counts()
    if loaded != {"patients": patients, "payments": payments}:
        raise RuntimeError(f"loaded {loaded}, expected {patients} / {payments}")
    return loaded


def live_counts() -> dict[str, int]:
    """The live patients and payments the database holds."""
    counts = subprocess.run(
        [
            "psql",
            database_url(),
            "-Atc",
            "SELECT (SELECT count(*) FROM patients WHERE deleted IS NULL) || ' ' "
            "|| (SELECT count(*) FROM payments WHERE deleted IS NULL)",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {"patients": int(counts[0]), "payments": int(counts[1])}


def database_exists() -> bool:
    """Whether the database is there (built by an earlier --keep-db run)."""
    found = subprocess.run(
        ["psql", run.ADMIN_URL, "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return found == "1"


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def serve(tree: Path) -> run.Server:
    """gunicorn serving ``tree``'s app on PORT, as make bench serves it, on pp_ab."""
    if not port_free(PORT):
        raise RuntimeError(f"port {PORT} is taken (set BENCH_AB_PORT)")
    return run.Server(tree=tree, port=PORT, environment=service_env())


def warmup_paths() -> list[str]:
    """Range paths of read_floor's family that varied_paths() does not use."""
    used = set(read_floor.varied_paths())
    rest = [
        f"/patients?payment_min={low}&payment_max={low + width}"
        for low in range(100, 400)
        for width in range(1, 101)
    ]
    rest = [path for path in rest if path not in used]
    random.Random(5).shuffle(rest)
    return rest


def measure(tree: Path, seconds: int, cached_path: str, warmup_file: str) -> dict[str, Any]:
    """One server from ``tree``: warm up, then wrk on the cached URL and the varied URLs."""
    base = f"http://127.0.0.1:{PORT}"
    server = serve(tree)
    try:
        read_floor.wrk(base + cached_path, WARMUP_SECONDS, run.AUTH)
        read_floor.wrk(
            base,
            WARMUP_SECONDS,
            run.AUTH,
            script=[str(read_floor.LUA_SCRIPT), warmup_file, str(read_floor.WRK_THREADS)],
        )
        load = os.getloadavg()[0]
        cached = read_floor.wrk(base + cached_path, seconds, run.AUTH)
        uncached = read_floor.wrk_varied(base, seconds, run.AUTH)
        return {"cached": cached, "uncached": uncached, "loadavg_1m_before": load}
    finally:
        server.stop()


def measure_floor(seconds: int, cached_path: str, warmup_file: str) -> dict[str, Any]:
    """The read floor (bench/read_floor.py) measured as ``measure`` measures a tree."""
    with read_floor.serving(FLOOR_PORT, service_env()) as base:
        read_floor.wrk(base + cached_path, WARMUP_SECONDS, run.AUTH)
        read_floor.wrk(
            base,
            WARMUP_SECONDS,
            run.AUTH,
            script=[str(read_floor.LUA_SCRIPT), warmup_file, str(read_floor.WRK_THREADS)],
        )
        load = os.getloadavg()[0]
        cached = read_floor.wrk(base + cached_path, seconds, run.AUTH)
        uncached = read_floor.wrk_varied(base, seconds, run.AUTH)
        return {"cached": cached, "uncached": uncached, "loadavg_1m_before": load}


# Runs in the tree's interpreter, cwd the tree: a proxy between the app and
# PostgreSQL logs each simple-protocol query (psycopg2 sends nothing else),
# and the Flask test client makes one miss and one hit of each URL.
STATEMENT_PROBE = r"""
import json, os, socket, struct, sys, threading
from urllib.parse import urlsplit

target = urlsplit(os.environ["DATABASE_URL"])
queries = []

def pump(src, dst, parse):
    buffer, started = b"", False
    while True:
        data = src.recv(65536)
        if not data:
            try: dst.shutdown(socket.SHUT_WR)
            except OSError: pass
            return
        if parse:
            buffer += data
            while True:
                if not started:  # the startup message: length, no type byte
                    if len(buffer) < 4 or len(buffer) < struct.unpack("!I", buffer[:4])[0]: break
                    buffer, started = buffer[struct.unpack("!I", buffer[:4])[0]:], True
                    continue
                if len(buffer) < 5: break
                size = struct.unpack("!I", buffer[1:5])[0]
                if len(buffer) < 1 + size: break
                if buffer[:1] == b"Q":
                    queries.append(buffer[5:1 + size].rstrip(b"\0").decode())
                buffer = buffer[1 + size:]
        dst.sendall(data)

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()

def accept():
    while True:
        client, _ = listener.accept()
        server = socket.create_connection((target.hostname, target.port or 5432))
        threading.Thread(target=pump, args=(client, server, True), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, False), daemon=True).start()

threading.Thread(target=accept, daemon=True).start()
os.environ["DATABASE_URL"] = target._replace(
    netloc=f"{target.username}@127.0.0.1:{listener.getsockname()[1]}",
    query="sslmode=disable").geturl()

sys.path.insert(0, os.getcwd())
from wsgi import app
import app as package
client = app.test_client()
headers = json.loads(sys.argv[1])
paths = json.loads(sys.argv[2])
client.get("/patients?payment_min=1&payment_max=2", headers=headers)  # connect, first-use queries
report = {"app": package.__file__, "requests": []}
for path in paths:
    for kind in ("miss", "hit"):
        del queries[:]
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)
        report["requests"].append({"path": path, "kind": kind, "statements": list(queries)})
print(json.dumps(report))
"""


def statement_counts(tree: Path, paths: list[str]) -> dict[str, Any]:
    """The statements sent for a miss and a hit of each of ``paths``, in ``tree``."""
    done = subprocess.run(
        [
            str(tree / ".venv" / "bin" / "python"),
            "-c",
            STATEMENT_PROBE,
            json.dumps(run.AUTH),
            json.dumps(paths),
        ],
        cwd=tree,
        env=service_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"statement probe in {tree}: {done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["app"].startswith(str(tree.resolve())):
        raise RuntimeError(f"the probe in {tree} imported {report['app']}")
    return report


def median_of(rounds: list[dict[str, Any]], scenario: str, figure: str) -> float:
    return statistics.median(r[scenario][figure] for r in rounds)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--payments", type=int, default=200_000)
    parser.add_argument("--cached-path", default=read_floor.SAME_PATH)
    parser.add_argument("--keep-db", action="store_true", help="keep the database at the end")
    parser.add_argument("--data", type=Path, help="day-1 snapshots to load instead of generating")
    parser.add_argument("--db-name", default=DB_NAME, help="the database to build (pp_ab)")
    parser.add_argument("--reuse-db", action="store_true", help="use the database if it exists")
    parser.add_argument("--floor", action="store_true", help="measure the read floor each round")
    return parser.parse_args()


def run_rounds(trees: dict[str, Path], args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """``args.rounds`` rounds of before, after (and the floor), in that order each round."""
    names = ["before", "after", *(["floor"] if args.floor else [])]
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="warmup-urls-") as warmup:
        warmup.write("\n".join(warmup_paths()) + "\n")
        warmup.flush()
        for number in range(args.rounds):
            for name in names:
                log(f"round {number + 1}/{args.rounds}: {name}")
                figures = (
                    measure_floor(args.seconds, args.cached_path, warmup.name)
                    if name == "floor"
                    else measure(trees[name], args.seconds, args.cached_path, warmup.name)
                )
                log(f"  {json.dumps(figures)}")
                rounds[name].append(figures)
    return rounds


def medians(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Medians of each figure, after/before, and each tree's ratio to the floor if measured."""
    table = {}
    for scenario in ("cached", "uncached"):
        for figure in ("rps", "p50_ms", "p99_ms"):
            before = median_of(rounds["before"], scenario, figure)
            after = median_of(rounds["after"], scenario, figure)
            # Each round's after/before, paired in time: drift between rounds cancels.
            paired = statistics.median(
                a[scenario][figure] / b[scenario][figure]
                for a, b in zip(rounds["after"], rounds["before"], strict=True)
            )
            table[f"{scenario} {figure}"] = {
                "before": before,
                "after": after,
                "ratio": after / before,
                "paired_ratio": paired,
            }
    for scenario in ("cached", "uncached") if "floor" in rounds else ():
        for name in ("before", "after"):
            table[f"{scenario} rps {name}/floor"] = {
                "floor": median_of(rounds["floor"], scenario, "rps"),
                "paired_ratio": statistics.median(
                    t[scenario]["rps"] / f[scenario]["rps"]
                    for t, f in zip(rounds[name], rounds["floor"], strict=True)
                ),
            }
    return table


def print_tables(table: dict[str, dict[str, float]], commits: dict[str, str]) -> None:
    print(
        f"| read | before {commits['before']} | after {commits['after']} | after/before "
        "| median of per-round after/before |"
    )
    print("|---|---|---|---|---|")
    for key, row in table.items():
        if "floor" not in row:
            print(
                f"| {key} | {row['before']:.2f} | {row['after']:.2f} | {row['ratio']:.3f} "
                f"| {row['paired_ratio']:.3f} |"
            )
    floor_rows = {key: row for key, row in table.items() if "floor" in row}
    if floor_rows:
        print("\n| read | floor req/s | median of per-round ratio to the floor |\n|---|---|---|")
        for key, row in floor_rows.items():
            print(f"| {key} | {row['floor']:.2f} | {row['paired_ratio']:.3f} |")


def main() -> None:
    args = parse_args()
    global DB_NAME
    DB_NAME = args.db_name
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (as make bench does)")
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    commits = {name: git_head(tree) for name, tree in trees.items()}
    log(
        f"before {commits['before']} ({trees['before']}), after {commits['after']} "
        f"({trees['after']})"
    )
    if args.reuse_db and database_exists():
        loaded = live_counts()
        log(f"reusing {DB_NAME}: {loaded}")
    else:
        loaded = build_database(trees["after"], args.patients, args.payments, args.data)
    try:
        probe_paths = [args.cached_path, read_floor.varied_paths()[0]]
        statements = {name: statement_counts(tree, probe_paths) for name, tree in trees.items()}
        rounds = run_rounds(trees, args)
    finally:
        if not args.keep_db:
            subprocess.run(
                ["psql", run.ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"],
                check=True,
                capture_output=True,
            )

    table = medians(rounds)
    counts = {
        name: {f"{r['kind']} {r['path']}": len(r["statements"]) for r in report["requests"]}
        for name, report in statements.items()
    }

    print(
        f"{loaded['patients']} patients / {loaded['payments']} payments; wrk 8 connections, "
        f"{args.seconds} s; median of {args.rounds} alternating rounds"
    )
    print_tables(table, commits)
    print("\nstatements per request (in process):")
    for name, report in statements.items():
        for request in report["requests"]:
            texts = "; ".join(" ".join(s.split())[:48] for s in request["statements"])
            print(
                f"  {name} {request['kind']} {request['path']}: "
                f"{len(request['statements'])}  [{texts}]"
            )

    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%S%z")
    out = results / f"{stamp}-read-ab-{commits['before']}-{commits['after']}.json"
    out.write_text(
        json.dumps(
            {
                "when": stamp,
                "machine": platform.node(),
                "cpus": os.cpu_count(),
                "trees": {name: str(tree) for name, tree in trees.items()},
                "commits": commits,
                "scale": loaded,
                "seconds": args.seconds,
                "rounds_count": args.rounds,
                "cached_path": args.cached_path,
                "varied_urls": read_floor.VARIED_COUNT,
                "medians": table,
                "rounds": rounds,
                "statement_counts": counts,
                "statements": statements,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
