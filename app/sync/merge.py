"""Set-based statements that apply a staged snapshot, one per merge rule (SPEC §2).

The stage is first joined once with the stored rows into a *plan*: per
element that has something to do, its stored row (if any), whether that
row is soft-deleted, and whether any field differs. Every rule that writes
is then one statement over the plan, joined to the target by primary key;
the soft delete, which needs every element, reads the stage. Functions
return the number of rows they wrote and never commit: the engine owns the
transaction.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.db.dialect import dialect_of
from app.db.types import UTCDateTime
from app.sync.entity import Entity
from app.sync.report import RecordError

# Refresh planner statistics inside the sync when it rewrote this share of a
# table, so the next statements and the first readers get good plans.
ANALYZE_SHARE = 0.1


@dataclass(frozen=True)
class SyncStamp:
    """What every row a sync writes carries: the sync's id and its one timestamp (SPEC §1)."""

    sync_id: int
    at: datetime


def tune_transaction(connection: sa.Connection, work_mem: str) -> None:
    """Give the sync's transaction the memory its set-based statements need (PostgreSQL).

    Hash joins and aggregates over a million staged rows spill to disk with
    the default 4MB, and index builds (``new_rows_in_bulk``) sort in 64MB;
    this applies to the sync's own transaction only.
    """
    dialect_of(connection).transaction_work_mem(connection, work_mem)


def count_live(connection: sa.Connection, target: sa.Table) -> int:
    """Live rows of the target table."""
    query = sa.select(sa.func.count()).select_from(target).where(target.c.deleted.is_(None))
    return connection.scalar(query) or 0


def last_id(connection: sa.Connection, target: sa.Table) -> int:
    """The highest id of the target table (0 if empty): one step down its primary key."""
    return connection.scalar(sa.select(sa.func.max(target.c.id))) or 0


def analyze(connection: sa.Connection, table: sa.Table) -> None:
    """Refresh the planner's statistics for ``table`` (PostgreSQL only)."""
    dialect_of(connection).refresh_statistics(connection, table)


def reject_duplicates(
    connection: sa.Connection, stage: sa.Table, max_errors: int
) -> tuple[int, list[RecordError]]:
    """Rule 6: an externalId that occurs more than once rejects every occurrence.

    Counts every staged element, the already rejected ones included. Returns
    how many valid rows this rejected and the first ``max_errors`` occurrences
    in upload order (already rejected ones too, so their messages combine).
    """
    occurrences = (
        sa.select(stage.c.external_id, sa.func.count().label("n"))
        .group_by(stage.c.external_id)
        .having(sa.func.count() > 1)
    )
    if connection.execute(occurrences.limit(1)).first() is None:
        return 0, []
    duplicated = occurrences.subquery()
    first = connection.execute(
        sa.select(stage.c.idx, stage.c.external_id, duplicated.c.n)
        .join(duplicated, duplicated.c.external_id == stage.c.external_id)
        .order_by(stage.c.idx)
        .limit(max_errors)
    ).all()
    errors = [
        RecordError(
            index,
            external_id,
            {
                "externalId": [
                    f"Duplicate externalId '{external_id}': it occurs {n} times in this upload."
                ]
            },
        )
        for index, external_id, n in first
    ]
    rejected = connection.execute(
        sa.update(stage)
        .where(stage.c.valid, stage.c.external_id.in_(sa.select(duplicated.c.external_id)))
        .values(valid=False)
    ).rowcount
    return rejected, errors


def loads_an_empty_table(
    connection: sa.Connection, target: sa.Table, staged: int, min_rows: int
) -> bool:
    """Whether ``staged`` rows, at least ``min_rows`` (0: never), go into a table with none
    (an initial load): then rule 6 can be checked after the fact (app/sync/engine.py)."""
    if not min_rows or staged < min_rows:
        return False
    return connection.scalar(sa.select(sa.literal(1)).select_from(target).limit(1)) is None


