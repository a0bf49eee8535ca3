"""Rate limits (SPEC §4): per token, separate sync and read budgets, 429 with Retry-After.

Plus the per-address budget of failed authentications (RATELIMIT_AUTH_FAILURES).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.web import rate_limits
from app.web.rate_limits import Budget, Counters, SweptMemoryStorage
from tests.support.helpers import error_code, patient_record, post_snapshot

TOKEN_A, TOKEN_B = "token-a-0123456789", "token-b-0123456789"
A = {"Authorization": f"Bearer {TOKEN_A}"}
B = {"Authorization": f"Bearer {TOKEN_B}"}
READ_BUDGET, SYNC_BUDGET, AUTH_FAILURE_BUDGET = 3, 2, 3
BAD_TOKEN = {"Authorization": "Bearer not-a-configured-token"}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Small budgets so that a test can spend them."""
    return {
        "API_WRITE_TOKENS": (TOKEN_A, TOKEN_B),
        "RATELIMIT_READ": f"{READ_BUDGET} per minute",
        "RATELIMIT_SYNC": f"{SYNC_BUDGET} per minute",
    }


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


def spend_auth_failures(client: FlaskClient, **request: Any) -> None:
    """Fail authentication AUTH_FAILURE_BUDGET times, each failure answered with a 401."""
    for _ in range(AUTH_FAILURE_BUDGET):
        assert client.get("/patients", headers=BAD_TOKEN, **request).status_code == 401


class TestAuthFailureBudget:
    """Failed authentications spend a per-address budget; valid tokens are never refused."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {
            "API_WRITE_TOKENS": (TOKEN_A,),
            "RATELIMIT_AUTH_FAILURES": f"{AUTH_FAILURE_BUDGET} per minute",
        }

    def test_auth_failures_over_budget_are_429_rate_limited_with_retry_after(
        self, client: FlaskClient
    ) -> None:
        spend_auth_failures(client)
        response = client.get("/patients", headers=BAD_TOKEN)
        assert response.status_code == 429
        assert error_code(response) == "rate_limited"
        assert "failed authentications" in response.get_json()["error"]["message"]
        assert 0 < int(response.headers["Retry-After"]) <= 61

    def test_auth_failures_are_counted_whatever_was_wrong(self, client: FlaskClient) -> None:
        for headers in ({}, {"Authorization": f"Basic {TOKEN_A}"}, BAD_TOKEN):
            assert client.get("/patients", headers=headers).status_code == 401
        assert client.get("/no-such-path").status_code == 429

    def test_auth_failure_budget_never_refuses_a_valid_token(self, client: FlaskClient) -> None:
        spend_auth_failures(client)
        assert client.get("/patients", headers=BAD_TOKEN).status_code == 429
        assert client.get("/patients", headers=A).status_code == 200

    def test_auth_failure_budgets_are_per_client_address(self, client: FlaskClient) -> None:
        spend_auth_failures(client, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        first = client.get("/patients", headers=BAD_TOKEN, environ_base={"REMOTE_ADDR": "10.0.0.1"})
        other = client.get("/patients", headers=BAD_TOKEN, environ_base={"REMOTE_ADDR": "10.0.0.2"})
        assert (first.status_code, other.status_code) == (429, 401)


class TestLimitsDisabled:
    """RATELIMIT_ENABLED=false turns the auth-failure budget off too."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {
            "API_WRITE_TOKENS": (TOKEN_A,),
            "RATELIMIT_ENABLED": False,
            "RATELIMIT_AUTH_FAILURES": f"{AUTH_FAILURE_BUDGET} per minute",
        }

    def test_auth_failures_stay_401_when_limits_are_disabled(self, client: FlaskClient) -> None:
        spend_auth_failures(client)
        assert client.get("/patients", headers=BAD_TOKEN).status_code == 401


class TestWithoutTokens:
    """Auth off (development): budgets are per client address."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {
            "API_WRITE_TOKENS": (),
            "API_READ_TOKENS": (),
            "RATELIMIT_READ": f"{READ_BUDGET} per minute",
        }

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
        return {
            "API_WRITE_TOKENS": (TOKEN_A,),
            "RATELIMIT_READ": f"{READ_BUDGET} per minute",
            "RATELIMIT_AUTH_FAILURES": f"{AUTH_FAILURE_BUDGET} per minute",
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:1/0",
        }

    def test_limits_fall_back_to_memory(self, client: FlaskClient) -> None:
        spend_reads(client, A)
        assert client.get("/patients", headers=A).status_code == 429

    def test_auth_failures_fall_back_to_memory(self, client: FlaskClient) -> None:
        spend_auth_failures(client)
        assert client.get("/patients", headers=BAD_TOKEN).status_code == 429


def test_in_memory_counters_start_no_thread_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits' MemoryStorage started a timer thread on most hits: a tenth of a page's work."""
    counters = Counters("memory://", "")
    budget = Budget("read", "reads", "5 per minute")
    started: list[threading.Thread] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))
    for _ in range(5):
        budget.spend(counters, "token:a")
        time.sleep(0.02)  # past MemoryStorage's 10 ms timer
    assert started == []
    assert budget.try_spend(counters, "token:a") is not None  # the sixth is over budget


def test_in_memory_counters_of_ended_windows_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays bounded: counters whose window ended go at the next sweep."""
    storage = SweptMemoryStorage()
    clock = [1000.0]
    monkeypatch.setattr(rate_limits.time, "time", lambda: clock[0])
    for number in range(100):
        storage.incr(f"addr:10.0.0.{number}", expiry=60)
    assert len(storage.expirations) == 100
    clock[0] += 61
    storage.incr("addr:10.0.1.1", expiry=60)
    assert set(storage.expirations) == {"addr:10.0.1.1"}
    assert set(storage.storage) == {"addr:10.0.1.1"}
