"""The sync floor of issue 11: payments applied by raw SQL, the fastest naive way.

psycopg2, the snapshot already parsed and filtered in memory and its COPY
text already built (none of that is timed), then in one transaction: COPY
into a temporary table and three set-based statements (update the live
rows whose values differ, insert the new ones, soft-delete the absent
ones), timed from the COPY to the COMMIT. Payments rows only: no report,
no history, no totals, no per-record errors, no restore of deleted rows.

It gets the sync's own work_mem and an ANALYZE of its stage, so that the
ratio measures what the service adds, not a plan the floor would never
use.
"""

from __future__ import annotations

import io
import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg2

WORK_MEM = os.environ.get("SYNC_WORK_MEM", "128MB")  # as the service (config.py)
MAX_AMOUNT = Decimal("9999999999.99")  # NUMERIC(12,2)


def parsed(path: Path) -> io.StringIO:
    """The valid payment records of a snapshot file as COPY text (untimed).

    Valid as the service would take them, roughly: a string externalId and
    patientId and a number amount that fits NUMERIC(12,2); an externalId
    that occurs twice is dropped entirely (SPEC §2 rule 6).
    """
    with path.open("rb") as file:
        records = json.load(file, parse_float=Decimal)
    seen: dict[str, int] = {}
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("externalId"), str):
            seen[record["externalId"]] = seen.get(record["externalId"], 0) + 1
    lines = [
        f"{r['externalId']}\t{r['patientId']}\t{r['amount']}\n"
        for r in records
        if _valid(r) and seen[r["externalId"]] == 1
    ]
    return io.StringIO("".join(lines))


def _valid(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    external_id, patient_id, amount = (
        record.get(key) for key in ("externalId", "patientId", "amount")
    )
    return (
        _copy_safe(external_id)
        and _copy_safe(patient_id)
        and isinstance(amount, (int, Decimal))
        and not isinstance(amount, bool)
        and abs(amount) <= MAX_AMOUNT
        and amount == round(amount, 2)
    )


def _copy_safe(text: Any) -> bool:
    """A string COPY's text format takes as it is (no tab, newline or backslash to escape)."""
    return isinstance(text, str) and text.isprintable() and "\\" not in text


_STATEMENTS = (
    # Update live rows whose values differ.
    """UPDATE payments p SET amount = s.amount, patient_id = pt.id, updated = %(now)s
       FROM floor_stage s JOIN patients pt ON pt.external_id = s.patient_external_id
       WHERE p.external_id = s.external_id AND p.deleted IS NULL
         AND (p.amount, p.patient_id) IS DISTINCT FROM (s.amount, pt.id)""",
    # Insert the new ones (a payment of an unknown patient is left out, as rule 7 rejects it).
    """INSERT INTO payments (external_id, amount, patient_id, created, updated)
       SELECT s.external_id, s.amount, pt.id, %(now)s, %(now)s
       FROM floor_stage s JOIN patients pt ON pt.external_id = s.patient_external_id
       WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.external_id = s.external_id)""",
    # Soft-delete the live rows the snapshot does not hold.
    """UPDATE payments p SET deleted = %(now)s, updated = %(now)s
       WHERE p.deleted IS NULL
         AND NOT EXISTS (SELECT 1 FROM floor_stage s WHERE s.external_id = p.external_id)""",
)


def apply(database_url: str, copy_text: io.StringIO) -> float:
    """Apply one parsed payments snapshot; the seconds from the COPY to the COMMIT."""
    connection = psycopg2.connect(database_url)
    try:
        copy_text.seek(0)
        with connection.cursor() as cursor:
            began = time.perf_counter()
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            cursor.execute(
                "CREATE TEMPORARY TABLE floor_stage (external_id varchar(255), "
                "patient_external_id varchar(255), amount numeric(12,2)) "
                "ON COMMIT DROP"
            )
            cursor.copy_expert("COPY floor_stage FROM STDIN", copy_text)
            cursor.execute("ANALYZE floor_stage")
            cursor.execute("SELECT now()")
            now = cursor.fetchone()[0]
            for statement in _STATEMENTS:
                cursor.execute(statement, {"now": now})
            connection.commit()
            return time.perf_counter() - began
    finally:
        connection.close()
