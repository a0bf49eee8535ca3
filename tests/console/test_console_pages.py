"""What each console page shows (SPEC §7), on both databases, with auth off."""

from __future__ import annotations

import html
import logging
import re
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from app.console.pages import bucket_width
from tests.support.helpers import patient_record, payment_record, sync
from tests.web.test_request_log import LogCapture

ODD_IDS = ["ward/7", "a%2Fb", "two words", "Zoë-ü/é", "?#&="]


def page(client: FlaskClient, url: str, status: int = 200) -> str:
    """GET a console page, check its status and HTML type, and return its unescaped text."""
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.mimetype == "text/html"
    return html.unescape(response.get_data(as_text=True))


def bars(text: str) -> int:
    """How many bars the page's charts draw."""
    return text.count('<g class="bar">')


def points(text: str) -> int:
    """How many points the page's charts draw."""
    return text.count('<g class="point">')


def next_link(text: str) -> str | None:
    """The href of the page's rel=next link."""
    match = re.search(r'<a rel="next" href="([^"]+)"', text)
    return match.group(1) if match else None


@pytest.fixture
def seeded(client: FlaskClient) -> dict[str, Any]:
    """Two patients and three payments (one rejected), then an amount change: four syncs."""
    reports = [
        sync(
            client,
            "patients",
            [patient_record("p1", lastName="Lovelace"), patient_record("p2", lastName="Hopper")],
        )
    ]
    reports.append(
        sync(
            client,
            "payments",
            [
                payment_record("m1", "p1", "10.00"),
                payment_record("m2", "p1", "5.50"),
                payment_record("m3", "p2", "7.25"),
                payment_record("bad", "nobody", "1.00"),
            ],
        )
    )
    reports.append(
        sync(
            client,
            "payments",
            [
                payment_record("m1", "p1", "12.50"),
                payment_record("m2", "p1", "5.50"),
                payment_record("m3", "p2", "7.25"),
            ],
        )
    )
    return {"reports": reports}


