"""Reads cost a fixed number of SQL statements, however many rows a page holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from tests.support.databases import QueryRecorder
from tests.support.helpers import patient_record, payment_record, sync

PAGES = [
    "/patients?limit=1000",
    "/patients?sort=-paymentsTotal&payment_min=1",
    "/payments?limit=1000",
    "/payments?external_id=p1",
    "/syncs",
    "/patients/p1",
]


# The pages app/api/fast_pages.py answers on PostgreSQL.
FIRST_PAGES_OF_PATIENTS = PAGES[:2]


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """Fifty patients with three payments each."""
    sync(client, "patients", [patient_record(f"p{i}") for i in range(50)])
    sync(
        client,
        "payments",
        [payment_record(f"m{i}", f"p{i % 50}", Decimal(i + 1)) for i in range(150)],
    )


@pytest.mark.parametrize("app_config", [{"READ_FAST_PATH": False}])
@pytest.mark.parametrize("url", PAGES)
def test_read_runs_three_statements_uncached(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder, url: str
) -> None:
    with query_recorder:
        response = client.get(url)
    assert response.status_code == 200
    # The data version for the cache, the page itself, and the data version
    # again: unchanged, the page was read in the one state it names (SPEC §3).
    assert len(query_recorder.statements) == 3, query_recorder.statements


@pytest.mark.parametrize("url", PAGES)
def test_read_runs_one_statement_when_cached(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder, url: str
) -> None:
    client.get(url)
    with query_recorder:
        response = client.get(url)
    assert response.status_code == 200
    assert len(query_recorder.statements) == 1, query_recorder.statements


@pytest.mark.postgresql_only
@pytest.mark.parametrize("url", FIRST_PAGES_OF_PATIENTS)
def test_a_first_page_of_patients_runs_one_statement_uncached(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder, url: str
) -> None:
    with query_recorder:
        response = client.get(url)
    assert response.status_code == 200
    # Read in front of Flask (app/api/fast_pages.py): the page in one statement
    # with the data version it shows (SPEC §3), which keys it in the cache.
    assert len(query_recorder.statements) == 1, query_recorder.statements


@pytest.mark.parametrize("app_config", [{"READ_CACHE_SIZE": 0, "READ_FAST_PATH": False}])
def test_a_paged_read_pins_without_a_statement_once_its_data_version_pinned(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder
) -> None:
    # The first page with a next page also reads the instant that names its data (its pin).
    with query_recorder:
        assert "Link" in client.get("/patients?limit=10").headers
    assert len(query_recorder.statements) == 4, query_recorder.statements
    # Until the data changes, that instant is known: the data version, the page, the version.
    with query_recorder:
        assert "Link" in client.get("/patients?limit=10&payment_min=1").headers
    assert len(query_recorder.statements) == 3, query_recorder.statements


@pytest.mark.postgresql_only
@pytest.mark.parametrize("app_config", [{"READ_CACHE_SIZE": 0}])
def test_a_first_page_of_patients_pins_without_a_statement_once_its_data_version_pinned(
    client: FlaskClient, seeded: None, query_recorder: QueryRecorder
) -> None:
    # The first page with a next page also reads the instant that names its data (its pin).
    with query_recorder:
        assert "Link" in client.get("/patients?limit=10").headers
    assert len(query_recorder.statements) == 2, query_recorder.statements
    # Until the data changes, that instant is known: the page is all.
    with query_recorder:
        assert "Link" in client.get("/patients?limit=10&payment_min=1").headers
    assert len(query_recorder.statements) == 1, query_recorder.statements
