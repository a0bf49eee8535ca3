"""CPU per uncached page under gunicorn, by process: the service's workers and PostgreSQL's
backends, against the read floor's.

    python -m bench.read_cpu_split [--rounds 2] [--seconds 10] [--db-name pp_reads]

Serves an existing database (one that ``bench.read_ab --keep-db`` built, say)
with ``make bench``'s settings, this tree and bench/read_floor.py's floor in
turns, and drives each with the floor's 20,000 varied range URLs (wrk, 8
connections), every page a cache miss. Around each run it reads the CPU time
of every gunicorn and PostgreSQL process from /proc and prints requests/s and
CPU milliseconds per request for each group, and how unevenly the gunicorn
processes shared the work (the busiest one's share). wrk's own CPU is not
counted (it has exited when the second reading is taken); the same for both.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from bench import read_ab, read_floor, run

TICK = os.sysconf("SC_CLK_TCK")
WARMUP_PATH = "/patients?payment_min=1&payment_max=2"


def cpu_by_group() -> dict[int, tuple[str, float]]:
    """Each gunicorn or PostgreSQL process's group and CPU seconds so far."""
    seen = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it exited
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        group = "gunicorn" if "gunicorn" in command else "postgres" if "postgres" in name else None
        if group is not None:
            seen[int(entry.name)] = (group, (int(fields[11]) + int(fields[12])) / TICK)
    return seen


def measure(base_url: str, seconds: int) -> dict[str, float]:
    """requests/s, and CPU ms per request of each group, over one varied-URL wrk run."""
    read_floor.wrk(base_url + WARMUP_PATH, 3, run.AUTH)
    before = cpu_by_group()
    result = read_floor.wrk_varied(base_url, seconds, run.AUTH)
    after = cpu_by_group()
    requests = result["rps"] * seconds
    figures = {"rps": result["rps"], "gunicorn": 0.0, "postgres": 0.0}
    workers = []
    for pid, (group, cpu) in after.items():
        spent = cpu - before.get(pid, (group, 0.0))[1]
        figures[group] += spent / requests * 1000
        if group == "gunicorn":
            workers.append(spent)
    # wrk's keep-alive connections stay with the worker that accepted them: a
    # busy worker's GIL caps a run whose connections landed unevenly.
    figures["busiest worker's share"] = max(workers) / sum(workers)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--db-name", default="pp_reads")
    options = parser.parse_args()
    read_ab.DB_NAME = options.db_name
    environment = read_ab.service_env()
    rounds: dict[str, list[dict[str, float]]] = {"service": [], "floor": []}
    for round_ in range(options.rounds):
        server = run.Server(tree=run.ROOT, port=read_ab.PORT, environment=environment)
        try:
            rounds["service"].append(measure(f"http://127.0.0.1:{read_ab.PORT}", options.seconds))
        finally:
            server.stop()
        with read_floor.serving(read_ab.FLOOR_PORT, environment) as base_url:
            rounds["floor"].append(measure(base_url, options.seconds))
        print(f"round {round_ + 1}: {rounds['service'][-1]} / floor {rounds['floor'][-1]}")
    print(
        "| uncached page, under gunicorn | req/s | gunicorn CPU ms/req | PostgreSQL CPU ms/req"
        " | busiest worker's share of the gunicorn CPU |"
    )
    print("|---|---|---|---|---|")
    for name, figures in rounds.items():
        rps, workers, database, busiest = (
            statistics.median(f[column] for f in figures) for column in figures[0]
        )
        print(
            f"| {name}, median of {len(figures)} | {rps:.0f} | {workers:.3f} | {database:.3f}"
            f" | {busiest:.2f} |"
        )
    ratios = [s["rps"] / f["rps"] for s, f in zip(rounds["service"], rounds["floor"], strict=True)]
    print(f"service/floor req/s by round: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
