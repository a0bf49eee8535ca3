"""GET /syncs and GET /syncs/<syncId>: the recorded sync reports (SPEC §2)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.support.helpers import (
    error_code,
    get_all,
    next_link,
    patient_record,
    payment_record,
    post_snapshot,
    sync,
)

REPORT_KEYS = {
    "syncId",
    "entity",
    "dryRun",
    "state",
    "received",
    "created",
    "updated",
    "restored",
    "unchanged",
    "rejected",
    "deleted",
    "errors",
    "errorsTruncated",
    "startedAt",
    "finishedAt",
    "dataPosition",
}


def three_syncs(client: FlaskClient) -> list[dict[str, Any]]:
    """A patients sync, a payments sync with a rejection, and a dry run; their reports as
    stored (the POST's report also says the data position after its commit: SPEC §8)."""
    return [
        stored(sync(client, "patients", [patient_record("p1"), patient_record("p2")])),
        stored(
            sync(client, "payments", [payment_record("m1", "p1"), payment_record("m2", "ghost")])
        ),
        stored(sync(client, "patients", [patient_record("p1")], query="?dry_run=true")),
    ]


def stored(report: dict[str, Any]) -> dict[str, Any]:
    """A POST's sync report as GET /syncs/<id> serves it: the same, its data position included."""
    assert report["dataPosition"]
    return report


def test_list_syncs_is_empty_before_any_sync(client: FlaskClient) -> None:
    response = client.get("/syncs")
    assert response.status_code == 200
    assert response.get_json() == []


def test_list_syncs_lists_recorded_syncs_newest_first(client: FlaskClient) -> None:
    posted = three_syncs(client)
    response = client.get("/syncs")
    assert response.status_code == 200
    listed = response.get_json()
    assert [r["syncId"] for r in listed] == [r["syncId"] for r in reversed(posted)]
    assert [r["syncId"] for r in listed] == sorted((r["syncId"] for r in listed), reverse=True)
    assert [(r["entity"], r["dryRun"]) for r in listed] == [
        ("patients", True),
        ("payments", False),
        ("patients", False),
    ]


def without_errors(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if key != "errors"}


def test_list_syncs_items_are_the_stored_reports_without_errors(client: FlaskClient) -> None:
    posted = three_syncs(client)
    response = client.get("/syncs")
    assert response.status_code == 200
    listed = response.get_json()
    assert all(set(report) == REPORT_KEYS - {"errors"} for report in listed)
    assert listed == [without_errors(report) for report in reversed(posted)]


def test_list_syncs_keeps_counts_and_the_item_keeps_errors(client: FlaskClient) -> None:
    three_syncs(client)
    payments = client.get("/syncs").get_json()[1]
    assert (payments["received"], payments["created"], payments["rejected"]) == (2, 1, 1)
    assert payments["errorsTruncated"] is False
    item = client.get(f"/syncs/{payments['syncId']}").get_json()
    assert [(e["index"], e["externalId"]) for e in item["errors"]] == [(1, "m2")]
    assert "patientId" in item["errors"][0]["messages"]


def test_list_syncs_page_stays_small_whatever_the_stored_errors(client: FlaskClient) -> None:
    records = [{"externalId": f"bad{n}", "firstName": ""} for n in range(500)]
    for _ in range(3):
        assert post_snapshot(client, "patients", records).status_code == 200
    assert len(client.get("/syncs").get_data()) < 3 * 1000


def test_dry_run_sync_is_recorded_with_dry_run_true(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")], query="?dry_run=true")
    assert report["dryRun"] is True
    assert report["created"] == 1
    response = client.get(f"/syncs/{report['syncId']}")
    assert response.status_code == 200
    assert response.get_json()["dryRun"] is True
    assert client.get("/syncs").get_json() == [without_errors(stored(report))]


def test_dry_run_sync_is_recorded_but_changes_no_data(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")], query="?dry_run=true")
    assert client.get("/patients").get_json() == []
    assert len(client.get("/syncs").get_json()) == 1


def test_applied_sync_is_recorded_with_dry_run_false(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")])
    response = client.get(f"/syncs/{report['syncId']}")
    assert response.status_code == 200
    assert response.get_json()["dryRun"] is False


def test_list_syncs_pagination_with_limit_one_follows_link(client: FlaskClient) -> None:
    posted = three_syncs(client)
    first = client.get("/syncs?limit=1")
    assert first.status_code == 200
    assert len(first.get_json()) == 1
    link = next_link(first)
    assert link is not None
    assert link.startswith("http://localhost/syncs?")
    assert "limit=1" in link
    assert get_all(client, "/syncs?limit=1") == [without_errors(r) for r in reversed(posted)]


def test_list_syncs_last_page_has_no_link_header(client: FlaskClient) -> None:
    three_syncs(client)
    response = client.get("/syncs?limit=3")
    assert response.status_code == 200
    assert len(response.get_json()) == 3
    assert "Link" not in response.headers


def test_list_syncs_rejects_limit_zero_with_invalid_parameter(client: FlaskClient) -> None:
    response = client.get("/syncs?limit=0")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "limit" in response.get_json()["error"]["message"]


def test_list_syncs_rejects_malformed_cursor_with_invalid_parameter(client: FlaskClient) -> None:
    response = client.get("/syncs?cursor=garbage")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"
    assert "cursor" in response.get_json()["error"]["message"]


def test_get_sync_returns_the_report_the_post_returned(client: FlaskClient) -> None:
    for posted in three_syncs(client):
        response = client.get(f"/syncs/{posted['syncId']}")
        assert response.status_code == 200
        assert response.get_json() == posted


def test_get_sync_unknown_id_gives_404_not_found(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")])
    response = client.get(f"/syncs/{report['syncId'] + 1000}")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_sync_non_integer_id_gives_404_not_found(client: FlaskClient) -> None:
    response = client.get("/syncs/abc")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_list_syncs_after_lists_later_syncs_oldest_first(client: FlaskClient) -> None:
    posted = three_syncs(client)
    first = posted[0]["syncId"]
    listed = client.get(f"/syncs?after={first}").get_json()
    assert [r["syncId"] for r in listed] == [r["syncId"] for r in posted[1:]]


def test_list_syncs_after_the_newest_is_empty(client: FlaskClient) -> None:
    posted = three_syncs(client)
    assert client.get(f"/syncs?after={posted[-1]['syncId']}").get_json() == []


def test_list_syncs_after_pages_oldest_first(client: FlaskClient) -> None:
    posted = three_syncs(client)
    first = client.get("/syncs?after=0&limit=1")
    assert "after=0" in (next_link(first) or "")
    assert [r["syncId"] for r in get_all(client, "/syncs?after=0&limit=1")] == [
        r["syncId"] for r in posted
    ]


@pytest.mark.parametrize("value", ["-1", "x", "1.5", str(2**63)])
def test_list_syncs_rejects_a_bad_after(client: FlaskClient, value: str) -> None:
    response = client.get(f"/syncs?after={value}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"


@pytest.mark.parametrize(
    "path", ["/syncs/2147483648", "/syncs/99999999999999999999", "/syncs/2147483648/changes"]
)
def test_a_sync_id_beyond_the_column_is_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_code(response) == "not_found"
