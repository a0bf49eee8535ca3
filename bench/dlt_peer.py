"""The dlt peer of issue 21: the same payments snapshots through a dlt pipeline.

What a data engineer would use instead of this service: dlt with its Arrow
fast path (bench/dlt_pipeline.py: pyarrow table, row hash, merge/scd2, CSV
COPY into postgres). It runs in its own virtualenv, bench/.dlt-venv, made
here from bench/dlt-requirements.txt (the service never installs dlt), on a
database of its own whose connections get the sync's work_mem. Three steps,
each one process timed from opening the snapshot to the end of the load:
day-1 payments (initial), day-2 payments (re-sync), day 2 again (resend).
After each step the current rows (``_dlt_valid_to IS NULL``) are counted
against what our sync leaves live.

    python -m bench.dlt_peer [--scale default|large]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

from bench import sync_floor
from bench.database import ADMIN_URL, drop_database, recreate_database
from bench.processes import vm_hwm_kb

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / ".dlt-venv"
REQUIREMENTS = ROOT / "bench" / "dlt-requirements.txt"
PIPELINE = ROOT / "bench" / "dlt_pipeline.py"
# Beside bench/run.py's BENCH_DB (pp_bench -> pp_bench_dlt), so two trees never share it.
DB_NAME = os.environ.get("BENCH_DLT_DB", os.environ.get("BENCH_DB", "pp_bench") + "_dlt")
WORK_MEM = os.environ.get("SYNC_WORK_MEM", "128MB")  # as the service (config.py)
STEPS = (("initial", "day1"), ("resync", "day2"), ("unchanged", "day2"))
# dlt's scd2 retires rows with `row_hash NOT IN (SELECT row_hash FROM staging)`: when
# the staged hashes do not fit work_mem (10M rows at 128MB), PostgreSQL plans it
# without a hash, a scan of the stage per row, and the step would never end.
STEP_TIMEOUT = float(os.environ.get("BENCH_DLT_TIMEOUT", "1800"))


class DltUnavailable(RuntimeError):
    """The dlt virtualenv could not be made; the message says why, in a few lines."""


class DltStepFailed(RuntimeError):
    """A pipeline step failed or ran past BENCH_DLT_TIMEOUT; the message says which and why."""


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


def ensure_venv() -> Path:
    """bench/.dlt-venv with the pinned requirements (made once, again when they change)."""
    python = VENV / "bin" / "python"
    stamp = VENV / "installed-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"making {VENV.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)}")
    for command in (
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(VENV / "bin" / "pip"), "install", "-q", "-r", str(REQUIREMENTS)],
    ):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise DltUnavailable(f"{' '.join(command[:3])} failed: {_gist(done)}")
    stamp.write_text(wanted)
    return python


def _gist(done: subprocess.CompletedProcess[str]) -> str:
    """pip's ERROR lines (or its last line), each cut short: pip lists every version it saw."""
    lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
    errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]
    return "; ".join(line if len(line) < 160 else line[:160] + "..." for line in errors)


def pinned() -> str:
    """The pinned requirements of the dlt venv, on one line (for the results file)."""
    lines = (line.strip() for line in REQUIREMENTS.read_text().splitlines())
    return ", ".join(line for line in lines if line and not line.startswith("#"))


def database_url(name: str = DB_NAME) -> str:
    """The dlt peer's database URL."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def fresh_database() -> None:
    """An empty database whose every connection, dlt's included, gets the sync's work_mem."""
    if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB)", WORK_MEM):
        raise ValueError(f"SYNC_WORK_MEM={WORK_MEM!r} is not a PostgreSQL memory size")
    recreate_database(DB_NAME)
    subprocess.run(
        ["psql", ADMIN_URL, "-qc", f"ALTER DATABASE {DB_NAME} SET work_mem = '{WORK_MEM}'"],
        check=True,
        capture_output=True,
    )


def current_rows() -> int:
    """The replica's current payments: scd2 rows not retired."""
    connection = psycopg2.connect(database_url())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM replica.payments WHERE _dlt_valid_to IS NULL")
            return int(cursor.fetchone()[0])
    finally:
        connection.close()


