"""A patient page's timelines (SPEC §7): paged, bounded whatever the history, moves shown."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.console import queries as console_queries
from app.console.pages import VERSIONS_PER_PAGE
from app.console.versions import newest_first, newest_first_by_record, windowed
from app.extensions import db
from app.reads import live
from tests.support.helpers import patient_record, payment_record, sync
from tests.support.plans import rows_read

# More versions than a page holds, of the patient and (PAYMENTS times as many) of its payments.
SYNCS = VERSIONS_PER_PAGE + 10
PAYMENTS = 3


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Rate limits off: building a long history takes more syncs than a minute's budget."""
    return {"RATELIMIT_ENABLED": False}


def page(client: FlaskClient, url: str) -> str:
    """GET a console page, check it answered 200, and return its unescaped text."""
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:2000]
    return html.unescape(response.get_data(as_text=True))


def entries(text: str, timeline: str) -> list[str]:
    """The "when" lines of one timeline ("patient" or "payments") of a patient page."""
    start = text.index(f'id="{timeline}-timeline"')
    part = text[start : text.index("</ol>", start)]
    return [
        re.sub(r"<[^>]+>", "", line)
        for line in re.findall(r'<p class="when">(.*?)</p>', part, re.S)
    ]


def link(text: str, label: str, after: str) -> str | None:
    """The href of the pager link ``label`` that follows the marker ``after``."""
    pager = text[text.index(after) :]
    pager = pager[: pager.index("</nav>")] if "</nav>" in pager else ""
    match = re.search(rf'<a (?:rel="\w+" )?href="([^"]+)">{label}</a>', pager)
    return match.group(1) if match else None


@pytest.fixture
def long_history(client: FlaskClient) -> None:
    """Patient p1 renamed SYNCS times; its PAYMENTS payments' amounts changed SYNCS times."""
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    for n in range(SYNCS):
        sync(client, "patients", [patient_record("p1", lastName=f"Name{n}"), patient_record("p2")])
        sync(
            client,
            "payments",
            [payment_record(f"m{i}", "p1", f"{n + i}.00") for i in range(PAYMENTS)],
        )


def walk(client: FlaskClient, url: str, timeline: str, label: str, after: str) -> list[list[str]]:
    """The entries of every page of one timeline, following ``label`` links from ``url``."""
    pages: list[list[str]] = []
    next_url: str | None = url
    while next_url:
        text = page(client, next_url)
        pages.append(entries(text, timeline))
        next_url = link(text, label, after)
    return pages


def test_patient_timeline_shows_a_page_of_versions_and_pages_through_the_rest(
    client: FlaskClient, long_history: None
) -> None:
    pages = walk(client, "/console/patient?id=p1", "patient", "Older", 'id="patient-timeline"')
    assert [len(p) for p in pages] == [VERSIONS_PER_PAGE, SYNCS + 1 - VERSIONS_PER_PAGE]
    seen = [entry for p in pages for entry in p]
    assert len(set(seen)) == SYNCS + 1
    assert seen[-1].startswith("created")


def test_payments_timeline_pages_through_every_version_exactly_once(
    client: FlaskClient, long_history: None
) -> None:
    pages = walk(client, "/console/patient?id=p1", "payments", "Older", 'id="payments-timeline"')
    seen = [entry for p in pages for entry in p]
    assert max(len(p) for p in pages) == VERSIONS_PER_PAGE
    assert len(seen) == len(set(seen)) == PAYMENTS * SYNCS
    assert [entry.split()[0] for entry in seen[-PAYMENTS:]] == ["created"] * PAYMENTS


def test_newer_links_lead_back_to_the_newest_versions(
    client: FlaskClient, long_history: None
) -> None:
    first = page(client, "/console/patient?id=p1")
    second = page(client, link(first, "Older", 'id="payments-timeline"') or "")
    third = page(client, link(second, "Older", 'id="payments-timeline"') or "")
    back = page(client, link(third, "Newer", 'id="payments-timeline"') or "")
    assert entries(back, "payments") == entries(second, "payments")
    newest = page(client, link(back, "Newer", 'id="payments-timeline"') or "")
    assert entries(newest, "payments") == entries(first, "payments")


def test_paging_one_timeline_keeps_the_other_where_it_was(
    client: FlaskClient, long_history: None
) -> None:
    first = page(client, "/console/patient?id=p1")
    older_patient = page(client, link(first, "Older", 'id="patient-timeline"') or "")
    both = page(client, link(older_patient, "Older", 'id="payments-timeline"') or "")
    assert entries(both, "patient") == entries(older_patient, "patient")
    assert entries(both, "payments") != entries(first, "payments")


