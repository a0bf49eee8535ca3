"""as_of: the answer a read would have given at that instant (SPEC §5)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.instants import parse_instant
from app.reads import listings
from tests.support.helpers import error_code, patient_record, payment_record, random_syncs, sync

READS = [
    "/patients?limit=1000",
    "/patients?sort=-paymentsTotal&limit=1000",
    "/patients?sort=paymentsTotal&payment_min=1&payment_max=4&limit=1000",
    "/payments?limit=1000",
    "/payments?external_id=p1&limit=1000",
]
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
def test_as_of_every_sync_equals_the_answer_captured_then(client: FlaskClient, seed: int) -> None:
    captured: list[tuple[str, dict[str, tuple[int, bytes]]]] = []
    for entity, records in random_syncs(random.Random(seed), **SYNC_SEQUENCE):
        report = sync(client, entity, records)
        captured.append(
            (report["startedAt"], {url: answer(client, url) for url in READS + DETAILS})
        )
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
        url = link[1 : link.index(">")] if link else ""
    assert seen == ["p0", "p1", "p2"]


@pytest.mark.parametrize(
    "value", ["2026-11-21T10:00:00", "yesterday", "2026-13-01T00:00:00Z", "", "1e1000000"]
)
@pytest.mark.parametrize("path", ["/patients", "/payments", "/patients/p1", "/payments/m1"])
def test_as_of_without_an_offset_or_unparseable_is_422(
    client: FlaskClient, path: str, value: str
) -> None:
    response = client.get(f"{path}?as_of={quote(value)}")
    assert response.status_code == 422
    assert error_code(response) == "invalid_parameter"


AS_OF_READS = ["/patients", "/payments", "/patients/p1", "/payments/m1"]


def assert_as_of_refused(response: TestResponse) -> None:
    """422 invalid_parameter naming as_of, and only as_of."""
    assert response.status_code == 422, response.get_data(as_text=True)
    assert error_code(response) == "invalid_parameter"
    assert list(response.get_json()["error"]["details"]["parameters"]) == ["as_of"]


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-06T23.5Z",
        "2026-12-06T23:30.5Z",
        "2026-12-06T23:00Z",
        "2026-12-06",
        "2026-12-06T23:00:00Z\x00",
        "2026-12-06T23:00:00Z ",
        "2026-12-06T23:00:00Zjunk",
        "2026-12-06T\uff12\uff13:00:00Z",
        "2026-12-06T24:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-12-06T23:00:00+24:00",
    ],
    ids=[
        "fraction_of_the_hour",
        "fraction_of_the_minute",
        "no_seconds",
        "date_only",
        "trailing_nul",
        "trailing_space",
        "trailing_characters",
        "fullwidth_digits",
        "hour_24",
        "february_30",
        "offset_of_a_day",
    ],
)
@pytest.mark.parametrize("path", AS_OF_READS)
def test_as_of_that_is_not_a_strict_rfc_3339_instant_is_422(
    client: FlaskClient, path: str, value: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    assert_as_of_refused(client.get(at(path, value)))


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59.999999-14:00", "0001-01-01T00:00:00+14:00"],
    ids=["after_9999", "before_1"],
)
@pytest.mark.parametrize("path", AS_OF_READS)
def test_as_of_outside_years_1_to_9999_in_utc_is_422_not_500(
    client: FlaskClient, path: str, value: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    assert_as_of_refused(client.get(at(path, value)))


@pytest.mark.parametrize(
    "path", ["/patients?limit=1", "/payments?limit=1", "/patients/p1", "/payments/m1"]
)
def test_as_of_at_the_last_instant_of_year_9999_answers_the_current_state(
    client: FlaskClient, path: str
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client, "payments", [payment_record("m1", "p1", "1.00"), payment_record("m2", "p2", "2.00")]
    )
    response = client.get(at(path, "9999-12-31T23:59:59.999999Z"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == client.get(path).get_json()


@pytest.mark.parametrize("path", ["/patients", "/payments"])
def test_as_of_at_the_first_instant_of_year_1_is_an_empty_list(
    client: FlaskClient, path: str
) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "1.00")])
    response = client.get(at(path, "0001-01-01T00:00:00Z"))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == []


def test_as_of_with_lowercase_t_and_z_and_a_fraction_is_read(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record("p1")])
    later = parse_instant(report["startedAt"]) + timedelta(microseconds=500)
    instant = later.strftime("%Y-%m-%dt%H:%M:%S.%fz")
    assert [p["externalId"] for p in client.get(at("/patients", instant)).get_json()] == ["p1"]


def next_url(response: Any) -> str:
    """The Link rel="next" URL, or "" on the last page."""
    link = response.headers.get("Link", "")
    return link[1 : link.index(">")] if link else ""


@pytest.mark.parametrize("sort", ["id", "paymentsTotal", "-paymentsTotal"])
def test_paging_across_a_sync_visits_the_first_pages_listing_exactly_once(
    client: FlaskClient, sort: str
) -> None:
    patients = [patient_record(f"p{n:02}") for n in range(30)]
    sync(client, "patients", patients)
    sync(client, "payments", [payment_record(f"m{n}", f"p{n:02}", f"{n}.00") for n in range(30)])
    expected = [
        (p["externalId"], p["paymentsTotal"])
        for p in client.get(f"/patients?sort={sort}&limit=1000").get_json()
    ]
    response = client.get(f"/patients?sort={sort}&limit=10")
    seen = [(p["externalId"], p["paymentsTotal"]) for p in response.get_json()]
    # A sync doubles every total and adds patients between the pages.
    sync(client, "patients", [*patients, patient_record("p99"), patient_record("p00a")])
    sync(
        client, "payments", [payment_record(f"m{n}", f"p{n:02}", f"{2 * n}.00") for n in range(30)]
    )
    url = next_url(response)
    while url:
        response = client.get(url)
        seen += [(p["externalId"], p["paymentsTotal"]) for p in response.get_json()]
        url = next_url(response)
    assert seen == expected


def test_paging_without_a_sync_in_between_reads_live_data(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(client, "patients", [patient_record(f"p{n}") for n in range(5)])

    def no_history(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a page read as of the pin although nothing changed")

    monkeypatch.setattr(listings, "live_patients_at", no_history)
    pages = client.get("/patients?limit=2")
    url, seen = next_url(pages), [p["externalId"] for p in pages.get_json()]
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.get_data(as_text=True)
        seen += [p["externalId"] for p in page.get_json()]
        url = next_url(page)
    assert seen == [f"p{n}" for n in range(5)]


@pytest.mark.parametrize(
    "path", ["/patients", "/payments", "/patients/{external_id}", "/payments/{external_id}"]
)
def test_as_of_is_documented_as_a_date_time_string_with_an_example(
    client: FlaskClient, path: str
) -> None:
    operation = client.get("/openapi.json").get_json()["paths"][path]["get"]
    (as_of,) = [p for p in operation["parameters"] if p["name"] == "as_of"]
    assert as_of["schema"]["type"] == "string"
    assert as_of["schema"]["format"] == "date-time"
    assert parse_instant(as_of["schema"]["example"])
