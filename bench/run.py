"""`make bench`: sync and read figures through the real paths, against PostgreSQL.

Syncs go through gunicorn + HTTP POST with gzip bodies (and once through the
CLI); reads are measured with wrk at 8 connections. Each sync scenario runs
BENCH_REPEAT times on a fresh database and the median is reported. Prints a
table and writes JSON under bench/results/.

    python -m bench.run [--scale default|large] [--repeat N] [--no-events] [--no-dlt] [--reads-only]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import dlt_peer, read_floor, sync_floor
from bench.async_syncs import async_payments
from bench.console import console_pages
from bench.database import ADMIN_URL, recreate_database
from bench.events import events_bench
from bench.exports import export_figures, search_figures
from bench.generate import generate
from bench.processes import vm_hwm_kb

ROOT = Path(__file__).resolve().parent.parent
SCALES = {"default": (100_000, 1_000_000), "large": (1_000_000, 10_000_000)}
# BENCH_DB: a database of its own, so that two trees can measure at once.
DB_NAME = os.environ.get("BENCH_DB", "pp_bench")
PORT = int(os.environ.get("BENCH_PORT", "8077"))
FLASK = [str(ROOT / ".venv" / "bin" / "flask"), "--app", "wsgi"]
TOKEN = "bench-write-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def database_url() -> str:
    """The benchmark database's URL."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + DB_NAME


def fresh_database(tree: Path = ROOT) -> None:
    """Drop, create and migrate the benchmark database (with ``tree``'s migrations)."""
    recreate_database(DB_NAME)
    flask = [str(tree / ".venv" / "bin" / "flask"), *FLASK[1:]]
    subprocess.run([*flask, "db", "upgrade"], check=True, capture_output=True, cwd=tree, env=env())


def env() -> dict[str, str]:
    """The environment the service runs with: as in production, access control on."""
    # The large scale's 680 MB payments snapshot is over the default 256 MiB limit.
    # Budgets far above what wrk sends, so that the limiter is measured, not hit.
    return os.environ | {
        "DATABASE_URL": database_url(),
        "SYNC_LOCK_TIMEOUT": "600",
        "MAX_CONTENT_LENGTH": str(2 << 30),
        "APP_ENV": "production",
        "SECRET_KEY": "bench-" + "0" * 32,
        "API_WRITE_TOKENS": TOKEN,
        "RATELIMIT_READ": "1000000000 per minute",
        "RATELIMIT_SYNC": "1000000 per minute",
    }


