"""The temporary stage and plan tables of a sync, and the bulk load into the stage.

This module owns their whole life: their shape (from the Entity), their
creation and their drop (``temporary_tables``). A stage holds one row per
uploaded element whose externalId could be read: valid records with their
fields (``valid`` true) and rejected ones with only their externalId, so the
merge can leave their stored rows alone (rule 5).

Validation writes into a sink while the upload is still streaming in. On
PostgreSQL the sink is a COPY into the stage that runs while validation
goes on, before the sync's lock (the stage is the session's own): the
server parses and stores the rows on its core while this process parses
the upload on the other, and memory stays flat however large the snapshot.
On SQLite the sink keeps the rows and inserts them once the lock is held.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.sync.entity import ColumnSpec, Entity, Fields

_metadata = sa.MetaData()
_COPY_CHUNK_ROWS = 10000
_COPY_CHUNKS_AHEAD = 8  # what validation may run ahead of the COPY: ~8 x 0.5 MB
_INSERT_BATCH_ROWS = 10000
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
    """The entity's stage (one row per staged element) and plan (those with something to do)."""
    if entity.name not in _TABLES:
        _TABLES[entity.name] = (
            _table(f"sync_stage_{entity.name}", entity.staged),
            _table(f"sync_plan_{entity.name}", (*entity.plan_columns, *_PLAN_COLUMNS)),
        )
    return _TABLES[entity.name]


@contextmanager
def temporary_plan(connection: sa.Connection, entity: Entity) -> Iterator[sa.Table]:
    """Create the entity's plan for one sync; drop it when it is done.

    Dropped explicitly (ON COMMIT DROP fails under nested transactions, as in
    the tests). On an error there is nothing to drop: the transaction rolls
    back, and its temporary tables with it.
    """
    plan = sync_tables(entity)[1]
    plan.create(connection)
    yield plan
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {plan.name}"))


def drop_stage(connection: sa.Connection, entity: Entity) -> None:
    """Drop the entity's stage: last, after a dry run's savepoint is rolled back.

    The stage may be older than that savepoint (``CopyStream``), and a drop
    inside it would be undone with it, leaving the table on a pooled connection.
    """
    connection.execute(sa.text(f"DROP TABLE IF EXISTS {sync_tables(entity)[0].name}"))


class _Aborted(Exception):
    """Ends a COPY that validation gave up on (the upload was not a valid snapshot)."""


class _Chunks:
    """What the COPY reads: chunks of COPY text handed over by validation, then EOF."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str | _Aborted | None] = queue.Queue(_COPY_CHUNKS_AHEAD)

    def read(self, size: int = -1) -> str:
        """The next chunk, whatever ``size`` ("" at the end); raises _Aborted to fail the COPY."""
        item = self.queue.get()
        if isinstance(item, _Aborted):
            raise item
        return item or ""


class StageText:
    """Elements as the stage's COPY text, without their index: the one place its format lives."""

    def __init__(self, entity: Entity) -> None:
        self._blanks = f"\t{NULL}" * len(entity.staged)
        self._format = entity.copy_line

    def body(self, external_id: str, fields: Fields | None) -> str:
        """One element's line after its index and tab, its newline included.

        ``fields`` is None for a rejected element, which stages only its externalId.
        """
        if fields is None:
            return f"{copy_text(external_id)}\tf{self._blanks}\n"
        return f"{copy_text(external_id)}\tt\t{self._format(fields)}\n"