def rejected_share_an_id(connection: sa.Connection, stage: sa.Table, plan: sa.Table) -> bool:
    """Whether an element the plan rejects shares its externalId with another element.

    What rule 6 needs beyond the target's unique index when every valid
    element of the upload was inserted: the rejected ones were not.
    """
    other = stage.alias("other")
    shared = sa.exists().where(other.c.external_id == plan.c.external_id, other.c.idx != plan.c.idx)
    return bool(connection.scalar(sa.select(sa.exists().where(sa.not_(plan.c.valid), shared))))


def build_plan(connection: sa.Connection, entity: Entity, stage: sa.Table, plan: sa.Table) -> int:
    """Fill ``plan`` with the staged elements that have something to do; return how many.

    Each is joined once with its stored row. The entity says what else joins
    in and which of its elements are valid (``Entity.plan_source``);
    ``changed`` is whether any written field differs. A valid element that
    matches a live row and changes nothing (most of a daily snapshot, all of
    a resend) is left out: no rule writes it, so the plan is not written
    and read again for it; ``count_plan`` counts it from the stage's size.
    """
    target = entity.target
    drawn = entity.plan_source(stage, target)
    values = dict(drawn.values)
    differs = sa.or_(*(target.c[name].is_distinct_from(values[name]) for name in entity.merged))
    values |= {
        "idx": stage.c.idx,
        "external_id": stage.c.external_id,
        "valid": drawn.valid,
        "target_id": target.c.id,
        "target_deleted": target.c.deleted.is_not(None),
        "changed": sa.and_(target.c.id.is_not(None), differs),
    }
    something_to_do = sa.or_(
        sa.not_(values["valid"]), values["target_id"].is_(None), values["target_deleted"], differs
    )
    rows = (
        sa.select(*(values[name].label(name) for name in values))
        .select_from(drawn.source)
        .where(something_to_do)
    )
    planned = connection.execute(sa.insert(plan).from_select(list(values), rows)).rowcount
    # Statistics for hash joins, or (SQLite) an index for the joins by target row.
    dialect_of(connection).ready_for_joins(connection, plan, "target_id")
    return planned


def _new(plan: sa.Table) -> sa.ColumnElement[bool]:
    """The plan's rows rule 1 creates: valid, and matching no stored row."""
    return sa.and_(plan.c.valid, plan.c.target_id.is_(None))


@dataclass(frozen=True)
class PlanCounts:
    """What the rules will find in a plan, counted in one pass over it (``count_plan``)."""

    present: int  # live rows the upload holds, valid or not
    matched: int  # elements that match a stored row
    new: int  # valid elements that match none: rule 1 creates them
    new_indexes: tuple[int, int] | None  # the first and last upload index of those


def count_plan(connection: sa.Connection, plan: sa.Table, staged: int, planned: int) -> PlanCounts:
    """Count, in one pass, what every rule needs to know of the plan.

    Live minus ``present`` is what rule 3 deletes; when ``matched`` is 0 (an
    initial load) no rule but the insert has anything to do. ``staged``: the
    stage's rows (its sink counted them); ``planned``: the plan's
    (``build_plan``). Each staged element the plan left out is valid and
    matches a live row of its own: no other element has its externalId (a
    duplicate is invalid, so planned), so each adds one to both counts, and
    what the plan holds adds the rest.
    """
    new = _new(plan)
    query = sa.select(
        sa.func.count(sa.distinct(plan.c.target_id)).filter(sa.not_(plan.c.target_deleted)),
        sa.func.count(plan.c.target_id),
        sa.func.count().filter(new),
        sa.func.min(plan.c.idx).filter(new),
        sa.func.max(plan.c.idx).filter(new),
    )
    present, matched, created, first, last = connection.execute(query).one()
    left_out = staged - planned
    return PlanCounts(
        present=left_out + (present or 0),
        matched=left_out + (matched or 0),
        new=created or 0,
        new_indexes=None if first is None else (first, last),
    )