def dataset(scale: str) -> Path:
    """Generate (once) the snapshots and their gzipped copies for ``scale``."""
    patients, payments = SCALES[scale]
    out = ROOT / "bench" / "data" / scale
    if not (out / "day2" / "payments.json.gz").exists():
        log(f"generating {patients} patients / {payments} payments into {out}")
        generate(out, patients, payments)
        for path in out.glob("day*/*.json"):
            with path.open("rb") as src, gzip.open(f"{path}.gz", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return out


class Server:
    """gunicorn serving the app, with access to its workers' peak RSS."""

    def __init__(
        self,
        *,
        tree: Path = ROOT,
        port: int = PORT,
        environment: dict[str, str] | None = None,
        **settings: str,
    ) -> None:
        """Serve ``tree``'s app (its .venv) on ``port`` with ``environment`` (env()) + settings."""
        self.port = port
        self.process = subprocess.Popen(
            [
                str(tree / ".venv" / "bin" / "gunicorn"),
                "--config",
                "gunicorn.conf.py",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "/dev/null",
                "--error-logfile",
                "-",
                "wsgi:app",
            ],
            cwd=tree,
            env=(environment or env()) | settings,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not start in {tree}")

    def workers(self) -> list[int]:
        """PIDs of the worker processes."""
        out = subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        return [int(pid) for pid in out.split()]

    def reset_peak_rss(self) -> None:
        """Make each worker's VmHWM start again from its current RSS."""
        for pid in self.workers():
            Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        """The largest VmHWM among the workers, in MB."""
        return max(vm_hwm_kb(pid) for pid in self.workers()) / 1024

    def stop(self) -> None:
        """Shut gunicorn down."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


def post(path: Path, entity: str, query: str = "") -> tuple[float, dict[str, Any]]:
    """POST a gzipped snapshot; return the seconds it took and the report."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)
    began = time.perf_counter()
    with path.open("rb") as body:
        connection.request(
            "POST",
            f"/{entity}{query}",
            body=body,
            headers={
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(path.stat().st_size),
                **AUTH,
            },
        )
        response = connection.getresponse()
        payload = response.read()
    elapsed = time.perf_counter() - began
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST /{entity}{query}: {response.status} {payload[:300]!r}")
    return elapsed, json.loads(payload)


def http_syncs(data: Path, tree: Path = ROOT) -> dict[str, float]:
    """One round of the HTTP scenarios on a fresh database, served by ``tree``."""
    fresh_database(tree)
    server = Server(tree=tree)
    try:
        figures: dict[str, float] = {}
        server.reset_peak_rss()
        seconds_p, _ = post(data / "day1" / "patients.json.gz", "patients")
        seconds_m, _ = post(data / "day1" / "payments.json.gz", "payments")
        figures["initial_s"] = seconds_p + seconds_m
        figures["initial_payments_s"] = seconds_m
        figures["peak_rss_mb"] = server.peak_rss_mb()
        for name in ("resync", "unchanged"):
            seconds_p, _ = post(data / "day2" / "patients.json.gz", "patients")
            seconds_m, _ = post(data / "day2" / "payments.json.gz", "payments")
            figures[f"{name}_s"] = seconds_p + seconds_m
            figures[f"{name}_payments_s"] = seconds_m
        figures["dry_run_payments_s"], _ = post(
            data / "day1" / "payments.json.gz", "payments", "?dry_run=true&force=true"
        )
        return figures
    finally:
        server.stop()


def floor_syncs(data: Path, snapshots: dict[str, io.StringIO]) -> dict[str, float]:
    """One round of the sync floor (bench/sync_floor.py) on a fresh database.

    The patients go through the service (the floor is payments rows only),
    each payments snapshot through the floor: initial, re-sync, resend.
    """
    fresh_database()
    server = Server()
    try:
        post(data / "day1" / "patients.json.gz", "patients")
        figures = {"floor_initial_payments_s": sync_floor.apply(database_url(), snapshots["day1"])}
        post(data / "day2" / "patients.json.gz", "patients")
        figures["floor_resync_payments_s"] = sync_floor.apply(database_url(), snapshots["day2"])
        figures["floor_unchanged_payments_s"] = sync_floor.apply(database_url(), snapshots["day2"])
        return figures
    finally:
        server.stop()


def dlt_python(enabled: bool) -> tuple[Path | None, str]:
    """The dlt peer's interpreter (bench/dlt_peer.py), or None and why it is left out."""
    if not enabled:
        return None, "off (--no-dlt / BENCH_DLT=0)"
    try:
        return dlt_peer.ensure_venv(), ""
    except dlt_peer.DltUnavailable as error:
        log(f"the dlt peer is left out: {error}")
        return None, f"unavailable: {error}"


def cli_initial(data: Path) -> dict[str, float]:
    """The initial sync through `flask sync`, with the CLI process's peak RSS."""
    fresh_database()
    figures = {"cli_initial_s": 0.0, "cli_peak_rss_mb": 0.0}
    for entity in ("patients", "payments"):
        began = time.perf_counter()
        process = subprocess.Popen(
            [*FLASK, "sync", entity, str(data / "day1" / f"{entity}.json")],
            cwd=ROOT,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # VmHWM, not the rusage of wait4: that one keeps the peak of the forked
        # parent from before exec().
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, vm_hwm_kb(process.pid))
            time.sleep(0.05)
        figures["cli_initial_s"] += time.perf_counter() - began
        figures["cli_peak_rss_mb"] = max(figures["cli_peak_rss_mb"], peak_kb / 1024)
        if process.returncode not in (0, 1):
            raise RuntimeError(f"flask sync {entity} failed")
    return figures


def wrk(
    url: str, seconds: int, connections: int = 8, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """p50/p99 latency (ms) and requests/s for ``url`` with 8 connections (or as many as given)."""
    threads = min(2, connections)
    extra = [arg for name, value in (headers or {}).items() for arg in ("-H", f"{name}: {value}")]
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: {AUTH['Authorization']}",
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency(label: str) -> float:
        value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} failed responses")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"p50_ms": latency("50%"), "p99_ms": latency("99%"), "rps": rps}


def etag(url: str) -> str:
    """The ETag of a 200 answer to ``url``."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH)) as response:
        return response.headers["ETag"]


def deep_page(base: str, pages: int) -> tuple[str, int]:
    """The URL of the page ``pages`` deep (following Link), and how deep it really is."""
    url = base
    for depth in range(pages):
        with urllib.request.urlopen(urllib.request.Request(url, headers=AUTH)) as response:
            link = response.headers.get("Link")
        if not link:
            return url, depth
        url = link[1 : link.index(">")]
    return url, pages


Figures = dict[str, dict[str, float]]


def reads(data: Path, seconds: int) -> tuple[Figures, Figures, dict[str, Any]]:
    """Read latencies after the initial sync, cache on and off; then reads over history.

    Returns the API's figures, the console's, and the rounds against the read floor.
    """
    fresh_database()
    server = Server()
    try:
        initial = {
            entity: post(data / "day1" / f"{entity}.json.gz", entity)[1]["syncId"]
            for entity in ("patients", "payments")
        }
    finally:
        server.stop()
    # What autovacuum would do soon after a bulk load; measured now, it would
    # compete with the readers for the two cores.
    subprocess.run(
        ["psql", database_url(), "-qc", "VACUUM ANALYZE patients, payments"],
        check=True,
        capture_output=True,
    )
    base = f"http://127.0.0.1:{PORT}"
    range_url = f"{base}/patients?payment_min=100&payment_max=200"
    figures: dict[str, dict[str, float]] = {}
    for cache, size in (("cached", "256"), ("uncached", "0")):
        server = Server(READ_CACHE_SIZE=size)
        try:
            deep_url, depth = deep_page(range_url, 100)
            targets = {
                "range_first_page": range_url,
                f"range_page_{depth}": deep_url,
                "top_payers": f"{base}/patients?sort=-paymentsTotal",
                "payments_of_patient": f"{base}/payments?external_id=P00012345",
            }
            for name, url in targets.items():
                figures[f"{name} ({cache})"] = wrk(url, seconds)
            # A dashboard re-polling unchanged data: it sends back the ETag, gets 304.
            figures[f"range_first_page, If-None-Match ({cache})"] = wrk(
                range_url, seconds, headers={"If-None-Match": etag(range_url)}
            )
            figures |= analytics_reads(base, seconds, cache)
            figures[f"varied_urls ({cache})"] = read_floor.wrk_varied(base, seconds, AUTH)
            if cache == "cached":
                # Checked equal to this server's pages before it is measured.
                floor = read_floor.read_floor_figures(
                    database_url(), env(), PORT + 1, seconds, service_base=base, headers=AUTH
                )
                figures |= {f"floor: {name}": values for name, values in floor.items()}
        finally:
            server.stop()
    against_floor = reads_against_the_floor(seconds)
    history, console = history_reads(data, seconds, initial["payments"])
    return figures | history, console, against_floor


FLOOR_ROUNDS = 3


def reads_against_the_floor(seconds: int) -> dict[str, Any]:
    """The read targets' ratios (issue 21) as medians of alternating rounds.

    The reads above are one wrk run each, and the service's and the floor's
    figures move by a quarter from run to run on a shared machine. Here the
    service (its cache on, as deployed) and the floor take turns, each
    warmed up (bench/read_ab.py's measure): the range URL repeated, then the
    20,000 varied range URLs, each a cache miss.
    """
    from bench import read_ab  # it imports this module

    read_ab.DB_NAME = DB_NAME
    measured = []
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="warmup-urls-") as warmup:
        warmup.write("\n".join(read_ab.warmup_paths()) + "\n")
        warmup.flush()
        for number in range(FLOOR_ROUNDS):
            log(f"reads against the floor, round {number + 1}/{FLOOR_ROUNDS}")
            service = read_ab.measure(ROOT, seconds, read_floor.SAME_PATH, warmup.name)
            floor = read_ab.measure_floor(seconds, read_floor.SAME_PATH, warmup.name)
            measured.append({"service": service, "floor": floor})
    ratios = {
        read: [each["service"][read]["rps"] / each["floor"][read]["rps"] for each in measured]
        for read in ("cached", "uncached")
    }
    return {
        "rounds": measured,
        "ratios": ratios,
        "median": {read: statistics.median(values) for read, values in ratios.items()},
    }


def analytics_urls(base: str, as_of: str | None = None) -> dict[str, str]:
    """The three analytics reads (SPEC §3), optionally as of an instant."""
    at = "" if as_of is None else f"as_of={quote(as_of)}"
    return {
        "analytics summary": f"{base}/analytics/summary?{at}",
        "analytics histogram": f"{base}/analytics/histogram?buckets=20&{at}",
        "analytics syncs": f"{base}/analytics/syncs?{at}",
    }


def analytics_reads(base: str, seconds: int, cache: str) -> Figures:
    """The analytics reads: one client uncached (the budget is a p50 for one dashboard,
    issue 22: under 100 ms), 8 connections cached (dashboards re-polling one version)."""
    connections = 8 if cache == "cached" else 1
    return {
        f"{name} ({cache}, {connections} connection{'s' * (connections > 1)})": wrk(
            url, seconds, connections=connections
        )
        for name, url in analytics_urls(base).items()
    }


def history_reads(data: Path, seconds: int, initial_sync: int) -> tuple[Figures, Figures]:
    """Reads over history (SPEC §5), uncached, after the next day's re-sync; then the console.

    Changes pages are measured like the list pages above (8 connections);
    ``as_of`` range queries, which aggregate versions, with one connection:
    the budget is a p50 for one client. Console pages (SPEC §7): p50/p95
    over 50 requests each, one connection.
    """
    base = f"http://127.0.0.1:{PORT}"
    server = Server(READ_CACHE_SIZE="0")
    try:
        before_resync = datetime.now(UTC).isoformat()
        resync = {
            entity: post(data / "day2" / f"{entity}.json.gz", entity)[1]["syncId"]
            for entity in ("patients", "payments")
        }
        subprocess.run(
            ["psql", database_url(), "-qc", "VACUUM ANALYZE"], check=True, capture_output=True
        )
        changes = f"{base}/syncs/{resync['payments']}/changes"
        with urllib.request.urlopen(
            urllib.request.Request(f"{changes}?limit=1", headers=AUTH)
        ) as response:
            changed_payment = json.load(response)[0]["externalId"]
        resync_deep, resync_depth = deep_page(changes, 100)
        initial_deep, initial_depth = deep_page(f"{base}/syncs/{initial_sync}/changes", 100)
        paged = {
            "re-sync changes, first page": changes,
            f"re-sync changes, page {resync_depth}": resync_deep,
            f"initial-load changes, page {initial_depth}": initial_deep,
            "one payment's history": f"{base}/payments/{quote(changed_payment, safe='')}/history",
        }
        figures = {f"{name} (uncached)": wrk(url, seconds) for name, url in paged.items()}
        as_of = f"&as_of={quote(before_resync)}"
        figures["range as_of before the re-sync (uncached, 1 connection)"] = wrk(
            f"{base}/patients?payment_min=100&payment_max=200{as_of}", seconds, connections=1
        )
        figures["one patient as_of before the re-sync (uncached, 1 connection)"] = wrk(
            f"{base}/patients/{quote(top_payer(base), safe='')}?{as_of[1:]}", seconds, connections=1
        )
        for name, url in analytics_urls(base, before_resync).items():
            if "syncs" not in name:
                figures[f"{name} as_of before the re-sync (uncached, 1 connection)"] = wrk(
                    url, seconds, connections=1
                )
        return figures, console_pages(base, TOKEN)
    finally:
        server.stop()


def exports_and_search() -> dict[str, Any]:
    """CSV exports (rows/s, worker peak RSS) and the console's name search, on the data loaded."""
    base = f"http://127.0.0.1:{PORT}"
    server = Server(READ_CACHE_SIZE="0")
    try:
        server.reset_peak_rss()
        return {
            "exports": export_figures(base, TOKEN, server.peak_rss_mb),
            "search": search_figures(base, TOKEN),
        }
    finally:
        server.stop()


def top_payer(base: str) -> str:
    """The externalId of the live patient with the highest total."""
    with urllib.request.urlopen(
        urllib.request.Request(f"{base}/patients?sort=-paymentsTotal&limit=1", headers=AUTH)
    ) as response:
        return str(json.load(response)[0]["externalId"])


def relay_publishing(data: Path) -> dict[str, float]:
    """The event relay publishing the initial load's events (SPEC §6) to a bound durable queue.

    On a fresh database with the initial sync applied: the relay, PostgreSQL
    and RabbitMQ share the machine's cores, as in a one-host deployment.
    """
    fresh_database()
    server = Server()
    try:
        for entity in ("patients", "payments"):
            post(data / "day1" / f"{entity}.json.gz", entity)
    finally:
        server.stop()
    return events_bench(database_url(), bound=True, env=env())


def main() -> None:
    """Run every scenario, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default=os.environ.get("BENCH_SCALE", "default")
    )
    parser.add_argument("--repeat", type=int, default=int(os.environ.get("BENCH_REPEAT", "3")))
    parser.add_argument("--wrk-seconds", type=int, default=10)
    # At the large scale the relay alone would publish 11M events (~20 min).
    parser.add_argument(
        "--no-events",
        action="store_true",
        default=os.environ.get("BENCH_EVENTS", "1") == "0",
        help="skip the event relay figures (BENCH_EVENTS=0)",
    )
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="skip the sync rounds and the event relay: the read figures alone",
    )
    parser.add_argument(
        "--no-dlt",
        action="store_true",
        default=os.environ.get("BENCH_DLT", "1") == "0",
        help="skip the dlt peer of issue 21 (BENCH_DLT=0)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (make bench does it)")
    data = dataset(args.scale)
    if args.reads_only:
        read_figures, console_figures, against_floor = reads(data, args.wrk_seconds)
        print(read_table(read_figures, console_figures))
        print(floor_rounds_table(against_floor))
        return
    log("parsing the payments snapshots for the sync floor")
    snapshots = {day: sync_floor.parsed(data / day / "payments.json") for day in ("day1", "day2")}
    # What our sync leaves live after each day, for the dlt peer's check of its current rows.
    live = {day: text.getvalue().count("\n") for day, text in snapshots.items()}
    dlt, dlt_absent = dlt_python(not args.no_dlt)
    rounds = []
    for number in range(args.repeat):
        log(f"round {number + 1}/{args.repeat}: HTTP syncs")
        figures = http_syncs(data)
        log(f"round {number + 1}/{args.repeat}: CLI initial sync")
        figures |= cli_initial(data)
        log(f"round {number + 1}/{args.repeat}: sync floor")
        figures |= floor_syncs(data, snapshots)
        if dlt:
            log(f"round {number + 1}/{args.repeat}: dlt peer")
            try:
                figures |= dlt_peer.dlt_syncs(data, live, dlt)
            except dlt_peer.DltStepFailed as error:
                log(f"the dlt peer is left out from now on: {error}")
                dlt, dlt_absent = None, f"failed: {error}"
        log(json.dumps(figures))
        rounds.append(figures)
    # Every key of any round: the dlt peer's are missing from rounds after it failed.
    keys = dict.fromkeys(key for r in rounds for key in r)
    syncs = {key: statistics.median(r[key] for r in rounds if key in r) for key in keys}
    log("asynchronous sync (one round)")
    async_figures = async_payments(
        data,
        fresh_database=fresh_database,
        server=Server,
        post=post,
        port=PORT,
        headers=AUTH,
        worker_command=FLASK,
        env=env(),
        root=ROOT,
    )
    async_figures["sync_payments_s"] = syncs["initial_payments_s"]
    async_figures["end_to_end_over_sync"] = (
        async_figures["async_end_to_end_payments_s"] / syncs["initial_payments_s"]
    )
    log("reads")
    read_figures, console_figures, against_floor = reads(data, args.wrk_seconds)
    log("CSV exports and name search")
    export_and_search = exports_and_search()
    relay_figures: dict[str, float] = {}
    if not args.no_events:
        log("event relay")
        relay_figures = relay_publishing(data)
    result = {
        "scale": args.scale,
        "patients": SCALES[args.scale][0],
        "payments": SCALES[args.scale][1],
        "repeat": args.repeat,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "syncs_median": syncs,
        "sync_rounds": rounds,
        "dlt_peer": dlt_absent or f"ran: {dlt_peer.pinned()}",
        "reads": read_figures,
        "reads_against_floor": against_floor,
        "console": console_figures,
        "exports": export_and_search["exports"],
        "name_search": export_and_search["search"],
        "events": relay_figures,
        "async": async_figures,
    }
    out = ROOT / "bench" / "results" / f"{result['at'].replace(':', '')}-{args.scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwritten to {out.relative_to(ROOT)}")


def floor_rounds_table(against_floor: dict[str, Any]) -> str:
    """reads_against_the_floor's ratios, round by round, and their medians, as Markdown."""
    lines = [
        f"| reads against the floor, {len(against_floor['rounds'])} alternating rounds "
        "(issue 21) | ours/floor by round | median |",
        "|---|---|---|",
    ]
    for label, read in (
        ("range URL repeated, cached", "cached"),
        ("20,000 varied range URLs, each a miss", "uncached"),
    ):
        each = ", ".join(f"{ratio:.2f}" for ratio in against_floor["ratios"][read])
        lines.append(f"| {label} | {each} | {against_floor['median'][read]:.2f} |")
    return "\n".join(lines)


def read_table(reads: Figures, console: Figures) -> str:
    """The read figures alone, as Markdown (``--reads-only``)."""
    lines = ["| read | p50 ms | p99 ms | req/s |", "|---|---|---|---|"]
    for name, figures in reads.items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['rps']:.0f} |"
        )
    lines += ["", "| console page | p50 ms | p95 ms |", "|---|---|---|"]
    for name, figures in console.items():
        lines.append(f"| {name} | {figures['p50_ms']:.1f} | {figures['p95_ms']:.1f} |")
    return "\n".join(lines)


def peers_table(result: dict[str, Any]) -> list[str]:
    """Our payments syncs next to the floor (issue 11) and dlt (issue 21), with the ratios."""
    syncs = result["syncs_median"]
    lines = [
        "| payments rows (issues 11, 21) | ours, HTTP gzip (s) | floor, raw SQL (s) "
        "| dlt, scd2 (s) | ours/floor | ours/dlt |",
        "|---|---|---|---|---|---|",
    ]
    for phase in ("initial", "resync", "unchanged"):
        ours = syncs[f"{phase}_payments_s"]
        floor = syncs[f"floor_{phase}_payments_s"]
        dlt = syncs.get(f"dlt_{phase}_payments_s")
        dlt_s, ours_dlt = ("—", "—") if dlt is None else (f"{dlt:.1f}", f"{ours / dlt:.2f}")
        lines.append(
            f"| {phase} | {ours:.1f} | {floor:.1f} | {dlt_s} | {ours / floor:.2f} | {ours_dlt} |"
        )
    if "dlt_initial_payments_s" not in syncs:
        lines.append(f"\ndlt peer: {result.get('dlt_peer', 'not run')}")
    return lines


def table(result: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    lines = [
        f"Scale {result['scale']}: {result['patients']:,} patients / "
        f"{result['payments']:,} payments; median of {result['repeat']} rounds",
        "",
        "| sync | seconds |",
        "|---|---|",
    ]
    names = {
        "initial_s": "initial (HTTP gzip, patients + payments)",
        "initial_payments_s": "  of which payments",
        "resync_s": "next-day re-sync (HTTP)",
        "unchanged_s": "unchanged resend (HTTP)",
        "dry_run_payments_s": "dry run, payments (HTTP)",
        "cli_initial_s": "initial (CLI)",
    }
    for key, label in names.items():
        lines.append(f"| {label} | {result['syncs_median'][key]:.1f} |")
    asynchronous = result.get("async")
    if asynchronous:
        lines += [
            "",
            "| asynchronous sync, day-1 payments gzip (issue 20, one round) | |",
            "|---|---|",
            f"| last byte to 202 | {asynchronous['async_accept_after_last_byte_s']:.2f} s |",
            f"| POST to applied | {asynchronous['async_end_to_end_payments_s']:.1f} s |",
            f"| synchronous sync of the same body | {asynchronous['sync_payments_s']:.1f} s |",
            f"| end to end / synchronous | {asynchronous['end_to_end_over_sync']:.2f} |",
            f"| worker peak RSS | {asynchronous['async_worker_peak_rss_mb']:.0f} MB |",
        ]
    lines += ["", *peers_table(result)]
    lines += [
        "",
        "| peak RSS | MB |",
        "|---|---|",
        f"| gunicorn worker, initial sync | {result['syncs_median']['peak_rss_mb']:.0f} |",
        f"| CLI process, initial sync | {result['syncs_median']['cli_peak_rss_mb']:.0f} |",
    ]
    if "dlt_peak_rss_mb" in result["syncs_median"]:
        dlt_rss = result["syncs_median"]["dlt_peak_rss_mb"]
        lines.append(f"| dlt pipeline process, largest step | {dlt_rss:.0f} |")
    lines += [
        "",
        "| read (wrk, 8 connections) | p50 ms | p99 ms | req/s |",
        "|---|---|---|---|",
    ]
    for name, figures in result["reads"].items():
        lines.append(
            f"| {name} | {figures['p50_ms']:.2f} | {figures['p99_ms']:.2f} | {figures['rps']:.0f} |"
        )
    reads = result["reads"]
    lines += [
        "",
        "| reads, 8 connections (issue 11) | ours req/s | floor req/s | ours/floor |",
        "|---|---|---|---|",
    ]
    for label, ours, floor in (
        ("same URL, cached", "range_first_page (cached)", "floor: same-URL"),
        ("same URL, uncached", "range_first_page (uncached)", "floor: same-URL"),
        ("varied URLs, cached", "varied_urls (cached)", "floor: varied-URL"),
        ("varied URLs, uncached", "varied_urls (uncached)", "floor: varied-URL"),
    ):
        lines.append(
            f"| {label} | {reads[ours]['rps']:.0f} | {reads[floor]['rps']:.0f} | "
            f"{reads[ours]['rps'] / reads[floor]['rps']:.2f} |"
        )
    lines += ["", floor_rounds_table(result["reads_against_floor"])]
    lines += [
        "",
        "| console page (1 connection, after the re-sync) | p50 ms | p95 ms |",
        "|---|---|---|",
    ]
    for name, figures in result["console"].items():
        lines.append(f"| {name} | {figures['p50_ms']:.1f} | {figures['p95_ms']:.1f} |")
    events = result["events"]
    if not events:
        return "\n".join(lines)
    lines += [
        "",
        "| event relay, initial load, durable queue bound | |",
        "|---|---|",
        f"| events | {events['events']:,.0f} |",
        f"| time to publish them all | {events['publish_s']:.1f} s |",
        f"| mean rate | {events['events_per_s']:,.0f} events/s |",
        f"| sustained rate (10-90%) | {events['sustained_events_per_s']:,.0f} events/s |",
        f"| relay CPU | {events['relay_cpu_s']:.1f} s |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
