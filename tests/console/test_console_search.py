"""Finding a patient by name in the console (issue 22): any case or accent, paged, not logged."""

from __future__ import annotations

import html
import logging
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from app.console.pages import PATIENTS_PER_PAGE
from app.db.names import fold
from tests.support.helpers import patient_record, sync
from tests.web.test_request_log import LogCapture

NAMES = [
    ("z1", "Zoë", "Ångström"),
    ("z2", "ZOE", "Smith"),
    ("o1", "Søren", "Ørsted"),
    ("d1", "Đặng", "Thị Ánh"),
    ("b1", "Jean-Luc", "O'Brien"),
    ("p1", "100%", "under_score"),
    ("x1", "Ada", "Lovelace"),
]


@pytest.fixture
def named(client: FlaskClient) -> None:
    """Patients whose names have accents, strokes, cases, punctuation and LIKE wildcards."""
    sync(
        client,
        "patients",
        [patient_record(eid, firstName=first, lastName=last) for eid, first, last in NAMES],
    )


def found(client: FlaskClient, query: str, cursor: str | None = None) -> list[str]:
    """The externalIds a search lists on its page."""
    url = f"/console/patients?q={quote(query)}" + (f"&cursor={cursor}" if cursor else "")
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:1000]
    text = response.get_data(as_text=True)
    return re.findall(r'<th scope="row"><a href="[^"]*"><code>([^<]*)</code>', text)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("zoe", ["z1", "z2"]),
        ("ANGS", ["z1"]),
        ("Zoë Ångström", ["z1"]),
        ("zoe angstrom", ["z1"]),
        ("ångström ZOË", ["z1"]),
        ("ngstr", ["z1"]),
        ("soren orsted", ["o1"]),
        ("Ørsted", ["o1"]),
        ("dang anh", ["d1"]),
        ("o'brien", ["b1"]),
        ("jean-luc", ["b1"]),
        ("100%", ["p1"]),
        ("%", ["p1"]),
        ("_", ["p1"]),
        ("zoe smith", ["z2"]),
        ("zoe lovelace", []),
        ("nobody", []),
    ],
)
def test_search_finds_names_in_any_case_and_with_or_without_accents(
    client: FlaskClient, named: None, query: str, expected: list[str]
) -> None:
    assert found(client, query) == expected


def test_search_lists_no_deleted_patient(client: FlaskClient, named: None) -> None:
    sync(client, "patients", [patient_record("z2", firstName="ZOE", lastName="Smith")])
    assert found(client, "zoe") == ["z2"]


def test_search_pages_through_every_match_once(client: FlaskClient) -> None:
    count = PATIENTS_PER_PAGE * 2 + 3
    sync(
        client,
        "patients",
        [patient_record(f"a{n:03}", firstName="Anna", lastName=f"Ek{n}") for n in range(count)]
        + [patient_record("other", firstName="Bo", lastName="Ek")],
    )
    seen: list[str] = []
    url: str | None = "/console/patients?q=anna"
    while url:
        text = html.unescape(client.get(url).get_data(as_text=True))
        seen += re.findall(r'<th scope="row"><a href="[^"]*"><code>([^<]*)</code>', text)
        match = re.search(r'<a rel="next" href="([^"]+)"', text)
        url = match.group(1) if match else None
    assert seen == [f"a{n:03}" for n in range(count)]


def test_blank_search_shows_the_form_only(client: FlaskClient, named: None) -> None:
    text = client.get("/console/patients?q=+").get_data(as_text=True)
    assert 'name="q"' in text and 'id="found"' not in text


def test_too_long_a_search_is_a_400_page(client: FlaskClient) -> None:
    assert client.get(f"/console/patients?q={'a' * 201}").status_code == 400
    assert client.get(f"/console/patients?q={quote(' '.join('abcdefghi'))}").status_code == 400


def test_the_overview_offers_the_search_box(client: FlaskClient) -> None:
    text = client.get("/console/").get_data(as_text=True)
    assert 'action="/console/patients"' in text and 'name="q"' in text


def test_search_terms_never_reach_the_logs(client: FlaskClient, named: None) -> None:
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture.handler)
    try:
        found(client, "Ångström zoe")
        found(client, "Lovelace")
        client.get(f"/console/patients?q={'Secretname' * 30}")
    finally:
        root.removeHandler(capture.handler)
    assert [line["path"] for line in capture.access()] == ["/console/patients"] * 3
    lowered = capture.text.lower()
    assert not any(term in lowered for term in ("ngstr", "zoe", "lovelace", "secretname"))


def test_sqlite_fold_agrees_with_postgresql_unaccent_on_these_names(app: Any, backend: str) -> None:
    """The Python fold (SQLite) and pp_fold (PostgreSQL) give the same text for the test names."""
    from app.extensions import db

    with app.app_context():
        folded = [
            db.session.scalar(db.text("SELECT pp_fold(:name)"), {"name": f"{first} {last}"})
            for _, first, last in NAMES
        ]
    assert folded == [fold(f"{first} {last}") for _, first, last in NAMES]
