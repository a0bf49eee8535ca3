"""The listings both faces read, whole or a page at a time: each one's query and sort key.

GET /patients and GET /payments (live or ``as_of``), and the console's range
query and a patient's payments, ask here, so a page, a CSV export and the
console's download of the same parameters list the same rows in the same order.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.reads import live
from app.reads.as_of import live_patients_at, live_payments_at
from app.reads.orderings import PATIENT_SORTS, PAYMENTS_BY_ID, patient_sorts, payments_by_id
from app.reads.paging import SortKey

Listing = tuple[sa.Select[Any], SortKey]
# A listing whose statement has bind parameters, with their values (None: it has none).
BoundListing = tuple[sa.Select[Any], SortKey, dict[str, Any] | None]


def patients_listing(
    payment_min: Decimal | None,
    payment_max: Decimal | None,
    sort: str,
    as_of: datetime | None,
) -> Listing:
    """Live patients (as of ``as_of``, if given) within the bounds on their totals, in ``sort``."""
    if as_of is None:
        return live.live_patients(payment_min, payment_max), PATIENT_SORTS[sort]
    query, listed = live_patients_at(as_of, payment_min, payment_max)
    return query, patient_sorts(listed.c)[sort]


def patients_page_listing(
    payment_min: Decimal | None,
    payment_max: Decimal | None,
    sort: str,
    as_of: datetime | None,
) -> BoundListing:
    """patients_listing as the API pages it: the live listing's statement built once per
    shape (app/reads/live.within_bounds), its bounds bound to it."""
    if as_of is None:
        query = live.within_bounds(
            live.live_patients(), payment_min is not None, payment_max is not None
        )
        return query, PATIENT_SORTS[sort], live.bounds_of(payment_min, payment_max)
    return (*patients_listing(payment_min, payment_max, sort, as_of), None)


def payments_listing(patient_external_id: str | None, as_of: datetime | None) -> Listing:
    """Live payments (as of ``as_of``, if given), optionally of one patient, in id order."""
    if as_of is None:
        return live.live_payments(patient_external_id), PAYMENTS_BY_ID
    query, listed = live_payments_at(as_of, patient_external_id)
    return query, payments_by_id(listed.c)
