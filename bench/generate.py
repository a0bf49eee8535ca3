"""Deterministic snapshots in the exact upload format, for benchmarks.

    python -m bench.generate OUT_DIR --patients 100000 --payments 1000000

writes day1/patients.json, day1/payments.json and the next day's snapshots
(day2/: 10% of records changed, 5% removed, 5% new) into OUT_DIR. The same
arguments always produce the same bytes.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

FIRST = ["Rick", "Pris", "Roy", "Eldon", "Rachael", "Leon", "Zhora", "J.F.", "Gaff", "Hannibal"]
LAST = [
    "Deckard",
    "Stratton",
    "Batty",
    "Tyrell",
    "Rosen",
    "Kowalski",
    "Salome",
    "Sebastian",
    "Bryant",
    "Chew",
]
SEED = 2019


def patient_json(number: int, rng: random.Random, generation: int = 0) -> str:
    """One patient record; ``generation`` > 0 gives a changed version of it."""
    first = FIRST[(number + generation) % len(FIRST)]
    last = LAST[(number * 7 + generation) % len(LAST)]
    middle = "null" if number % 3 else f'"{FIRST[number % len(FIRST)]}"'
    birth = f"{1930 + number % 90:04d}-{1 + number % 12:02d}-{1 + number % 28:02d}"
    return (
        f'{{"externalId":"P{number:08d}","firstName":"{first}","lastName":"{last}",'
        f'"middleName":{middle},"dateOfBirth":"{birth}"}}'
    )


def payment_json(number: int, patient: int, cents: int) -> str:
    """One payment record; the amount is a JSON number with two decimals."""
    return (
        f'{{"externalId":"M{number:09d}","patientId":"P{patient:08d}",'
        f'"amount":{cents // 100}.{cents % 100:02d}}}'
    )


def write_array(path: Path, items: list[str]) -> None:
    """Write records as a JSON array, one per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[\n" + ",\n".join(items) + "\n]\n")


def generate(out: Path, patients: int, payments: int) -> None:
    """Write day1/ and day2/ snapshots for ``patients`` and ``payments`` records."""
    rng = random.Random(SEED)
    patient_ids = list(range(patients))
    owners = [rng.randrange(patients) for _ in range(payments)]
    amounts = [rng.randrange(100, 5000) for _ in range(payments)]
    write_array(out / "day1" / "patients.json", [patient_json(n, rng) for n in patient_ids])
    write_array(
        out / "day1" / "payments.json",
        [payment_json(n, owners[n], amounts[n]) for n in range(payments)],
    )

    removed_patients = set(rng.sample(patient_ids, patients // 20))
    changed_patients = set(rng.sample(patient_ids, patients // 10))
    day2_patients = [n for n in patient_ids if n not in removed_patients]
    day2_patients += range(patients, patients + patients // 20)
    write_array(
        out / "day2" / "patients.json",
        [patient_json(n, rng, 1 if n in changed_patients else 0) for n in day2_patients],
    )

    live = [n for n in day2_patients]
    removed_payments = set(rng.sample(range(payments), payments // 20))
    changed_payments = set(rng.sample(range(payments), payments // 10))
    records = []
    for n in range(payments):
        if n in removed_payments or owners[n] in removed_patients:
            continue
        cents = amounts[n] + 1 if n in changed_payments else amounts[n]
        records.append(payment_json(n, owners[n], cents))
    for n in range(payments, payments + payments // 20):
        records.append(payment_json(n, live[rng.randrange(len(live))], rng.randrange(100, 5000)))
    write_array(out / "day2" / "payments.json", records)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--payments", type=int, default=1_000_000)
    args = parser.parse_args()
    generate(args.out, args.patients, args.payments)


if __name__ == "__main__":
    main()
