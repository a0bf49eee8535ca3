"""What the three analytics reads share with every read (SPEC §3, §4): tokens, ETags and 304,
one statement per answer, the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.databases import QueryRecorder
from tests.support.helpers import patient_record, payment_record, sync

READS = ["/analytics/summary", "/analytics/histogram?buckets=5", "/analytics/syncs"]
READ_TOKEN = "read-token-0123456789"


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """Twenty patients, forty payments."""
    sync(client, "patients", [patient_record(f"p{n}") for n in range(20)])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n % 20}", n - 7) for n in range(40)])


@pytest.mark.parametrize("url", READS)
def test_analytics_carry_an_etag_and_answer_304_while_the_data_is_unchanged(
    client: FlaskClient, seeded: None, url: str
) -> None:
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    sync(client, "patients", [patient_record("p1")])
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_a_sync_makes_the_next_summary_fresh(client: FlaskClient, seeded: None) -> None:
    before = client.get("/analytics/summary").get_json()
    sync(client, "patients", [patient_record("p1")])
    assert client.get("/analytics/summary").get_json()["patients"] == 1
    assert before["patients"] == 20


@pytest.mark.parametrize("url", [*READS, "/analytics/summary?as_of=2030-01-01T00:00:00Z"])
def test_analytics_read_runs_three_statements_uncached_and_one_cached(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder, url: str
) -> None:
    with query_recorder:
        assert client.get(url).status_code == 200
    # The data version, the answer (as_of: the horizon, then the answer), the version again.
    expected = 4 if "as_of" in url else 3
    assert len(query_recorder.statements) == expected, query_recorder.statements
    with query_recorder:
        assert client.get(url).status_code == 200
    assert len(query_recorder.statements) == 1, query_recorder.statements


class TestTokens:
    """With tokens configured, analytics need a read token (a write token also reads)."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        """Auth on: one read token."""
        return {"API_READ_TOKENS": (READ_TOKEN,), "API_WRITE_TOKENS": ("write-token-0123456789",)}

    @pytest.mark.parametrize("url", READS)
    def test_analytics_without_a_token_are_401(self, client: FlaskClient, url: str) -> None:
        assert client.get(url).status_code == 401

    @pytest.mark.parametrize("url", READS)
    def test_analytics_with_a_read_token_are_200(self, client: FlaskClient, url: str) -> None:
        response = client.get(url, headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "parameters"),
    [
        ("/analytics/summary", {"as_of"}),
        ("/analytics/histogram", {"buckets", "as_of"}),
        ("/analytics/syncs", {"after", "limit", "cursor"}),
    ],
)
def test_openapi_documents_each_analytics_read_with_its_parameters_and_an_example(
    client: FlaskClient, path: str, parameters: set[str]
) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"][path]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == parameters
    assert {"200", "304", "401", "422"} <= set(operation["responses"])
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert "$ref" in schema or "items" in schema
    assert "example" in str(spec["components"]["schemas"])
