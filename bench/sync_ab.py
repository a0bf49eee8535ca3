"""A/B of the sync path: two trees' HTTP syncs and the sync floor, round by round, one database.

    python -m bench.sync_ab --before DIR --after DIR [--rounds 3] [--scale default]

DIR is a checkout of the service (a git worktree, say) whose ``.venv`` runs
it. Each round runs ``make bench``'s HTTP sync scenarios (bench/run.py
``http_syncs``: initial, re-sync, resend, dry run, on a fresh database) with
the before tree, then the after tree, then the sync floor (bench/sync_floor.py),
so the machine's drift falls on all three alike. Prints the medians, each
tree's ratio to the floor and after/before, and writes JSON under
bench/results/.
"""

from __future__ import annotations

import argparse
import json
import statistics
from datetime import UTC, datetime
from pathlib import Path

from bench import run, sync_floor

PHASES = ("initial", "resync", "unchanged")


def main() -> None:
    """Run the rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", choices=sorted(run.SCALES), default="default")
    args = parser.parse_args()
    data = run.dataset(args.scale)
    run.log("parsing the payments snapshots for the sync floor")
    snapshots = {day: sync_floor.parsed(data / day / "payments.json") for day in ("day1", "day2")}
    rounds = []
    for number in range(args.rounds):
        figures: dict[str, dict[str, float]] = {}
        for name, tree in (("before", args.before), ("after", args.after)):
            run.log(f"round {number + 1}/{args.rounds}: {name} ({tree})")
            figures[name] = run.http_syncs(data, tree.resolve())
        run.log(f"round {number + 1}/{args.rounds}: sync floor")
        figures["floor"] = run.floor_syncs(data, snapshots)
        run.log(json.dumps(figures))
        rounds.append(figures)
    medians = {
        side: {key: statistics.median(r[side][key] for r in rounds) for key in rounds[0][side]}
        for side in rounds[0]
    }
    result = {
        "scale": args.scale,
        "rounds": rounds,
        "medians": medians,
        "before": str(args.before),
        "after": str(args.after),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = run.ROOT / "bench" / "results" / f"{result['at'].replace(':', '')}-sync-ab.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(medians, args.rounds))
    print(f"\nwritten to {out.relative_to(run.ROOT)}")


def table(medians: dict[str, dict[str, float]], rounds: int) -> str:
    """The payments phases as Markdown: seconds, ratios to the floor, after/before."""
    before, after, floor = medians["before"], medians["after"], medians["floor"]
    lines = [
        f"Payments rows, medians of {rounds} rounds (seconds)",
        "",
        "| phase | before | after | floor | before/floor | after/floor | after/before |",
        "|---|---|---|---|---|---|---|",
    ]
    for phase in PHASES:
        b, a = before[f"{phase}_payments_s"], after[f"{phase}_payments_s"]
        f = floor[f"floor_{phase}_payments_s"]
        lines.append(
            f"| {phase} | {b:.1f} | {a:.1f} | {f:.1f} | {b / f:.2f} | {a / f:.2f} | {a / b:.2f} |"
        )
    lines.append(
        f"| initial, patients + payments | {before['initial_s']:.1f} | {after['initial_s']:.1f}"
        " | | | | "
        f"{after['initial_s'] / before['initial_s']:.2f} |"
    )
    rss = f"{before['peak_rss_mb']:.0f} | {after['peak_rss_mb']:.0f}"
    lines.append(f"| peak worker RSS, MB | {rss} | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
