"""CPU per record of a payments snapshot's parse, step by step, in one process (no database).

    python -m bench.parse_cost [--snapshot bench/data/default/day2/payments.json.gz]

What a sync does with each record before PostgreSQL sees it, each step
including the ones before it: inflating the gzip body, decoding each
element (``iter_snapshot``), the fast path's checks, and the COPY line the
stage receives (as ``CopyStream.add`` writes it). Prints the best of 3 of
the process's CPU time per record. Run it with another tree's code on the
path (``PYTHONPATH=<tree>``) to compare two trees on one machine.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

from app.snapshot import GunzipReader, iter_snapshot
from app.sync.entity import Entity
from app.sync.payments import PAYMENTS_ENTITY, fast_payment
from app.sync.records import validate_snapshot
from app.sync.staging import CopyStream, StageText

DEFAULT_SNAPSHOT = Path("bench/data/default/day2/payments.json.gz")


def _body(raw: bytes) -> GunzipReader:
    return GunzipReader(io.BytesIO(raw), 1 << 40)


def inflate(raw: bytes) -> int:
    """Inflate the body; return the bytes read."""
    reader, read = _body(raw), 0
    while chunk := reader.read(1 << 20):
        read += len(chunk)
    return read


def decode(raw: bytes) -> int:
    """Decode every element; return how many."""
    return sum(1 for _ in iter_snapshot(_body(raw)))


def check(raw: bytes) -> int:
    """Decode every element and run the fast path on it."""
    count = 0
    for record in iter_snapshot(_body(raw)):
        if fast_payment(record) is None:
            raise SystemExit("a record left the fast path: use a generated snapshot")
        count += 1
    return count


class _CopyWithoutDatabase(CopyStream):
    """CopyStream's own ``add``, each chunk it hands over dropped instead of sent."""

    def __init__(self, entity: Entity) -> None:  # no stage, no COPY thread
        self.entity = entity
        self._lines = []
        self.staged = 0
        self._body = StageText(entity).body

    def _hand_over(self, item: object) -> None:
        """Drop the chunk."""


def stage_lines(raw: bytes) -> int:
    """What a sync does before PostgreSQL: validate_snapshot into the stage's COPY lines."""
    sink = _CopyWithoutDatabase(PAYMENTS_ENTITY)
    summary = validate_snapshot(PAYMENTS_ENTITY, iter_snapshot(_body(raw)), sink, 10)
    return summary.received


def best_cpu(step: Callable[[bytes], int], raw: bytes) -> float:
    """The least process CPU time of 3 runs of ``step``."""
    times = []
    for _ in range(3):
        began = time.process_time()
        step(raw)
        times.append(time.process_time() - began)
    return min(times)


def main() -> None:
    """Time each step and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT)
    args = parser.parse_args()
    raw = args.snapshot.read_bytes()
    records = decode(raw)
    print(f"{args.snapshot}: {records:,} records\n")
    print("| step (each with the ones before it) | CPU s | us per record |")
    print("|---|---|---|")
    for label, step in (
        ("inflate", inflate),
        ("+ decode each element", decode),
        ("+ the fast path's checks", check),
        ("+ validation into the COPY lines (validate_snapshot, CopyStream.add)", stage_lines),
    ):
        seconds = best_cpu(step, raw)
        print(f"| {label} | {seconds:.2f} | {seconds / records * 1e6:.2f} |")


if __name__ == "__main__":
    main()
