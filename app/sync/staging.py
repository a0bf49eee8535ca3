"""The temporary stage and plan tables of a sync, and the bulk load into the stage.

This module owns their whole life: their shape (from the Entity), their
creation and their drop (``temporary_tables``). A stage holds one row per
uploaded element whose externalId could be read: valid records with their
fields (``valid`` true) and rejected ones with only their externalId, so the
merge can leave their stored rows alone (rule 5).

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

from app.db.dialect import Bind, dialect_of
from app.sync.entity import ColumnSpec, Entity, Fields

_metadata = sa.MetaData()
_SPOOL_FLUSH_ROWS = 10000
_INSERT_BATCH_ROWS = 10000
_COPY_READ_SIZE = 1 << 20
NULL = "\\N"


def _table(name: str, specs: tuple[ColumnSpec, ...]) -> sa.Table:
    """A temporary table: the element's index, externalId and validity, then ``specs``."""
    return sa.Table(
        name,
        _metadata,
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("valid", sa.Boolean, nullable=False),
        *(sa.Column(column, kind) for column, kind in specs),
        prefixes=["TEMPORARY"],
    )


_PLAN_COLUMNS: tuple[ColumnSpec, ...] = (
    ("target_id", sa.Integer),
    ("target_deleted", sa.Boolean),
    ("changed", sa.Boolean),
)
# (stage, plan) of one entity.
SyncTables = tuple[sa.Table, sa.Table]
_TABLES: dict[str, SyncTables] = {}


def sync_tables(entity: Entity) -> SyncTables:
    """The entity's stage (one row per staged element) and plan (each joined with its row)."""
    if entity.name not in _TABLES:
        _TABLES[entity.name] = (
            _table(f"sync_stage_{entity.name}", entity.staged),
            _table(f"sync_plan_{entity.name}", (*entity.plan_columns, *_PLAN_COLUMNS)),
        )
    return _TABLES[entity.name]


@contextmanager
def temporary_tables(connection: sa.Connection, entity: Entity) -> Iterator[SyncTables]:
    """Create the entity's stage and plan for one sync; drop them when it is done.

    Dropped explicitly (ON COMMIT DROP fails under nested transactions, as in
    the tests). On an error there is nothing to drop: the transaction rolls
    back, and its temporary tables with it.
    """
    stage, plan = sync_tables(entity)
    stage.create(connection)
    plan.create(connection)
    yield stage, plan
    for table in (plan, stage):
        connection.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))


class CopySpool:
    """A sink that writes COPY text rows to a temporary file (PostgreSQL)."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        self._lines: list[str] = []
        self._blanks = f"\t{NULL}" * len(entity.staged)
        self._format = entity.copy_line

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Stage one element as a line of COPY text."""
        if fields is None:
            line = f"{index}\t{copy_text(external_id)}\tf{self._blanks}\n"
        else:
            line = f"{index}\t{copy_text(external_id)}\tt\t{self._format(fields)}\n"
        self._lines.append(line)
        if len(self._lines) >= _SPOOL_FLUSH_ROWS:
            self._flush()

    def load(self, connection: sa.Connection, stage: sa.Table) -> None:
        """COPY the spooled rows into the stage, and ready it for the plan's join."""
        self._flush()
        self._file.seek(0)
        columns = ", ".join(["idx", "external_id", "valid", *self.entity.staged_names])
        cursor = connection.connection.cursor()
        try:
            cursor.copy_expert(
                f"COPY {stage.name} ({columns}) FROM STDIN", self._file, size=_COPY_READ_SIZE
            )
        finally:
            cursor.close()
            self.close()
        dialect_of(connection).ready_for_joins(connection, stage, "external_id")

    def close(self) -> None:
        """Delete the spool file."""
        self._file.close()

    def _flush(self) -> None:
        if self._lines:
            self._file.write("".join(self._lines).encode())
            self._lines.clear()


class RowBuffer:
    """A sink that keeps rows in memory and INSERTs them (SQLite, the development default)."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self._rows: list[dict[str, Any]] = []
        self._columns = ("idx", "external_id", "valid", *entity.staged_names)
        self._blanks = (None,) * len(entity.staged)

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Keep one element for the stage."""
        row = (index, external_id, valid, *(self._blanks if fields is None else fields))
        self._rows.append(dict(zip(self._columns, row, strict=True)))

    def load(self, connection: sa.Connection, stage: sa.Table) -> None:
        """Insert the rows into the stage, and ready it for the plan's join."""
        for start in range(0, len(self._rows), _INSERT_BATCH_ROWS):
            connection.execute(stage.insert(), self._rows[start : start + _INSERT_BATCH_ROWS])
        self._rows.clear()
        dialect_of(connection).ready_for_joins(connection, stage, "external_id")

    def close(self) -> None:
        """Forget the rows."""
        self._rows.clear()


@contextmanager
def stage_sink(bind: Bind, entity: Entity) -> Iterator[CopySpool | RowBuffer]:
    """The sink that suits the database, released however the sync ends."""
    kind: type[CopySpool | RowBuffer] = dialect_of(bind).bulk_load(
        by_copy=CopySpool, by_insert=RowBuffer
    )
    sink = kind(entity)
    try:
        yield sink
    finally:
        sink.close()


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """``value`` escaped for COPY text format."""
    # Printable text without backslashes needs no escaping: the common case,
    # checked in C, is much cheaper than translate().
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_ESCAPES)
