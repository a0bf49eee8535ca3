"""Builders for snapshot records and small request helpers, so tests state only what matters."""

from __future__ import annotations

import gzip
import random
import re
from typing import Any

import simplejson
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

REPORT_OUTCOMES = ("created", "updated", "restored", "unchanged", "rejected")


def patient_record(external_id: str | int = "p1", **overrides: Any) -> dict[str, Any]:
    """A valid patient record in the upload format."""
    record: dict[str, Any] = {
        "externalId": external_id,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "middleName": None,
        "dateOfBirth": "1815-12-10",
    }
    record.update(overrides)
    return record


def payment_record(
    external_id: str | int = "m1",
    patient_id: str | int = "p1",
    amount: Any = "10.00",
    **overrides: Any,
) -> dict[str, Any]:
    """A valid payment record in the upload format."""
    record: dict[str, Any] = {"externalId": external_id, "patientId": patient_id, "amount": amount}
    record.update(overrides)
    return record


def to_json(records: Any) -> str:
    """Serialize a snapshot, writing Decimal as an exact JSON number."""
    return simplejson.dumps(records, use_decimal=True)


def post_snapshot(
    client: FlaskClient,
    entity: str,
    records: Any,
    *,
    gzipped: bool = False,
    query: str = "",
    headers: dict[str, str] | None = None,
) -> TestResponse:
    """POST a snapshot the way the upstream system does."""
    body = records if isinstance(records, bytes) else to_json(records).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if gzipped:
        body = gzip.compress(body)
        all_headers["Content-Encoding"] = "gzip"
    return client.post(f"/{entity}{query}", data=body, headers=all_headers)


def sync(client: FlaskClient, entity: str, records: Any, query: str = "") -> dict[str, Any]:
    """POST a snapshot, assert it was accepted, and return the report."""
    response = post_snapshot(client, entity, records, query=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    report = response.get_json()
    assert sum(report[name] for name in REPORT_OUTCOMES) == report["received"]
    return report


def get_all(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Follow Link rel="next" from ``url`` and return every item of every page."""
    items: list[dict[str, Any]] = []
    next_url: str | None = url
    while next_url:
        response = client.get(next_url)
        assert response.status_code == 200, response.get_data(as_text=True)
        items.extend(response.get_json())
        next_url = next_link(response)
    return items


def error_code(response: TestResponse) -> str:
    """The code of a JSON error envelope."""
    return response.get_json()["error"]["code"]


def next_link(response: TestResponse) -> str | None:
    """The URL of Link rel="next", if the response has one."""
    match = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
    return match.group(1) if match else None


def random_syncs(
    rng: random.Random, rounds: int, patients: int, payments: int, keep: float
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Alternating patients and payments snapshots over small id spaces.

    Each record is kept with probability ``keep``, names and amounts flip
    between two values, and payments move between live patients: over a
    few rounds every op (created, updated, deleted, restored) happens.
    """
    snapshots: list[tuple[str, list[dict[str, Any]]]] = []
    for _ in range(rounds):
        kept = [
            patient_record(f"p{n}", lastName=rng.choice(["A", "B"]))
            for n in range(patients)
            if rng.random() < keep
        ]
        snapshots.append(("patients", kept))
        live = [p["externalId"] for p in kept] or ["p0"]
        snapshots.append(
            (
                "payments",
                [
                    payment_record(f"m{n}", rng.choice(live), rng.choice(["1.00", "2.50"]))
                    for n in range(payments)
                    if rng.random() < keep
                ],
            )
        )
    return snapshots
