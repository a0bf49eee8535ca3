"""One synced entity described once: everything the engine needs to know of it (SPEC §2).

The engine, the validation, the stage and the merge are generic; each of
them reads what differs between patients and payments from an ``Entity``:
its table, its record schema and fast path, the fields staged from a
record, the fields a valid record writes, how its plan is drawn, and the
steps only it has (payments: the unknown-patient rule and the totals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import marshmallow as ma
import sqlalchemy as sa

from app.sync.report import RecordError

Fields = tuple[Any, ...]
# (column name, SQLAlchemy type) of a column of a stage or plan table.
ColumnSpec = tuple[str, Any]
Rejections = tuple[int, list[RecordError]]
# The longest element an Entity.plain_block reads: within the smallest record
# limit SYNC_MAX_RECORD_BYTES allows, so the reader never skips one as oversized.
PLAIN_ELEMENT_CHARS = 1024


@dataclass(frozen=True)
class PlanSource:
    """Where a plan's rows come from: the stage joined with the stored rows, and more.

    ``values`` gives the entity's own plan columns (``Entity.plan_columns``);
    ``valid`` may be stricter than the stage's own flag (a payment whose
    patient is unknown is not valid).
    """

    source: sa.FromClause
    valid: sa.ColumnElement[bool]
    values: dict[str, sa.ColumnElement[Any]]


@dataclass(frozen=True)
class Entity:
    """A synced entity: its table and the rules that differ from the other's."""

    name: str
    target: sa.Table
    # Where the versions a sync replaces are kept (SPEC §5): the synced fields
    # (``merged``) and ``deleted`` of each, with when and by which sync.
    versions: sa.Table
    schema: ma.Schema
    # (external_id, *staged fields) for a certainly valid record, else None (see records.py).
    fast_path: Callable[[Any], Fields | None]
    # The fields a valid record stages, in the order validation produces them.
    staged: tuple[ColumnSpec, ...]
    # The staged fields of one record as COPY text (tab-separated, \N for NULL).
    copy_line: Callable[[Fields], str]
    # The target columns a valid record writes.
    merged: tuple[str, ...]
    # The plan's columns beyond those every plan has (see staging.plan_table).
    plan_columns: tuple[ColumnSpec, ...]
    # The plan's rows, from the stage and the target (see merge.build_plan).
    plan_source: Callable[[sa.Table, sa.Table], PlanSource]
    # (elements, their stage lines after the index) of a block of an upload whose every
    # element has the entity's plainest valid form, read without decoding; else None
    # (app/sync/parallel_parse.py). Its elements are at most PLAIN_ELEMENT_CHARS long.
    plain_block: Callable[[str], tuple[int, str] | None] | None = None
    # Records the plan shows to be invalid, beyond duplicates: (count, first errors).
    reject_in_plan: Callable[[sa.Connection, sa.Table, int], Rejections] | None = None
    # What else the merge changes once the rules are applied (with the sync time, and
    # whether the sync loaded its table in bulk: see merge.new_rows_in_bulk).
    after_merge: Callable[[sa.Connection, sa.Table, datetime, bool], None] | None = None

    @property
    def staged_names(self) -> tuple[str, ...]:
        """The names of the staged fields, in order."""
        return tuple(name for name, _ in self.staged)
