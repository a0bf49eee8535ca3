"""Temporary staging tables and the bulk load into them (COPY on PostgreSQL).

A stage holds one row per uploaded element whose externalId could be read:
valid records with their fields (``valid`` true) and rejected ones with only
their externalId, so the merge can leave their stored rows alone (rule 5).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa

from app.sync.records import STAGED_FIELDS
from app.types import Money

_metadata = sa.MetaData()
_COPY_BATCH_ROWS = 5000
_INSERT_BATCH_ROWS = 10000
_COPY_READ_SIZE = 1 << 20


def _stage_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(
        name, _metadata,
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False),
        *columns,
        prefixes=["TEMPORARY"],
    )


STAGES: dict[str, sa.Table] = {
    "patients": _stage_table(
        "sync_stage_patients",
        sa.Column("first_name", sa.Text), sa.Column("last_name", sa.Text),
        sa.Column("middle_name", sa.Text), sa.Column("date_of_birth", sa.Date)),
    "payments": _stage_table(
        "sync_stage_payments",
        sa.Column("patient_external_id", sa.Text), sa.Column("amount", Money(12, 2)),
        # Resolved from patient_external_id after loading (rule 7).
        sa.Column("patient_id", sa.Integer)),
}

# Patients whose payments total must be recomputed by a payments sync.
TOUCHED_PATIENTS = sa.Table("sync_touched_patients", _metadata,
                            sa.Column("patient_id", sa.Integer), prefixes=["TEMPORARY"])


def create_stage(connection: sa.Connection, entity: str, rows: list[tuple[Any, ...]],
                 protected: list[tuple[int, str]]) -> sa.Table:
    """Create the entity's stage, fill it, and make it cheap to join against."""
    stage = STAGES[entity]
    stage.create(connection)
    columns = ["idx", "external_id", "valid", *STAGED_FIELDS[entity]]
    blanks = (None,) * len(STAGED_FIELDS[entity])
    staged = [(index, external_id, True, *fields) for index, external_id, *fields in rows]
    staged += [(index, external_id, False, *blanks) for index, external_id in protected]
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, stage.name, columns, staged)
        connection.execute(sa.text(f"ANALYZE {stage.name}"))
    else:
        _insert_rows(connection, stage, columns, staged)
        # SQLite has no hash joins: the anti-join of the soft delete needs this.
        connection.execute(sa.text(f"CREATE INDEX ix_{stage.name} ON {stage.name} (external_id)"))
    return stage


def drop_stages(connection: sa.Connection) -> None:
    """Drop the temporary tables explicitly (ON COMMIT DROP fails under nested transactions)."""
    for table in (*STAGES.values(), TOUCHED_PATIENTS):
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))


def _insert_rows(connection: sa.Connection, stage: sa.Table, columns: list[str],
                 rows: list[tuple[Any, ...]]) -> None:
    for start in range(0, len(rows), _INSERT_BATCH_ROWS):
        batch = rows[start:start + _INSERT_BATCH_ROWS]
        connection.execute(stage.insert(), [dict(zip(columns, row, strict=True)) for row in batch])


def _copy_rows(connection: sa.Connection, table: str, columns: list[str],
               rows: Iterable[tuple[Any, ...]]) -> None:
    cursor = connection.connection.cursor()
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN",
                           _TextStream(_copy_lines(rows)), size=_COPY_READ_SIZE)
    finally:
        cursor.close()


def _copy_lines(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    batch: list[str] = []
    for row in rows:
        batch.append("\t".join(map(_copy_value, row)))
        if len(batch) >= _COPY_BATCH_ROWS:
            yield "\n".join(batch) + "\n"
            batch.clear()
    if batch:
        yield "\n".join(batch) + "\n"


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _TextStream(io.TextIOBase):
    """A read()-able view of an iterator of strings, so COPY streams without one big buffer."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._buffer = ""

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            rest, self._buffer = self._buffer + "".join(self._chunks), ""
            return rest
        while len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out