def keep_superseded_versions(
    connection: sa.Connection, entity: Entity, plan: sa.Table, stamp: SyncStamp
) -> int:
    """SPEC §5: copy every row an update or a restore will replace into the entity's versions.

    Run before those rules write: the rows they are about to change, as they
    stand, each ending now. Created and unchanged rows replace nothing, so an
    initial load or a resend copies nothing; the statement runs only if the
    plan has rows to copy. Rows the soft delete replaces are kept by
    ``soft_delete_absent``.
    """
    rewrites = sa.and_(plan.c.valid, sa.or_(plan.c.changed, plan.c.target_deleted))
    if not connection.scalar(sa.select(sa.exists().where(rewrites))):
        return 0
    target = entity.target
    rows = (
        _as_versions(entity, stamp, target, target.c.updated, target.c.sync_id)
        .join_from(target, plan, plan.c.target_id == target.c.id)
        .where(rewrites)
    )
    return _insert_versions(connection, entity, rows)


def _as_versions(
    entity: Entity,
    stamp: SyncStamp,
    rows: sa.FromClause,
    valid_from: sa.ColumnElement[datetime],
    made_by: sa.ColumnElement[int],
) -> sa.Select[tuple]:
    """Rows of the target (or of a RETURNING) as the versions they become, ending now."""
    return sa.select(
        rows.c.id.label("record_id"),
        rows.c.external_id,
        *(rows.c[name] for name in entity.merged),
        rows.c.deleted,
        valid_from.label("valid_from"),
        sa.literal(stamp.at, UTCDateTime()).label("valid_to"),
        made_by.label("sync_id"),
        sa.literal(stamp.sync_id).label("ended_by"),
    )


def _insert_versions(connection: sa.Connection, entity: Entity, rows: sa.Select[tuple]) -> int:
    return connection.execute(
        sa.insert(entity.versions).from_select(
            [column.name for column in rows.selected_columns], rows
        )
    ).rowcount


def _absent_and_live(target: sa.Table, stage: sa.Table) -> sa.ColumnElement[bool]:
    """Live rows whose externalId the upload does not hold (rejected ones count as held)."""
    return sa.and_(
        target.c.deleted.is_(None),
        ~sa.exists().where(stage.c.external_id == target.c.external_id),
    )


def soft_delete_absent(
    connection: sa.Connection, entity: Entity, stage: sa.Table, stamp: SyncStamp
) -> int:
    """Rule 3: a live row whose externalId is absent from the upload is soft-deleted.

    Rejected records are in the stage too (valid = false), so their rows count
    as present and stay as they are (rule 5). Each deleted row's live version
    is kept (SPEC §5). Where the database can (PostgreSQL), one statement
    does both, so the anti-join over the whole table runs once; else two.
    """
    return dialect_of(connection).soft_delete(
        in_one_statement=lambda: _delete_keeping_versions(connection, entity, stage, stamp),
        in_two=lambda: _keep_versions_then_delete(connection, entity, stage, stamp),
    )


def _stamped(stamp: SyncStamp) -> dict[str, object]:
    """What the soft delete writes into each row it deletes."""
    return {"deleted": stamp.at, "updated": stamp.at, "sync_id": stamp.sync_id}


def _keep_versions_then_delete(
    connection: sa.Connection, entity: Entity, stage: sa.Table, stamp: SyncStamp
) -> int:
    """The soft delete as two statements: copy the absent rows' versions, then delete them."""
    target = entity.target
    kept = _as_versions(entity, stamp, target, target.c.updated, target.c.sync_id).where(
        _absent_and_live(target, stage)
    )
    _insert_versions(connection, entity, kept)
    return connection.execute(
        sa.update(target).where(_absent_and_live(target, stage)).values(_stamped(stamp))
    ).rowcount


def _delete_keeping_versions(
    connection: sa.Connection, entity: Entity, stage: sa.Table, stamp: SyncStamp
) -> int:
    """The soft delete as one statement: the UPDATE returns the rows it deleted, with the
    ``updated`` and ``sync_id`` they had, into the versions' INSERT."""
    target = entity.target
    before = (
        sa.select(target.c.id, target.c.updated, target.c.sync_id)
        .where(_absent_and_live(target, stage))
        .subquery("before")
    )
    gone = (
        sa.update(target)
        .where(target.c.id == before.c.id)
        .values(_stamped(stamp))
        .returning(
            target.c.id,
            target.c.external_id,
            *(target.c[name] for name in entity.merged),
            sa.cast(sa.null(), target.c.deleted.type).label("deleted"),
            before.c.updated.label("valid_from"),
            before.c.sync_id.label("made_by"),
        )
        .cte("gone")
    )
    return _insert_versions(
        connection, entity, _as_versions(entity, stamp, gone, gone.c.valid_from, gone.c.made_by)
    )


