"""Console pages cost a fixed number of SQL statements, however many rows they show (no N+1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from tests.support.databases import QueryRecorder
from tests.support.helpers import patient_record, payment_record, sync

# Page -> statements: what each reads, in order, is in the comment.
PAGES = {
    # figures, last syncs, relay status
    "/console/": 3,
    # one page of sync reports
    "/console/syncs": 1,
    # the report, a page of its changes
    "/console/syncs/{sync_id}": 2,
    # patient, its versions, its payments, their versions
    "/console/patient?id=p1": 4,
    # horizon, patient then, its versions, its payments then, their versions
    "/console/patient?id=p1&as_of=2100-01-01T00:00:00%2B00:00": 5,
    # data version, top payers, totals spread, histogram, last sync start, the range page
    "/console/analytics": 6,
}


@pytest.fixture
def seeded(client: FlaskClient) -> int:
    """Fifty patients with three payments each, then every amount changed: that sync's id."""
    sync(client, "patients", [patient_record(f"p{i}") for i in range(50)])
    reports = [
        sync(
            client,
            "payments",
            [payment_record(f"m{i}", f"p{i % 50}", Decimal(i + step)) for i in range(150)],
        )
        for step in (1, 2)
    ]
    return int(reports[-1]["syncId"])


@pytest.mark.parametrize(("url", "statements"), PAGES.items(), ids=list(PAGES))
def test_console_page_runs_a_fixed_number_of_statements(
    client: FlaskClient, seeded: int, query_recorder: QueryRecorder, url: str, statements: int
) -> None:
    with query_recorder:
        response = client.get(url.format(sync_id=seeded))
    assert response.status_code == 200
    assert len(query_recorder.statements) == statements, query_recorder.statements


def test_analytics_histogram_is_read_once_per_data_version(
    client: FlaskClient, seeded: int, query_recorder: QueryRecorder
) -> None:
    client.get("/console/analytics")
    with query_recorder:
        response = client.get("/console/analytics?payment_min=1")
    assert response.status_code == 200
    # data version, top payers, the range page: no spread, no histogram, and no pin
    # instant (each is known per data version, as the API's pages know theirs).
    assert len(query_recorder.statements) == 3, query_recorder.statements
