"""Totals stay equal to a full recount of live payments through any sequence of syncs."""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal

from flask.testing import FlaskClient

from tests.support.helpers import get_all, patient_record, payment_record, sync


def recount(client: FlaskClient) -> dict[str, tuple[Decimal, int]]:
    totals: dict[str, list] = defaultdict(lambda: [Decimal("0.00"), 0])
    for payment in get_all(client, "/payments?limit=1000"):
        totals[payment["patientId"]][0] += payment["amount"]
        totals[payment["patientId"]][1] += 1
    return {key: (total, count) for key, (total, count) in totals.items()}


def test_totals_match_a_recount_after_random_syncs(client: FlaskClient) -> None:
    rng = random.Random(7)
    patients = [f"p{i}" for i in range(12)]
    for _ in range(8):
        live_patients = [p for p in patients if rng.random() < 0.85]
        sync(client, "patients", [patient_record(p) for p in live_patients], query="?force=true")
        payments = []
        for number in range(40):
            if rng.random() < 0.3:
                continue  # absent: deleted now, restored later
            owner = rng.choice(patients)  # sometimes a deleted patient: rejected
            cents = rng.choice([rng.randrange(-500, 5000), 1000])  # repeats leave rows unchanged
            payments.append(payment_record(f"m{number}", owner, Decimal(cents).scaleb(-2)))
        if rng.random() < 0.3:
            payments.append(dict(payments[0]))  # a duplicate: both occurrences rejected
        sync(client, "payments", payments, query="?force=true")
        listed = {
            p["externalId"]: (p["paymentsTotal"], p["paymentsCount"])
            for p in get_all(client, "/patients?limit=1000")
        }
        counted = recount(client)
        for external_id, (total, count) in listed.items():
            assert (total, count) == counted.get(external_id, (Decimal("0.00"), 0)), external_id
