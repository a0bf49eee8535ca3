"""A first page written whole by PostgreSQL (paging.read_json_page) is the page read_page
reads, in one statement that also reads the data version; a pin is never read in another
state than its page's (paging.pin_instant_of)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from flask.testing import FlaskClient

from app.api.pagination import json_body, json_listing
from app.extensions import db
from app.reads import live, paging
from app.reads.listings import patients_page_listing
from app.reads.orderings import PATIENT_SORTS
from app.reads.paging import DataMoved, JsonPage, Pin, read_json_page, read_page
from app.reads.serializers import patient_json_sql
from tests.support.helpers import patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only

BOUNDS = [
    (None, None),
    (Decimal(60), None),
    (None, Decimal("80")),
    (Decimal("25.005"), Decimal("90.5")),
    (Decimal(10_000), None),  # no patient: an empty page
]
HALF = Decimal("0.5")
PIN = Pin("a version", datetime(2026, 1, 2, tzinfo=UTC))


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """Thirty patients, their totals spread over 0-150 with ties."""
    sync(client, "patients", [patient_record(f"p{i}") for i in range(30)])
    sync(
        client,
        "payments",
        [payment_record(f"m{i}", f"p{i % 25}", Decimal(i % 30) + HALF) for i in range(90)],
    )


def both_pages(
    bounds: tuple[Decimal | None, Decimal | None], sort: str, limit: int
) -> tuple[JsonPage, tuple[str, str | None]]:
    """The first page through read_json_page, and through read_page as (body, next cursor)."""
    query, key, bound = patients_page_listing(*bounds, sort, None)
    listing = json_listing(query, key, patient_json_sql, reused=True)
    connection = db.session.connection()
    whole = read_json_page(
        listing, key, limit, pin=lambda version: PIN, parameters=bound, connection=connection
    )
    rows = read_page(listing, key, None, limit, pin=lambda: PIN, parameters=bound, reused=True)
    return whole, (json_body(rows.rows), rows.next_cursor)


@pytest.mark.parametrize("limit", [1, 7, 25, 30, 31])
@pytest.mark.parametrize("bounds", BOUNDS)
@pytest.mark.parametrize("sort", sorted(PATIENT_SORTS))
def test_a_page_written_whole_is_the_page_its_rows_make(
    seeded: None,
    app_ctx: None,
    bounds: tuple[Decimal | None, Decimal | None],
    sort: str,
    limit: int,
) -> None:
    whole, rows = both_pages(bounds, sort, limit)
    assert (whole.body, whole.next_cursor) == rows


def test_a_page_written_whole_reports_the_version_it_was_read_in(
    seeded: None, app_ctx: None
) -> None:
    whole, _ = both_pages((None, None), "id", 5)
    assert whole.version == live.data_version(db.session)
    assert whole.next_cursor is not None


def test_an_empty_listing_is_an_empty_array_without_a_next_page(
    seeded: None, app_ctx: None
) -> None:
    whole, _ = both_pages((Decimal(10_000), None), "-paymentsTotal", 5)
    assert (whole.body, whole.next_cursor) == ("[]", None)


def test_the_pin_is_asked_for_the_version_the_page_was_read_in_and_only_for_a_next_page(
    seeded: None, app_ctx: None
) -> None:
    query, key, bound = patients_page_listing(None, None, "id", None)
    listing = json_listing(query, key, patient_json_sql, reused=True)
    asked: list[Any] = []

    def pin(version: str | None) -> Pin:
        asked.append(version)
        return PIN

    connection = db.session.connection()
    full = read_json_page(listing, key, 10, pin=pin, parameters=bound, connection=connection)
    assert asked == [full.version]
    last = read_json_page(listing, key, 30, pin=pin, parameters=bound, connection=connection)
    assert last.next_cursor is None
    assert asked == [full.version]


def test_a_pin_read_after_a_commit_replaced_its_version_is_neither_given_nor_kept(
    seeded: None, app_ctx: None
) -> None:
    version = live.data_version(db.session)
    assert version is not None
    real = live.pin_instant

    def after_a_commit(reader: live.Reader) -> tuple[datetime | None, str | None]:
        # The instant of the sync that committed: not the instant of ``version``.
        return datetime(2099, 1, 1, tzinfo=UTC), "the version a sync committed"

    with (
        mock.patch.object(live, "pin_instant", side_effect=after_a_commit),
        pytest.raises(DataMoved),
    ):
        paging.first_page_pin(version)
    pinned = paging.first_page_pin(version)
    assert pinned is not None
    assert pinned.at == real(db.session)[0] != datetime(2099, 1, 1, tzinfo=UTC)
