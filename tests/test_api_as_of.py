"""as_of: the answer a read would have given at that instant (SPEC §5)."""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from app import history_queries
from tests.helpers import error_code, patient_record, payment_record, random_syncs, sync

READS = ["/patients?limit=1000", "/patients?sort=-paymentsTotal&limit=1000",
         "/patients?sort=paymentsTotal&payment_min=1&payment_max=4&limit=1000",
         "/payments?limit=1000", "/payments?external_id=p1&limit=1000"]
DETAILS = ["/patients/p1", "/patients/p3", "/payments/m2", "/payments/m5"]

# The shape of the random sync sequences these tests replay.
SYNC_SEQUENCE: dict[str, Any] = {"rounds": 6, "patients": 6, "payments": 8, "keep": 0.75}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget and no mass-delete guard: random sequences delete a lot."""
    return {"RATELIMIT_ENABLED": False, "SYNC_GUARD_MIN_ROWS": 10**6}


def at(url: str, instant: str) -> str:
    """``url`` with as_of=``instant``."""
    return f"{url}{'&' if '?' in url else '?'}as_of={quote(instant)}"


def answer(client: FlaskClient, url: str) -> tuple[int, bytes]:
    response = client.get(url)
    return response.status_code, response.get_data()


@pytest.mark.parametrize("seed", range(2))
def test_as_of_every_sync_equals_the_answer_captured_then(client: FlaskClient,
                                                          seed: int) -> None:
    captured: list[tuple[str, dict[str, tuple[int, bytes]]]] = []
    for entity, records in random_syncs(random.Random(seed), **SYNC_SEQUENCE):
        report = sync(client, entity, records)
        captured.append((report["startedAt"],
                         {url: answer(client, url) for url in READS + DETAILS}))
    for instant, answers in captured:
        for url, expected in answers.items():
            assert answer(client, at(url, instant)) == expected, (instant, url)


def test_as_of_before_the_first_sync_is_empty_and_404(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "1.00")])
    before = "2000-01-01T00:00:00+00:00"
    assert client.get(at("/patients", before)).get_json() == []
    assert client.get(at("/payments", before)).get_json() == []
    assert client.get(at("/patients/p1", before)).status_code == 404
    assert client.get(at("/payments/m1", before)).status_code == 404


def test_as_of_pages_follow_link_at_the_same_instant(client: FlaskClient) -> None:
    first = sync(client, "patients", [patient_record(f"p{n}") for n in range(3)])
    sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])
    url = at("/patients?limit=1", first["startedAt"])
    seen = []
    while url:
        response = client.get(url)
        seen += [p["externalId"] for p in response.get_json()]
        link = response.headers.get("Link", "")
        url = link[1:link.index(">")] if link else ""
    assert seen == ["p0", "p1", "p2"]


@pytest.mark.parametrize("value", ["2026-11-21T10:00:00", "yesterday", "2026-13-01T00:00:00Z",
                                   "", "1e1000000"])
@pytest.mark.parametrize("path", ["/patients", "/payments", "/patients/p1", "/payments/m1"])
def test_as_of_without_an_offset_or_unparseable_is_422(client: FlaskClient, path: str,
                                                       value: str) -> None:
    response = client.get(f"{path}?as_of={quote(value)}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"


def next_url(response: Any) -> str:
    """The Link rel="next" URL, or "" on the last page."""
    link = response.headers.get("Link", "")
    return link[1:link.index(">")] if link else ""


@pytest.mark.parametrize("sort", ["id", "paymentsTotal", "-paymentsTotal"])
def test_paging_across_a_sync_visits_the_first_pages_listing_exactly_once(
        client: FlaskClient, sort: str) -> None:
    patients = [patient_record(f"p{n:02}") for n in range(30)]
    sync(client, "patients", patients)
    sync(client, "payments", [payment_record(f"m{n}", f"p{n:02}", f"{n}.00") for n in range(30)])
    expected = [(p["externalId"], p["paymentsTotal"])
                for p in client.get(f"/patients?sort={sort}&limit=1000").get_json()]
    response = client.get(f"/patients?sort={sort}&limit=10")
    seen = [(p["externalId"], p["paymentsTotal"]) for p in response.get_json()]
    # A sync doubles every total and adds patients between the pages.
    sync(client, "patients", [*patients, patient_record("p99"), patient_record("p00a")])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n:02}", f"{2 * n}.00")
                              for n in range(30)])
    url = next_url(response)
    while url:
        response = client.get(url)
        seen += [(p["externalId"], p["paymentsTotal"]) for p in response.get_json()]
        url = next_url(response)
    assert seen == expected


def test_paging_without_a_sync_in_between_reads_live_data(
        client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])

    def no_history(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a page read as of the pin although nothing changed")

    monkeypatch.setattr(history_queries, "live_patients_at", no_history)
    pages = client.get("/patients?limit=2")
    url, seen = next_url(pages), [p["externalId"] for p in pages.get_json()]
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.get_data(as_text=True)
        seen += [p["externalId"] for p in page.get_json()]
        url = next_url(page)
    assert seen == [f"p{n}" for n in range(5)]
