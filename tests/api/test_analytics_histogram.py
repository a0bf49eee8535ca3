"""GET /analytics/histogram (SPEC §3): live patients per equal-width bucket of their totals."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.support.analytics_model import (
    Replica,
    histogram_counts,
    histogram_edges,
    random_history,
)
from tests.support.helpers import error_code, patient_record, payment_record, sync


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget and no mass-delete guard: random histories delete a lot."""
    return {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6}


def get_buckets(client: FlaskClient, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/analytics/histogram{query}")
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["buckets"]


def with_totals(client: FlaskClient, *totals: str) -> None:
    """One live patient per total (a patient with total 0 has no payments)."""
    sync(client, "patients", [patient_record(f"p{n}") for n in range(len(totals))])
    sync(
        client,
        "payments",
        [
            payment_record(f"m{n}", f"p{n}", total)
            for n, total in enumerate(totals)
            if Decimal(total)
        ],
    )


def edges(buckets: list[dict[str, Any]]) -> list[str]:
    return [bucket["from"] for bucket in buckets] + [buckets[-1]["to"]]


def counts(buckets: list[dict[str, Any]]) -> list[int]:
    return [bucket["patients"] for bucket in buckets]


def test_histogram_before_any_data_is_one_empty_bucket_at_zero(client: FlaskClient) -> None:
    # As the summary says min = max = 0.00: the edges are always the summary's min and max.
    assert get_buckets(client) == [{"from": "0.00", "to": "0.00", "patients": 0}]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("buckets", [1, 3, 7, 20])
def test_histogram_equals_a_model_of_the_posted_data_after_every_sync(
    client: FlaskClient, seed: int, buckets: int
) -> None:
    replica = Replica()
    for entity, records in random_history(random.Random(seed), rounds=3):
        sync(client, entity, records)
        replica.apply(entity, records)
        totals = replica.totals()
        answer = get_buckets(client, f"?buckets={buckets}")
        assert counts(answer) == histogram_counts(totals, buckets)
        assert [Decimal(edge) for edge in edges(answer)] == histogram_edges(totals, buckets)
        assert sum(counts(answer)) == len(replica.patients)


def test_histogram_defaults_to_twenty_buckets(client: FlaskClient) -> None:
    with_totals(client, "0.00", "20.00")
    assert len(get_buckets(client)) == 20


def test_histogram_puts_the_maximum_in_the_last_bucket(client: FlaskClient) -> None:
    with_totals(client, "0.00", "1.00", "1.00")
    assert counts(get_buckets(client, "?buckets=4")) == [1, 0, 0, 2]


def test_histogram_counts_a_total_on_an_edge_in_the_bucket_it_opens(client: FlaskClient) -> None:
    # Edges 0, 0.25, 0.50, 0.75, 1.00: 0.25 and 0.50 open the second and third buckets.
    with_totals(client, "0.00", "0.24", "0.25", "0.50", "1.00")
    assert counts(get_buckets(client, "?buckets=4")) == [2, 1, 1, 1]


def test_histogram_is_exact_at_edges_of_a_width_that_does_not_terminate(
    client: FlaskClient,
) -> None:
    # w = 1/3: 0.33 lies below the edge 1/3 and 0.34 above it; 0.67 above 2/3.
    with_totals(client, "0.00", "0.33", "0.34", "0.66", "0.67", "1.00")
    assert counts(get_buckets(client, "?buckets=3")) == [2, 2, 2]


def test_histogram_of_equal_totals_is_one_bucket(client: FlaskClient) -> None:
    with_totals(client, "-3.00", "-3.00", "-3.00")
    assert get_buckets(client, "?buckets=10") == [{"from": "-3.00", "to": "-3.00", "patients": 3}]


def test_histogram_of_one_patient_is_one_bucket(client: FlaskClient) -> None:
    with_totals(client, "12.34")
    assert get_buckets(client) == [{"from": "12.34", "to": "12.34", "patients": 1}]


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        (4, ["0.00", "0.25", "0.50", "0.75", "1.00"]),
        (8, ["0.000", "0.125", "0.250", "0.375", "0.500", "0.625", "0.750", "0.875", "1.000"]),
        (2, ["0.00", "0.50", "1.00"]),
        (3, ["0.000000", "0.333333", "0.666667", "1.000000"]),
    ],
)
def test_histogram_edges_are_exact_when_the_width_terminates_else_six_places(
    client: FlaskClient, buckets: int, expected: list[str]
) -> None:
    with_totals(client, "0.00", "1.00")
    assert edges(get_buckets(client, f"?buckets={buckets}")) == expected


def test_histogram_edges_of_negative_totals(client: FlaskClient) -> None:
    with_totals(client, "-1.00", "0.00", "2.00")
    answer = get_buckets(client, "?buckets=3")
    assert edges(answer) == ["-1.00", "0.00", "1.00", "2.00"]
    assert counts(answer) == [1, 1, 1]


@pytest.mark.parametrize(
    "value", ["0", "101", "-1", "abc", "2.5", "", "1e2", "99999999999999999999"]
)
def test_histogram_rejects_buckets_out_of_range_or_not_an_integer(
    client: FlaskClient, value: str
) -> None:
    response = client.get(f"/analytics/histogram?buckets={quote(value)}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "buckets" in response.get_json()["error"]["details"]["parameters"]


@pytest.mark.parametrize("value", ["1", "100"])
def test_histogram_accepts_the_bounds_of_buckets(client: FlaskClient, value: str) -> None:
    with_totals(client, "0.00", "100.00")
    assert len(get_buckets(client, f"?buckets={value}")) == int(value)


@pytest.mark.parametrize("seed", range(2))
def test_histogram_as_of_each_sync_is_what_it_answered_then(client: FlaskClient, seed: int) -> None:
    answered = []
    for entity, records in random_history(random.Random(seed), rounds=3):
        report = sync(client, entity, records)
        answered.append((report["startedAt"], get_buckets(client, "?buckets=5")))
    for instant, expected in answered:
        assert get_buckets(client, f"?buckets=5&as_of={quote(instant)}") == expected, instant


def test_histogram_as_of_before_the_first_sync_is_one_empty_bucket(client: FlaskClient) -> None:
    with_totals(client, "1.00", "2.00")
    assert get_buckets(client, "?as_of=2000-01-01T00:00:00Z") == [
        {"from": "0.00", "to": "0.00", "patients": 0}
    ]
