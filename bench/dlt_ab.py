"""Ours against the dlt peer alone, alternating, for ratios on a busy machine.

`make bench` runs the dlt peer minutes after our syncs, between the CLI, the
floor and the reads; on a shared machine the load moves in between. This
runs only the two, ours (bench/run.py's HTTP syncs) then dlt
(bench/dlt_peer.py), ROUNDS times, with the load average before each, and
prints the medians and ours/dlt.

    python -m bench.dlt_ab [--scale default|large] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

from bench import dlt_peer, run


def main() -> None:
    """Alternate ours and dlt, print each run's figures and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", choices=sorted(run.SCALES), default="default")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = run.dataset(args.scale)
    live = dlt_peer.live_payments(data)
    try:
        python = dlt_peer.ensure_venv()
    except dlt_peer.DltUnavailable as error:
        sys.exit(f"dlt peer unavailable: {error}")
    ours, dlt = [], []
    for number in range(args.rounds):
        for name, figures_of, kept in (
            ("ours", lambda: run.http_syncs(data), ours),
            ("dlt", lambda: dlt_peer.dlt_syncs(data, live, python), dlt),
        ):
            load = os.getloadavg()[0]
            figures = figures_of()
            kept.append(figures)
            print(json.dumps({"round": number + 1, "who": name, "load": load, **figures}))
    for phase in ("initial", "resync", "unchanged"):
        mine = statistics.median(f[f"{phase}_payments_s"] for f in ours)
        theirs = statistics.median(f[f"dlt_{phase}_payments_s"] for f in dlt)
        print(f"{phase}: ours {mine:.1f} s, dlt {theirs:.1f} s, ours/dlt {mine / theirs:.2f}")


if __name__ == "__main__":
    main()