def update_changed(
    connection: sa.Connection,
    target: sa.Table,
    plan: sa.Table,
    fields: tuple[str, ...],
    stamp: SyncStamp,
) -> int:
    """Rule 2: a valid record matching a live row is written only if some field differs."""
    statement = (
        sa.update(target)
        .where(
            target.c.id == plan.c.target_id,
            plan.c.valid,
            plan.c.changed,
            sa.not_(plan.c.target_deleted),
        )
        .values(
            {name: plan.c[name] for name in fields}
            | {"updated": stamp.at, "sync_id": stamp.sync_id}
        )
    )
    return connection.execute(statement).rowcount


def restore_deleted(
    connection: sa.Connection,
    target: sa.Table,
    plan: sa.Table,
    fields: tuple[str, ...],
    stamp: SyncStamp,
) -> int:
    """Rule 4: a valid record matching a soft-deleted row restores it; id and created are kept."""
    statement = (
        sa.update(target)
        .where(target.c.id == plan.c.target_id, plan.c.valid, plan.c.target_deleted)
        .values(
            {name: plan.c[name] for name in fields}
            | {"deleted": None, "updated": stamp.at, "sync_id": stamp.sync_id}
        )
    )
    return connection.execute(statement).rowcount


def new_rows_in_bulk(
    connection: sa.Connection, target: sa.Table, creating: int, min_rows: int
) -> AbstractContextManager[bool]:
    """Where rule 1's INSERT runs: with the target's indexes and keys deferred when it
    creates ``creating`` rows, at least ``min_rows`` (0: never) and more than the table holds.

    An initial load, where building each index once by a sort is several times
    cheaper than entering a million rows one by one. The readers of the table
    wait for the sync instead (app/db/deferred_indexes.py), so a daily re-sync,
    which creates a few per cent, never does this.
    """
    if not min_rows:
        return nullcontext(False)
    if creating < min_rows:
        return nullcontext(False)
    # Counted no further than ``creating``: a large table is not scanned to learn it is large.
    held = sa.select(sa.literal(1)).select_from(target).limit(creating).subquery()
    if (connection.scalar(sa.select(sa.func.count()).select_from(held)) or 0) >= creating:
        return nullcontext(False)
    return dialect_of(connection).indexes_deferred(connection, target)


def insert_new(
    connection: sa.Connection,
    target: sa.Table,
    plan: sa.Table,
    fields: tuple[str, ...],
    stamp: SyncStamp,
    numbered: tuple[int, int] | None = None,
) -> int:
    """Rule 1: a valid record with an unknown externalId is inserted, created = updated = now.

    Ids follow the upload's order. ``numbered``, the first and last upload
    index of the rows (a load in bulk, ``new_rows_in_bulk``): the ids are
    reserved as one range and each row takes the one its index gives, so a
    million rows are written without sorting them first; the range spans the
    upload's indexes, whose gaps (rejected elements) are few there.
    """
    at = sa.literal(stamp.at, UTCDateTime())
    columns = ["external_id", *fields, "created", "updated", "sync_id"]
    values = [
        plan.c.external_id,
        *(plan.c[name] for name in fields),
        at,
        at,
        sa.literal(stamp.sync_id),
    ]
    first_id = None
    if numbered is not None:
        first, last = numbered
        first_id = dialect_of(connection).reserve_ids(connection, target, last - first + 1)
    if first_id is None:
        rows = sa.select(*values).where(_new(plan)).order_by(plan.c.idx)
    else:
        rows = sa.select(first_id - first + plan.c.idx, *values).where(_new(plan))
        columns.insert(0, "id")
    return connection.execute(sa.insert(target).from_select(columns, rows)).rowcount
