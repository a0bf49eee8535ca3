"""Schemathesis against /openapi.json: every operation, with auth, no 5xx, no off-schema answer.

Hypothesis generates valid and invalid requests for each documented
operation from the document itself; every response must be a documented
status with the documented body, headers and content type, and no request
may produce a server error. Two acceptance checks are narrowed, each for a
documented reason (see ``excluded_checks``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

WRITE_TOKEN = "fuzz-write-token-0123456789"
AUTH = {"Authorization": f"Bearer {WRITE_TOKEN}"}
SYNC_OPERATIONS = {("POST", "/patients"), ("POST", "/payments")}

# Every documented operation; test_every_operation_is_fuzzed keeps this in step with the document.
OPERATIONS = [
    ("GET", "/patients"),
    ("POST", "/patients"),
    ("GET", "/patients/{external_id}"),
    ("GET", "/payments"),
    ("POST", "/payments"),
    ("GET", "/payments/{external_id}"),
    ("GET", "/patients/{external_id}/history"),
    ("GET", "/payments/{external_id}/history"),
    ("GET", "/syncs"),
    ("GET", "/syncs/{sync_id}"),
    ("GET", "/syncs/{sync_id}/changes"),
    ("GET", "/analytics/summary"),
    ("GET", "/analytics/histogram"),
    ("GET", "/analytics/syncs"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
MAX_EXAMPLES = 40


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Auth on (the fuzzer sends a write token), budgets too large to interfere."""
    return {
        "API_WRITE_TOKENS": (WRITE_TOKEN,),
        "RATELIMIT_SYNC": "100000 per minute",
        "RATELIMIT_READ": "100000 per minute",
        # The fuzzer also checks that requests without a token get 401.
        "RATELIMIT_AUTH_FAILURES": "100000 per minute",
    }


@pytest.fixture
def openapi_schema(app: Flask) -> schemathesis.BaseSchema:
    """The document the app serves, with requests going to the app in-process."""
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def excluded_checks(case: schemathesis.Case) -> list[Any]:
    """Checks that do not apply to this case, and why."""
    excluded = []
    if (case.method.upper(), case.path) in SYNC_OPERATIONS:
        # A snapshot with invalid records is still a valid upload (SPEC §2):
        # they are rejected one by one in a 200 report, not by a 4xx.
        excluded.append(negative_data_rejection)
    query = case.query or {}
    if query.get("cursor") is not None or _breaks_a_bounds_rule(query):
        # Rules OpenAPI 3.0 cannot state, so schema-valid values can break them
        # and are rightly refused with 422: cursors are opaque (valid only as
        # sent in a Link header), and bounds must agree and not cross.
        excluded.append(positive_data_acceptance)
    return excluded


def _breaks_a_bounds_rule(query: dict[str, Any]) -> bool:
    """Whether payment_min/payment_max (or their payments_* aliases) disagree or cross."""
    bounds = {}
    for name in ("min", "max"):
        given = {
            Decimal(str(query[key]))
            for key in (f"payment_{name}", f"payments_{name}")
            if query.get(key) is not None
        }
        if len(given) > 1:
            return True
        bounds[name] = given.pop() if given else None
    return None not in bounds.values() and bounds["min"] > bounds["max"]


def test_every_operation_is_fuzzed(openapi_schema: schemathesis.BaseSchema) -> None:
    documented = [(op.method.upper(), op.path) for op in _operations(openapi_schema)]
    assert sorted(documented) == sorted(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_no_operation_answers_5xx_or_off_schema(
    openapi_schema: schemathesis.BaseSchema, method: str, path: str
) -> None:
    operation = openapi_schema[path][method]
    calls = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        calls.append(case.call_and_validate(headers=AUTH, excluded_checks=excluded_checks(case)))

    fuzz()
    assert calls, "the fuzzer made no request"


def _operations(openapi_schema: schemathesis.BaseSchema) -> list[Any]:
    return [result.ok() for result in openapi_schema.get_all_operations()]
