"""Temporary staging tables and the bulk load into them (COPY on PostgreSQL).

A stage holds one row per uploaded element whose externalId could be read:
valid records with their fields (``valid`` true) and rejected ones with only
their externalId, so the merge can leave their stored rows alone (rule 5).

Validation writes into a sink while the upload is still streaming in; the
sink is loaded into the stage only once the sync holds its lock. On
PostgreSQL the sink spools COPY text to a temporary file, so memory stays
flat however large the snapshot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import sqlalchemy as sa

from app.sync.records import STAGED_FIELDS, Fields
from app.types import Money

_metadata = sa.MetaData()
_SPOOL_FLUSH_ROWS = 10000
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


# The type of each staged field (STAGED_FIELDS gives their order per entity).
_STAGED_TYPES: dict[str, Any] = {
    "first_name": sa.Text, "last_name": sa.Text, "middle_name": sa.Text,
    "date_of_birth": sa.Date, "patient_external_id": sa.Text, "amount": Money(12, 2),
}


def _staged_columns(entity: str) -> list[sa.Column[Any]]:
    return [sa.Column(name, _STAGED_TYPES[name]) for name in STAGED_FIELDS[entity]]


STAGES: dict[str, sa.Table] = {
    entity: _stage_table(f"sync_stage_{entity}", *_staged_columns(entity))
    for entity in STAGED_FIELDS
}


def _plan_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    """Each staged element joined once with its stored row: what the merge will do to it."""
    return _stage_table(
        name, *columns,
        sa.Column("target_id", sa.Integer),
        sa.Column("target_deleted", sa.Boolean),
        sa.Column("changed", sa.Boolean),
    )


PLANS: dict[str, sa.Table] = {
    "patients": _plan_table("sync_plan_patients", *_staged_columns("patients")),
    # Payments reach the plan with their patient resolved (rule 7) and the
    # stored row's values, which the totals deltas need.
    "payments": _plan_table(
        "sync_plan_payments",
        sa.Column("amount", Money(12, 2)), sa.Column("patient_id", sa.Integer),
        sa.Column("patient_external_id", sa.Text),
        sa.Column("unknown_patient", sa.Boolean),
        sa.Column("old_patient_id", sa.Integer), sa.Column("old_amount", Money(12, 2))),
}


class CopySpool:
    """A sink that writes COPY text rows to a temporary file (PostgreSQL)."""

    def __init__(self, entity: str) -> None:
        self.entity = entity
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._lines: list[str] = []
        self._blanks = "\t\\N" * len(STAGED_FIELDS[entity])
        self._format = _FORMATTERS[entity]

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Stage one element as a line of COPY text."""
        if fields is None:
            line = f"{index}\t{_copy_text(external_id)}\tf{self._blanks}\n"
        else:
            line = f"{index}\t{_copy_text(external_id)}\tt\t{self._format(fields)}\n"
        self._lines.append(line)
        if len(self._lines) >= _SPOOL_FLUSH_ROWS:
            self._flush()

    def load(self, connection: sa.Connection) -> sa.Table:
        """Create the stage and COPY the spooled rows into it."""
        self._flush()
        self._file.seek(0)
        stage = STAGES[self.entity]
        stage.create(connection)
        columns = ", ".join(["idx", "external_id", "valid", *STAGED_FIELDS[self.entity]])
        cursor = connection.connection.cursor()
        try:
            cursor.copy_expert(f"COPY {stage.name} ({columns}) FROM STDIN", self._file,
                               size=_COPY_READ_SIZE)
        finally:
            cursor.close()
            self.close()
        connection.execute(sa.text(f"ANALYZE {stage.name}"))
        return stage

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()

    def _flush(self) -> None:
        if self._lines:
            self._file.write("".join(self._lines).encode())
            self._lines.clear()


class RowBuffer:
    """A sink that keeps rows in memory and INSERTs them (SQLite, the development default)."""

    def __init__(self, entity: str) -> None:
        self.entity = entity
        self._rows: list[dict[str, Any]] = []
        self._columns = ("idx", "external_id", "valid", *STAGED_FIELDS[entity])
        self._blanks = (None,) * len(STAGED_FIELDS[entity])

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Keep one element for the stage."""
        row = (index, external_id, valid, *(self._blanks if fields is None else fields))
        self._rows.append(dict(zip(self._columns, row, strict=True)))

    def load(self, connection: sa.Connection) -> sa.Table:
        """Create the stage, insert the rows, and index the join column."""
        stage = STAGES[self.entity]
        stage.create(connection)
        for start in range(0, len(self._rows), _INSERT_BATCH_ROWS):
            connection.execute(stage.insert(), self._rows[start:start + _INSERT_BATCH_ROWS])
        self._rows.clear()
        # SQLite has no hash joins: the anti-join of the soft delete needs this.
        connection.execute(sa.text(f"CREATE INDEX ix_{stage.name} ON {stage.name} (external_id)"))
        return stage

    def close(self) -> None:
        """Forget the rows."""
        self._rows.clear()


@contextmanager
def stage_sink(dialect_name: str, entity: str) -> Iterator[CopySpool | RowBuffer]:
    """The sink that suits the database, released however the sync ends."""
    sink = CopySpool(entity) if dialect_name == "postgresql" else RowBuffer(entity)
    try:
        yield sink
    finally:
        sink.close()


def drop_stages(connection: sa.Connection) -> None:
    """Drop the temporary tables explicitly (ON COMMIT DROP fails under nested transactions)."""
    for table in (*STAGES.values(), *PLANS.values()):
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_text(value: str) -> str:
    # Printable text without backslashes needs no escaping: the common case,
    # checked in C, is much cheaper than translate().
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)


def _patient_fields(fields: Fields) -> str:
    first, last, middle, born = fields
    return (f"{_copy_text(first)}\t{_copy_text(last)}\t"
            f"{_NULL if middle is None else _copy_text(middle)}\t"
            f"{_NULL if born is None else born.isoformat()}")


def _payment_fields(fields: Fields) -> str:
    patient_external_id, amount = fields
    return f"{_copy_text(patient_external_id)}\t{amount}"


# One formatter per entity, in STAGED_FIELDS order.
_FORMATTERS = {"patients": _patient_fields, "payments": _payment_fields}
