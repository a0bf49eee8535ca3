"""The orders lists are paged in: one owner for the sort names the arguments accept."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from app.api.pagination import KeyColumn, SortKey
from app.models import Patient, Payment, SyncRun

_PATIENT_ID = KeyColumn("id", Patient.id)
_PATIENT_TOTAL = KeyColumn("payments_total", Patient.payments_total, Decimal)
_PATIENT_TOTAL_DESC = KeyColumn("payments_total", Patient.payments_total, Decimal,
                                descending=True)

# GET /patients?sort=<name>: the argument schema accepts exactly these names.
PATIENT_SORTS = {
    "id": SortKey("id", (_PATIENT_ID,)),
    "paymentsTotal": SortKey("paymentsTotal", (_PATIENT_TOTAL, _PATIENT_ID)),
    "-paymentsTotal": SortKey("-paymentsTotal", (_PATIENT_TOTAL_DESC, _PATIENT_ID)),
}
PAYMENTS_BY_ID = SortKey("id", (KeyColumn("id", Payment.id),))
SYNCS_NEWEST_FIRST = SortKey("-id", (KeyColumn("id", SyncRun.id, descending=True),))
SYNCS_OLDEST_FIRST = SortKey("id", (KeyColumn("id", SyncRun.id),))


def by_record(changes: sa.Subquery) -> SortKey:
    """The records a sync changed, in the order they were stored (their ids)."""
    return SortKey("record", (KeyColumn("record_id", changes.c.record_id),))


def newest_version_first(versions: sa.Subquery) -> SortKey:
    """A record's versions, newest first: no two of them began at the same instant."""
    return SortKey("-validFrom", (KeyColumn("valid_from", versions.c.valid_from, datetime,
                                            descending=True),))
