"""Rate limits (SPEC §4): per token, separate sync and read budgets, 429 with Retry-After."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import error_code, patient_record, post_snapshot

TOKEN_A, TOKEN_B = "token-a-0123456789", "token-b-0123456789"
A = {"Authorization": f"Bearer {TOKEN_A}"}
B = {"Authorization": f"Bearer {TOKEN_B}"}
READ_BUDGET, SYNC_BUDGET = 3, 2


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Small budgets so that a test can spend them."""
    return {"API_WRITE_TOKENS": (TOKEN_A, TOKEN_B),
            "RATELIMIT_READ": f"{READ_BUDGET} per minute",
            "RATELIMIT_SYNC": f"{SYNC_BUDGET} per minute"}


def spend_reads(client: FlaskClient, headers: dict[str, str], count: int = READ_BUDGET) -> None:
    """Make ``count`` reads that must all succeed."""
    for _ in range(count):
        assert client.get("/patients", headers=headers).status_code == 200


def test_a_read_over_budget_is_429_rate_limited_with_retry_after(client: FlaskClient) -> None:
    spend_reads(client, A)
    response = client.get("/patients", headers=A)
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert "reads" in response.get_json()["error"]["message"]
    # A one-minute window; the storage reports its end rounded up to the second.
    assert 0 < int(response.headers["Retry-After"]) <= 61


def test_a_sync_over_budget_is_429_and_changes_nothing(client: FlaskClient) -> None:
    for _ in range(SYNC_BUDGET):
        assert post_snapshot(client, "patients", [], headers=A).status_code == 200
    response = post_snapshot(client, "patients", [patient_record("p1")], headers=A)
    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert "Retry-After" in response.headers
    assert client.get("/patients", headers=B).get_json() == []


def test_budgets_are_per_token(client: FlaskClient) -> None:
    spend_reads(client, A)
    assert client.get("/patients", headers=A).status_code == 429
    assert client.get("/patients", headers=B).status_code == 200


def test_sync_and_read_budgets_are_separate(client: FlaskClient) -> None:
    spend_reads(client, A)
    assert post_snapshot(client, "patients", [], headers=A).status_code == 200


def test_one_read_budget_covers_every_read_endpoint(client: FlaskClient) -> None:
    for path in ("/patients", "/syncs", "/payments?external_id=p1"):
        assert client.get(path, headers=A).status_code == 200
    assert client.get("/syncs", headers=A).status_code == 429


def test_probes_docs_and_metrics_are_not_limited(client: FlaskClient) -> None:
    spend_reads(client, A)
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json") * READ_BUDGET:
        assert client.get(path).status_code == 200


def test_successful_responses_carry_no_retry_after(client: FlaskClient) -> None:
    response = client.get("/patients", headers=A)
    assert response.status_code == 200
    assert "Retry-After" not in response.headers


def test_unauthenticated_requests_spend_no_budget(client: FlaskClient) -> None:
    for _ in range(READ_BUDGET + 1):
        assert client.get("/patients").status_code == 401
    spend_reads(client, A)


class TestWithoutTokens:
    """Auth off (development): budgets are per client address."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"API_WRITE_TOKENS": (), "API_READ_TOKENS": (),
                "RATELIMIT_READ": f"{READ_BUDGET} per minute"}

    def test_budgets_are_per_client_address(self, client: FlaskClient) -> None:
        first = {"REMOTE_ADDR": "10.0.0.1"}
        for _ in range(READ_BUDGET):
            assert client.get("/patients", environ_base=first).status_code == 200
        assert client.get("/patients", environ_base=first).status_code == 429
        assert client.get("/patients", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200


class TestStorageOutage:
    """An unreachable Redis must not take the API down."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"API_WRITE_TOKENS": (TOKEN_A,), "RATELIMIT_READ": f"{READ_BUDGET} per minute",
                "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0"}

    def test_limits_fall_back_to_memory(self, client: FlaskClient) -> None:
        spend_reads(client, A)
        assert client.get("/patients", headers=A).status_code == 429