class CopyStream:
    """A sink whose rows go into the stage by a COPY while validation goes on (PostgreSQL).

    The stage is created at once, before the sync's lock, and a thread runs
    the COPY, reading the chunks ``add`` hands over: while this thread parses
    the upload, the server stores what it was sent. The thread holds the GIL
    only to take a chunk; psycopg2 sends it without. Nothing else uses the
    connection until ``load`` has waited for the COPY to end.
    """

    def __init__(self, connection: sa.Connection, entity: Entity) -> None:
        self.entity = entity
        self._stage = sync_tables(entity)[0]
        self._stage.create(connection)
        self._lines: list[str] = []
        self.staged = 0  # rows handed to the COPY
        self._body = StageText(entity).body
        self._chunks = _Chunks()
        self._error: BaseException | None = None
        columns = ", ".join(["idx", "external_id", "valid", *entity.staged_names])
        self._thread = threading.Thread(
            target=self._copy,
            args=(
                connection.connection.dbapi_connection,
                f"COPY {self._stage.name} ({columns}) FROM STDIN",
            ),
            name=f"copy-{entity.name}",
            daemon=True,
        )
        self._thread.start()

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Stage one element as a line of COPY text."""
        self._lines.append(f"{index}\t{self._body(external_id, fields)}")
        if len(self._lines) >= _COPY_CHUNK_ROWS:
            self._hand_over_lines()

    def add_text(self, text: str, rows: int) -> None:
        """Stage ``rows`` elements already written as COPY text (``StageText``, index first)."""
        if self._lines:
            self._hand_over_lines()
        self.staged += rows
        self._hand_over(text)

    def finish(self, connection: sa.Connection) -> None:
        """End the COPY once validation is done, and ready the stage for the plan's join.

        Before the sync's lock: the connection is free again for its statements.
        """
        if self._lines:
            self._hand_over_lines()
        self._hand_over(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        dialect_of(connection).ready_for_joins(connection, self._stage, "external_id")

    def load(self, connection: sa.Connection) -> sa.Table:
        """The stage, filled and ready (``finish``)."""
        return self._stage

    def close(self) -> None:
        """End a COPY still running (validation failed): the transaction is then rolled back."""
        if self._thread.is_alive():
            self._hand_over(_Aborted("the upload was refused"))
            self._thread.join()

    def _hand_over_lines(self) -> None:
        """Queue the lines added since the last chunk as one chunk, and count them."""
        self.staged += len(self._lines)
        self._hand_over("".join(self._lines))
        self._lines.clear()

    def _hand_over(self, item: str | _Aborted | None) -> None:
        """Queue ``item`` for the COPY; raises the COPY's error if it has failed."""
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._chunks.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive() and self._error is None:
                    raise RuntimeError("the stage's COPY ended early") from None

    def _copy(self, dbapi_connection: Any, statement: str) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.copy_expert(statement, self._chunks)
        except BaseException as error:  # handed to the validating thread
            self._error = error
        finally:
            cursor.close()


class RowBuffer:
    """A sink that keeps rows in memory and INSERTs them (SQLite, the development default)."""

    def __init__(self, connection: sa.Connection, entity: Entity) -> None:
        self.entity = entity
        self._rows: list[dict[str, Any]] = []
        self.staged = 0  # rows the stage receives
        self._columns = ("idx", "external_id", "valid", *entity.staged_names)
        self._blanks = (None,) * len(entity.staged)

    def finish(self, connection: sa.Connection) -> None:
        """Nothing yet: the rows go into the stage once the sync holds its lock (``load``)."""

    def add(self, index: int, external_id: str, valid: bool, fields: Fields | None) -> None:
        """Keep one element for the stage."""
        row = (index, external_id, valid, *(self._blanks if fields is None else fields))
        self._rows.append(dict(zip(self._columns, row, strict=True)))
        self.staged += 1

    def load(self, connection: sa.Connection) -> sa.Table:
        """Create the stage, insert the rows, ready it for the plan's join, and return it.

        Created now, under the sync's lock: SQLite's temporary tables need no
        more, and the sync takes the write lock before it writes anything.
        """
        stage = sync_tables(self.entity)[0]
        stage.create(connection)
        for start in range(0, len(self._rows), _INSERT_BATCH_ROWS):
            connection.execute(stage.insert(), self._rows[start : start + _INSERT_BATCH_ROWS])
        self._rows.clear()
        dialect_of(connection).ready_for_joins(connection, stage, "external_id")
        return stage

    def close(self) -> None:
        """Forget the rows."""
        self._rows.clear()


@contextmanager
def stage_sink(connection: sa.Connection, entity: Entity) -> Iterator[CopyStream | RowBuffer]:
    """The sink that suits the database, released however the sync ends."""
    kind: type[CopyStream | RowBuffer] = dialect_of(connection).bulk_load(
        by_copy=CopyStream, by_insert=RowBuffer
    )
    sink = kind(connection, entity)
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
