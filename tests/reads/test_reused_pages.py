"""Pages of a reused statement (live.within_bounds, read_page(reused=True)) list what pages
built afresh list: the same rows in the same order, page after page, in every sort."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.reads import live
from app.reads.orderings import PATIENT_SORTS
from app.reads.paging import SortKey, read_page
from tests.support.helpers import patient_record, payment_record, sync

HALF = Decimal("0.5")
BOUNDS = [
    (None, None),
    (Decimal(60), None),
    (None, Decimal("80")),
    (Decimal("25.005"), Decimal("90.5")),
]


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """Fifty patients, their totals spread over 0-150 with ties."""
    sync(client, "patients", [patient_record(f"p{i}") for i in range(50)])
    sync(
        client,
        "payments",
        [payment_record(f"m{i}", f"p{i % 40}", Decimal(i % 30) + HALF) for i in range(200)],
    )


def every_page(
    bounds: tuple[Decimal | None, Decimal | None], key: SortKey, *, reused: bool
) -> list[list[int]]:
    """The ids of each page of 7 of the bounded listing, following the keyset to the end."""
    if reused:
        query = live.within_bounds(live.live_patients(), *(b is not None for b in bounds))
        parameters: dict[str, Any] | None = live.bounds_of(*bounds)
    else:
        query, parameters = live.live_patients(*bounds), None
    pages, after = [], None
    for _ in range(50):  # fifty patients: a keyset that does not move never ends
        page = read_page(query, key, after, 7, parameters=parameters, reused=reused)
        pages.append([row.id for row in page.rows])
        if page.next_cursor is None:
            return pages
        after = key.decode(page.next_cursor)
    raise AssertionError(f"more than 50 pages: {pages[:3]}")


@pytest.mark.parametrize("bounds", BOUNDS)
@pytest.mark.parametrize("sort", sorted(PATIENT_SORTS))
def test_a_reused_statement_pages_like_one_built_afresh(
    seeded: None, app_ctx: None, bounds: tuple[Decimal | None, Decimal | None], sort: str
) -> None:
    key = PATIENT_SORTS[sort]
    fresh = every_page(bounds, key, reused=False)
    assert sum(len(page) for page in fresh) > 7  # more than one page to follow
    assert every_page(bounds, key, reused=True) == fresh


def test_a_listing_shape_is_built_once(app_ctx: None) -> None:
    both = live.within_bounds(live.live_patients(), True, True)
    assert live.within_bounds(live.live_patients(), True, True) is both
    assert live.within_bounds(live.live_patients(), True, False) is not both
