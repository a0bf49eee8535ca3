"""The sync scenarios alone, at the large scale: for trying PostgreSQL settings.

    SYNC_WORK_MEM=1GB python -m bench.large_syncs

One round of the initial load, the next-day re-sync and the unchanged resend
through HTTP, then the sync floor (bench/sync_floor.py) on the same data,
both with the SYNC_WORK_MEM of the environment; no dry run, reads or relay
(`make bench` has them). Prints the figures and writes them under
bench/results/.
"""

from __future__ import annotations

import json
import os
import time

from bench import run, sync_floor


def main() -> None:
    """Run the round, print and write its figures."""
    data = run.dataset("large")
    snapshots = {day: sync_floor.parsed(data / day / "payments.json") for day in ("day1", "day2")}
    run.fresh_database()
    server = run.Server()
    figures: dict[str, float | str] = {}
    try:
        server.reset_peak_rss()
        patients, _ = run.post(data / "day1" / "patients.json.gz", "patients")
        payments, _ = run.post(data / "day1" / "payments.json.gz", "payments")
        figures |= {
            "initial_s": patients + payments,
            "initial_payments_s": payments,
            "peak_rss_mb": server.peak_rss_mb(),
        }
        for name in ("resync", "unchanged"):
            patients, _ = run.post(data / "day2" / "patients.json.gz", "patients")
            payments, _ = run.post(data / "day2" / "payments.json.gz", "payments")
            figures |= {f"{name}_s": patients + payments, f"{name}_payments_s": payments}
    finally:
        server.stop()
    figures |= run.floor_syncs(data, snapshots)
    work_mem = os.environ.get("SYNC_WORK_MEM", "128MB")
    figures["work_mem"] = work_mem
    print(json.dumps(figures, indent=2))
    stamp = time.strftime("%Y-%m-%dT%H%M%S+0000", time.gmtime())
    out = run.ROOT / "bench" / "results" / f"{stamp}-large-syncs-work_mem-{work_mem}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {out.relative_to(run.ROOT)}")


if __name__ == "__main__":
    main()