def test_overview_shows_live_counts_and_total_amount(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/")
    assert re.search(r'id="figure-patients">2<', text)
    assert re.search(r'id="figure-payments">3<', text)
    assert re.search(r'id="figure-amount">25.25<', text)


def test_overview_shows_the_last_sync_of_each_entity(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/")
    patients, _, payments = seeded["reports"]
    assert f"#{patients['syncId']}" in text and f"#{payments['syncId']}" in text
    assert "Applied, nothing rejected" in text


def test_overview_names_rejections_of_the_last_sync(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("x", firstName="")])
    assert "Applied, 1 record rejected" in page(client, "/console/")


def test_overview_warns_when_no_sync_was_applied(client: FlaskClient) -> None:
    text = page(client, "/console/")
    assert "No patients sync has been applied yet." in text


@pytest.mark.parametrize(
    ("app_config", "warned"),
    [({"CONSOLE_STALE_AFTER_HOURS": 0}, True), ({}, False)],
    ids=["stale", "fresh"],
)
def test_overview_warns_when_the_last_sync_is_older_than_the_stale_age(
    client: FlaskClient, seeded: Any, warned: bool
) -> None:
    assert ("The last payments sync is" in page(client, "/console/")) is warned


def test_syncs_page_lists_every_sync_with_one_bar_and_point_each(
    client: FlaskClient, seeded: Any
) -> None:
    text = page(client, "/console/syncs")
    for report in seeded["reports"]:
        assert f'/console/syncs/{report["syncId"]}"' in text
    assert bars(text) == points(text) == 3


def test_syncs_page_pages_through_syncs(client: FlaskClient) -> None:
    for n in range(55):
        sync(client, "patients", [patient_record("p1", lastName=f"N{n}")])
    first = page(client, "/console/syncs")
    later = page(client, next_link(first) or "")
    assert bars(first) == 50 and bars(later) == 5
    assert next_link(later) is None


def test_sync_page_lists_rejected_records_with_index_id_and_messages(
    client: FlaskClient, seeded: Any
) -> None:
    text = page(client, f"/console/syncs/{seeded['reports'][1]['syncId']}")
    rejected = text[text.index('id="rejected"') : text.index('id="changes-heading"')]
    assert re.search(r">3</th>", rejected)
    assert "<code>bad</code>" in rejected
    assert "No live patient with externalId 'nobody'." in rejected


def test_sync_page_shows_an_amount_change_before_and_after(
    client: FlaskClient, seeded: Any
) -> None:
    text = page(client, f"/console/syncs/{seeded['reports'][2]['syncId']}")
    changes = text[text.index('id="changes"') :]
    assert "<code>m1</code>" in changes and "op-updated" in changes
    assert re.search(
        r'class="changed"><dt>amount</dt><dd>10.00</dd>.*'
        r'class="changed"><dt>amount</dt><dd>12.50</dd>',
        changes,
        re.S,
    )


def test_sync_page_pages_through_changes(client: FlaskClient) -> None:
    report = sync(client, "patients", [patient_record(f"p{n:03}") for n in range(130)])
    first = page(client, f"/console/syncs/{report['syncId']}")
    later = page(client, next_link(first) or "")
    assert first.count("op-created") + later.count("op-created") == 130


def test_unknown_sync_is_a_404_page(client: FlaskClient) -> None:
    assert "There is no sync 999" in page(client, "/console/syncs/999", 404)


@pytest.mark.parametrize("external_id", ODD_IDS)
def test_patient_page_finds_any_id_given_as_a_query_parameter(
    client: FlaskClient, external_id: str
) -> None:
    sync(client, "patients", [patient_record(external_id, lastName="Odd")])
    text = page(client, f"/console/patient?id={quote(external_id, safe='')}")
    assert "Ada Odd" in text
    assert f"<code>{external_id}</code>" in text


def test_patient_page_shows_fields_totals_and_payments(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/patient?id=p1")
    assert re.search(r'id="patient-total">18.00<', text)
    assert "1815-12-10" in text
    assert "<code>m1</code>" in text and "<code>m2</code>" in text


def test_patient_timeline_shows_the_amount_change(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/patient?id=p1")
    assert re.search(r"Amount</span> <del>10.00</del> → <ins>12.50</ins>", text)


def test_patient_timeline_shows_a_name_change(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1", lastName="Byron")])
    sync(client, "patients", [patient_record("p1", lastName="King")])
    text = page(client, "/console/patient?id=p1")
    assert "Last name</span> <del>Byron</del> → <ins>King</ins>" in text


def test_patient_as_of_shows_the_patient_as_it_stood_then(client: FlaskClient, seeded: Any) -> None:
    before_change = seeded["reports"][1]["finishedAt"]
    text = page(client, f"/console/patient?id=p1&as_of={quote(before_change)}")
    assert re.search(r'id="patient-total">15.50<', text)


def test_patient_as_of_reads_an_rfc_3339_instant_in_utc(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/patient?id=p1&as_of=2000-01-01T00:00:00Z")
    assert "This patient was not live at that time" in text


def test_patient_as_of_field_is_a_24_hour_utc_text_input(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/patient?id=p1&as_of=2100-01-01T01:30:00%2B01:00")
    field = re.search(r'<input id="as-of"[^>]*>', text)
    assert field is not None
    assert 'type="text"' in field.group(0)
    assert 'placeholder="2026-12-06T23:00:00Z"' in field.group(0)
    assert 'value="2100-01-01T00:30:00Z"' in field.group(0)
    assert "datetime-local" not in text


@pytest.mark.parametrize(
    "as_of",
    [
        "yesterday",
        "2000-01-01T00:00",
        "2000-01-01",
        "2000-01-01T00:00:00",
        "2000-01-01 00:00:00Z",
        "2000-01-01T12:00:00 PM",
        "2000-13-01T00:00:00Z",
        "\uff12\uff10\uff10\uff10-01-01T00:00:00Z",
        "2000-01-01T00:00:00Z trailing",
    ],
)
def test_patient_as_of_a_bad_date_is_a_400_page(
    client: FlaskClient, seeded: Any, as_of: str
) -> None:
    text = page(client, f"/console/patient?id=p1&as_of={quote(as_of)}", 400)
    assert "is not a date and time" in text and "2026-12-06T23:00:00Z" in text


def test_unknown_patient_is_a_404_page(client: FlaskClient) -> None:
    assert "No patient was ever stored" in page(client, "/console/patient?id=nobody", 404)


def test_deleted_patient_shows_its_history(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "patients", [patient_record("p2")])
    text = page(client, "/console/patient?id=p1")
    assert "This patient is deleted" in text
    assert "op-deleted" in text


def test_analytics_histogram_counts_every_live_patient_once(client: FlaskClient) -> None:
    amounts = ["-30.00", "0.00", "0.01", "49.99", "50.00", "99.99", "250.00"]
    sync(client, "patients", [patient_record(f"p{n}") for n in range(len(amounts) + 1)])
    sync(
        client,
        "payments",
        [payment_record(f"m{n}", f"p{n}", amount) for n, amount in enumerate(amounts)],
    )
    text = page(client, "/console/analytics")
    counts = [int(n) for n in re.findall(r'<td class="num">([\d,]+)</td></tr>', text)]
    assert sum(counts) == len(amounts) + 1
    assert bars(text) == len(counts)


def test_analytics_histogram_follows_a_sync(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    before = page(client, "/console/analytics")
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    after = page(client, "/console/analytics")
    counts = [
        sum(int(n) for n in re.findall(r'<td class="num">([\d,]+)</td></tr>', text))
        for text in (before, after)
    ]
    assert counts == [1, 2]


def test_analytics_histogram_puts_negative_totals_below_zero(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client,
        "payments",
        [payment_record("m1", "p1", "-5.00"), payment_record("m2", "p2", "15.00")],
    )
    text = page(client, "/console/analytics")
    assert re.search(
        r'<td class="num">-5.00</td><td class="num">-4.00</td>'
        r'<td class="num">1</td>',
        text,
    )


@pytest.mark.parametrize(
    ("low", "high", "width"),
    [
        ("0", "100", "5"),
        ("0", "0", "1"),
        ("-30", "250", "20"),
        ("0.01", "0.05", "0.01"),
        ("7", "7", "10"),
    ],
)
def test_bucket_width_is_round(low: str, high: str, width: str) -> None:
    assert bucket_width(Decimal(low), Decimal(high)) == Decimal(width)


def test_analytics_top_payers_are_ordered_by_total(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/analytics")
    top = text[text.index('id="top-payers"') : text.index('id="range-heading"')]
    assert top.index("<code>p1</code>") < top.index("<code>p2</code>")


def test_analytics_range_query_applies_inclusive_bounds(client: FlaskClient, seeded: Any) -> None:
    text = page(client, "/console/analytics?payment_min=7.25&payment_max=7.25")
    matching = text[text.index('id="range"') :]
    assert "<code>p2</code>" in matching and "<code>p1</code>" not in matching


def test_analytics_range_query_pages_through_every_row_exactly_once(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(f"p{n:03}") for n in range(120)])
    sync(client, "payments", [payment_record(f"m{n}", f"p{n:03}", f"{n}.00") for n in range(120)])
    seen: list[str] = []
    url: str | None = "/console/analytics?payment_min=10&sort=-paymentsTotal"
    while url:
        text = page(client, url)
        seen += re.findall(r"<code>(p\d+)</code></a></th><td>", text[text.index('id="range"') :])
        url = next_link(text)
    assert seen == [f"p{n:03}" for n in range(119, 9, -1)]


def test_analytics_range_paging_is_stable_across_a_sync(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(f"p{n:03}") for n in range(60)])
    first = page(client, "/console/analytics")
    sync(client, "patients", [patient_record(f"p{n:03}") for n in range(1, 61)])
    later = page(client, next_link(first) or "")
    rows = re.findall(r"<code>(p\d+)</code></a></th><td>", later[later.index('id="range"') :])
    assert rows == [f"p{n:03}" for n in range(50, 60)]


@pytest.mark.parametrize(
    "query",
    [
        "payment_min=abc",
        "payment_max=NaN",
        "payment_min=5&payment_max=1",
        "sort=name",
        "cursor=garbage",
    ],
)
def test_analytics_bad_input_is_a_400_page(client: FlaskClient, query: str) -> None:
    page(client, f"/console/analytics?{query}", 400)


@pytest.mark.parametrize(
    "as_of",
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59.999999-14:00",
        "0001-01-01T00:00:00+14:00",
    ],
)
def test_patient_as_of_at_the_ends_of_the_calendar_is_a_400_page(
    client: FlaskClient, seeded: Any, as_of: str
) -> None:
    page(client, f"/console/patient?id=p1&as_of={quote(as_of)}", 400)


def test_console_pages_log_no_patient_data(client: FlaskClient, seeded: Any) -> None:
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture.handler)
    try:
        page(client, "/console/patient?id=p1&as_of=2100-01-01T00:00:00Z")
        page(client, "/console/analytics?payment_min=7.25")
        page(client, "/console/patient?id=nobody-secret", 404)
    finally:
        root.removeHandler(capture.handler)
    paths = [line["path"] for line in capture.access()]
    assert paths == ["/console/patient", "/console/analytics", "/console/patient"]
    assert not any(
        secret in capture.text_without_times
        for secret in ("Lovelace", "nobody-secret", "7.25", "12.50")
    )
