"""A model of the analytics answers (SPEC §3), computed from the posted snapshots alone.

The tests compare the service's figures with these: sorted totals, nearest
rank by integer arithmetic, Decimal rounding half to even, bucket numbers
and edges by Fraction. Nothing here reads the database.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from typing import Any

from tests.support.helpers import patient_record, payment_record

CENT = Decimal("0.01")


@dataclass
class Replica:
    """What the replica holds after the snapshots applied so far (all of them valid)."""

    patients: set[str] = field(default_factory=set)
    # payment externalId -> (patient externalId, amount)
    payments: dict[str, tuple[str, Decimal]] = field(default_factory=dict)

    def apply(self, entity: str, records: list[dict[str, Any]]) -> None:
        """Apply one complete snapshot."""
        if entity == "patients":
            self.patients = {record["externalId"] for record in records}
        else:
            self.payments = {
                record["externalId"]: (record["patientId"], Decimal(record["amount"]))
                for record in records
            }

    def totals(self) -> list[Decimal]:
        """Each live patient's total of live payments (0 without any), sorted."""
        totals = dict.fromkeys(self.patients, Decimal("0.00"))
        for patient, amount in self.payments.values():
            if patient in totals:
                totals[patient] += amount
        return sorted(totals.values())


def money(amount: Decimal) -> str:
    """Two decimals, as the summary writes amounts."""
    return str(amount.quantize(CENT))


def nearest_rank(values: list[Decimal], percent: int) -> Decimal:
    """The value at 1-based rank ceil(percent/100 * n) of sorted ``values``."""
    rank = -(-percent * len(values) // 100)
    return values[rank - 1]


def summary(replica: Replica) -> dict[str, Any]:
    """GET /analytics/summary as SPEC §3 defines it."""
    totals = replica.totals()
    with_payments = {patient for patient, _ in replica.payments.values()}
    zero = Decimal("0.00")
    if totals:
        with localcontext(prec=60):
            mean = (sum(totals, zero) / len(totals)).quantize(CENT, rounding=ROUND_HALF_EVEN)
        # A mean that rounds to zero is written 0.00, never -0.00.
        mean = mean if mean else zero
        spread = {
            "min": money(totals[0]),
            "max": money(totals[-1]),
            "mean": money(mean),
            **{f"p{p}": money(nearest_rank(totals, p)) for p in (50, 90, 99)},
        }
    else:
        spread = {key: "0.00" for key in ("min", "max", "mean", "p50", "p90", "p99")}
    return {
        "patients": len(replica.patients),
        "payments": len(replica.payments),
        "totalAmount": money(sum((amount for _, amount in replica.payments.values()), zero)),
        "patientsWithoutPayments": len(replica.patients - with_payments),
        "patientTotals": spread,
    }


def histogram_counts(totals: list[Decimal], buckets: int) -> list[int]:
    """Patients per bucket: t in bucket floor((t - min) / w), the maximum in the last."""
    if not totals or totals[0] == totals[-1]:
        return [len(totals)]
    low = Fraction(totals[0])
    width = (Fraction(totals[-1]) - low) / buckets
    counts = [0] * buckets
    for total in totals:
        counts[min(math.floor((Fraction(total) - low) / width), buckets - 1)] += 1
    return counts


def histogram_edges(totals: list[Decimal], buckets: int) -> list[Decimal]:
    """The edges' values: exact, or rounded to 6 places when the width does not terminate."""
    if not totals:
        return [Decimal(0), Decimal(0)]
    low, high = totals[0], totals[-1]
    if low == high:
        return [low, high]
    exact = [
        Fraction(low) + index * (Fraction(high) - Fraction(low)) / buckets
        for index in range(buckets + 1)
    ]
    if terminates((Fraction(high) - Fraction(low)) / buckets):
        return [Decimal(edge.numerator) / Decimal(edge.denominator) for edge in exact]
    return [
        (Decimal(edge.numerator) / Decimal(edge.denominator)).quantize(
            Decimal("0.000001"), rounding=ROUND_HALF_EVEN
        )
        for edge in exact
    ]


def terminates(value: Fraction) -> bool:
    """Whether ``value`` has a finite decimal expansion."""
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def random_history(rng: random.Random, rounds: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Alternating patients and payments snapshots, every record valid.

    Patients come and go (so some live payments belong to deleted patients),
    amounts are negative as well as positive and often repeat (equal totals),
    and a round may leave no patients, or one.
    """
    snapshots: list[tuple[str, list[dict[str, Any]]]] = []
    for _ in range(rounds):
        size = rng.choice([0, 1, 2, 7, 15, 30])
        live = rng.sample([f"p{n}" for n in range(40)], size)
        snapshots.append(("patients", [patient_record(external_id) for external_id in live]))
        amounts = rng.choice(
            [
                ["1.00", "2.50", "-3.00"],
                [f"{rng.randint(-50000, 50000) / 100:.2f}" for _ in range(9)],
            ]
        )
        payments = [
            payment_record(f"m{n}", rng.choice(live), rng.choice(amounts))
            for n in range(60)
            if live and rng.random() < 0.6
        ]
        snapshots.append(("payments", payments))
    return snapshots