def run_step(python: Path, snapshot: Path, workdir: Path) -> tuple[dict[str, float], float, int]:
    """One pipeline process: its own figures, its wall time and its peak RSS in kB."""
    began = time.perf_counter()
    # cwd and DLT_DATA_DIR in the run's temporary directory: no .dlt config from
    # the repo or the home directory, and nothing left behind for the next run.
    # Both streams to files: a pipe nobody reads while it runs could fill and stall it.
    with (workdir / "stdout.log").open("w") as stdout, (workdir / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [
                str(python),
                str(PIPELINE),
                str(snapshot),
                "--database-url",
                database_url(),
                "--pipelines-dir",
                str(workdir / "pipelines"),
            ],
            cwd=workdir,
            env=os.environ
            | {"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(workdir / "data")},
            stdout=stdout,
            stderr=stderr,
        )
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, vm_hwm_kb(process.pid))
            if time.perf_counter() - began > STEP_TIMEOUT:
                process.kill()
                process.wait()
                raise DltStepFailed(
                    f"{snapshot}: no end after {STEP_TIMEOUT:.0f} s (BENCH_DLT_TIMEOUT); "
                    f"a larger SYNC_WORK_MEM lets PostgreSQL hash scd2's NOT IN"
                )
            time.sleep(0.05)
    if process.returncode != 0:
        tail = "\n".join((workdir / "stderr.log").read_text().strip().splitlines()[-15:])
        raise DltStepFailed(f"dlt pipeline failed on {snapshot}:\n{tail}")
    out = (workdir / "stdout.log").read_text().strip().splitlines()
    return json.loads(out[-1]), time.perf_counter() - began, peak_kb


def dlt_syncs(data: Path, live: dict[str, int], python: Path | None = None) -> dict[str, float]:
    """One round of the dlt peer on a fresh database: the three payments steps and peak RSS.

    ``live`` maps day1/day2 to the payments our sync leaves live after that
    snapshot; a step whose current rows differ is warned about on stderr.
    """
    python = python or ensure_venv()
    fresh_database()
    figures = {"dlt_peak_rss_mb": 0.0}
    try:
        with tempfile.TemporaryDirectory(prefix="dlt-peer-") as workdir:
            for phase, day in STEPS:
                step, wall, peak_kb = run_step(python, data / day / "payments.json", Path(workdir))
                figures[f"dlt_{phase}_payments_s"] = step["seconds"]
                figures["dlt_peak_rss_mb"] = max(figures["dlt_peak_rss_mb"], peak_kb / 1024)
                rows = current_rows()
                log(f"dlt {phase}: {_described(step, wall, peak_kb)}, {rows:,} current rows")
                if rows != live[day]:
                    log(f"WARNING: dlt {phase} left {rows:,} current rows; ours {live[day]:,}")
    finally:
        drop_database(DB_NAME)
    return figures


def _described(step: dict[str, float], wall: float, peak_kb: int) -> str:
    """A step's seconds, where they went, its process's wall time and peak RSS."""
    parts = ", ".join(
        f"{name.removesuffix('_s')} {step[name]:.1f}"
        for name in ("read_s", "extract", "normalize", "load")
        if name in step
    )
    return (
        f"{step['seconds']:.1f} s in the pipeline ({parts}), {wall:.1f} s for the process, "
        f"peak RSS {peak_kb / 1024:.0f} MB"
    )


def live_payments(data: Path) -> dict[str, int]:
    """The payments our sync leaves live after each day: the valid records of a unique id."""
    return {
        day: sync_floor.parsed(data / day / "payments.json").getvalue().count("\n")
        for day in ("day1", "day2")
    }


def main() -> None:
    """Run the dlt peer once, standalone, and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        choices=("default", "large"),
        default=os.environ.get("BENCH_SCALE", "default"),
    )
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / args.scale
    if not (data / "day2" / "payments.json").exists():
        sys.exit(f"no snapshots in {data}: run `python -m bench.run --scale {args.scale}` once")
    try:
        python = ensure_venv()
    except DltUnavailable as error:
        sys.exit(f"dlt peer unavailable: {error}")
    try:
        figures = dlt_syncs(data, live_payments(data), python)
    except DltStepFailed as error:
        sys.exit(f"dlt peer failed: {error}")
    for key, value in figures.items():
        print(f"{key}: {value:.1f}")


if __name__ == "__main__":
    main()
