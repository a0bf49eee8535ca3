"""The orders lists are paged in: one owner for the sort names the arguments accept."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.models import Patient, Payment, SyncRun
from app.reads.paging import KeyColumn, SortKey


def patient_sorts(columns: Any) -> dict[str, SortKey]:
    """The orders of a patients listing, over ``columns`` (the table's, or a query's)."""
    by_id = KeyColumn("id", columns.id)
    total = KeyColumn("payments_total", columns.payments_total, Decimal)
    total_desc = KeyColumn("payments_total", columns.payments_total, Decimal, descending=True)
    return {
        "id": SortKey("id", (by_id,)),
        "paymentsTotal": SortKey("paymentsTotal", (total, by_id)),
        "-paymentsTotal": SortKey("-paymentsTotal", (total_desc, by_id)),
    }


def payments_by_id(columns: Any) -> SortKey:
    """Payments in id order, over ``columns`` (the table's, or a query's)."""
    return SortKey("id", (KeyColumn("id", columns.id),))


# GET /patients?sort=<name>: the argument schema accepts exactly these names.
PATIENT_SORTS = patient_sorts(Patient.__table__.c)
PAYMENTS_BY_ID = payments_by_id(Payment.__table__.c)
SYNCS_NEWEST_FIRST = SortKey("-id", (KeyColumn("id", SyncRun.id, descending=True),))
# The feed (GET /syncs?after=): the order syncs finished in, not acceptance (app/reads/syncs.py).
SYNCS_OLDEST_FIRST = SortKey("applied", (KeyColumn("applied_seq", SyncRun.applied_seq),))
# GET /analytics/syncs: every recorded sync, unfinished ones included, in acceptance order.
SYNCS_BY_ID = SortKey("id", (KeyColumn("id", SyncRun.id),))


def by_record(changes: sa.Subquery | None = None) -> SortKey:
    """The records a sync changed, in the order they were stored (their ids).

    Without ``changes``, the key only reads cursors (Window.after): the
    keyset is pushed into the query before the query exists.
    """
    record_id = sa.column("record_id") if changes is None else changes.c.record_id
    return SortKey("record", (KeyColumn("record_id", record_id),))


def newest_version_first(versions: sa.Subquery) -> SortKey:
    """A record's versions, newest first: no two of them began at the same instant."""
    return SortKey(
        "-validFrom", (KeyColumn("valid_from", versions.c.valid_from, datetime, descending=True),)
    )