def test_patient_page_stays_the_same_size_however_long_the_history(
    client: FlaskClient, long_history: None
) -> None:
    size = len(page(client, "/console/patient?id=p1"))
    for n in range(SYNCS, 2 * SYNCS):
        sync(
            client,
            "payments",
            [payment_record(f"m{i}", "p1", f"{n + i}.00") for i in range(PAYMENTS)],
        )
    text = page(client, "/console/patient?id=p1")
    assert len(entries(text, "payments")) == VERSIONS_PER_PAGE
    assert abs(len(text) - size) < 200


@pytest.mark.parametrize(
    "cursor", ["older=garbage", "newer=x", "payments_older=%00", "payments_newer=" + "a" * 600]
)
def test_a_timeline_cursor_that_is_not_ours_is_a_400_page(client: FlaskClient, cursor: str) -> None:
    sync(client, "patients", [patient_record("p1")])
    assert client.get(f"/console/patient?id=p1&{cursor}").status_code == 400


def test_a_payment_that_moved_away_shows_on_the_timeline_of_the_patient_it_left(
    client: FlaskClient,
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", "10.00")])
    moved = sync(client, "payments", [payment_record("m1", "p2", "10.00")])
    text = page(client, "/console/patient?id=p1")
    history = text[text.index('id="payments-timeline"') :]
    assert re.search(
        r'class="departure">Then <span class="op op-moved">moved</span> to patient '
        r'<a href="[^"]+"><code>p2</code></a> [^<]+ by <a href="[^"]+">sync #'
        rf"{moved['syncId']}</a>",
        history,
    )


def test_a_payment_that_moved_in_shows_where_it_came_from(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(client, "payments", [payment_record("m1", "p1", "10.00")])
    sync(client, "payments", [payment_record("m1", "p2", "10.00")])
    text = page(client, "/console/patient?id=p2")
    assert "Patient</span> <del>p1</del> → <ins>p2</ins>" in text


def test_a_payment_deleted_for_good_shows_on_its_patients_timeline(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(
        client,
        "payments",
        [payment_record("m1", "p1", "10.00"), payment_record("m2", "p1", "2.00")],
    )
    sync(client, "payments", [payment_record("m2", "p1", "2.00")])
    text = page(client, "/console/patient?id=p1")
    history = text[text.index('id="payments-timeline"') :]
    assert re.search(
        r"<code>m1</code>.*Then <span class=\"op op-deleted\">deleted</span>", history, re.S
    )


def _patient_id(app: Flask, external_id: str) -> int:
    with app.app_context():
        found = live.stored_patient_id(db.session, external_id)
    assert found is not None
    return found


@pytest.mark.postgresql_only
@pytest.mark.parametrize("after", [None, "deep"], ids=["first-page", "deep-page"])
def test_a_page_of_payment_versions_reads_about_a_page_of_rows(
    app: Flask, client: FlaskClient, long_history: None, after: str | None
) -> None:
    patient_id = _patient_id(app, "p1")
    parts = console_queries.payment_versions(patient_id)
    position = None
    if after:
        with app.app_context():
            middle = db.session.execute(sa.select(parts[0].subquery()).limit(1).offset(SYNCS)).one()
        position = [middle.valid_from, middle.record_id]
    window, query = windowed(
        parts,
        console_queries.with_payment_neighbours,
        newest_first_by_record,
        position,
        VERSIONS_PER_PAGE,
    )
    key = newest_first_by_record(window.c)
    statement = query.order_by(*key.order_by()).limit(VERSIONS_PER_PAGE + 1)
    assert rows_read(app, statement, "payment_versions", sorts=False) <= 3 * (VERSIONS_PER_PAGE + 1)


@pytest.mark.postgresql_only
def test_a_page_of_patient_versions_reads_about_a_page_of_rows(
    app: Flask, client: FlaskClient, long_history: None
) -> None:
    record_id = _patient_id(app, "p1")
    window, query = windowed(
        console_queries.patient_versions(record_id),
        console_queries.with_patient_before,
        newest_first,
        None,
        VERSIONS_PER_PAGE,
    )
    statement = query.order_by(*newest_first(window.c).order_by()).limit(VERSIONS_PER_PAGE + 1)
    assert rows_read(app, statement, "patient_versions", sorts=False) <= 2 * (VERSIONS_PER_PAGE + 1)
