"""What a sync changed (SPEC §5): the records it touched, and for each its op and changed fields.

``sync_changes`` finds a sync's changes; ``describe`` tells what one was.
Shared by the API's changes feed, the console and the event relay, so that a
consumer sees the same op and ``changedFields`` by every route.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import orm

from app.entities import ENTITIES
from app.models import SyncRun


def sync_entity(session: orm.Session, sync_id: int) -> str | None:
    """The entity a recorded sync synced, or None if there is no such sync."""
    return session.scalar(sa.select(SyncRun.entity).where(SyncRun.id == sync_id))


# Bounds that leave a page unlimited in either direction (ids are 32-bit).
_NO_RECORD_BEFORE, _NO_LIMIT = -(2**31), 2**62


class ChangesQuery(NamedTuple):
    """A sync's changes: the statement (built once per entity) and the values it is run with."""

    changes: sa.Subquery
    parameters: dict[str, int]


def sync_changes(
    entity: str, sync_id: int, *, after_record_id: int | None = None, limit: int | None = None
) -> ChangesQuery:
    """Every record sync ``sync_id`` changed: the version it made and the one it replaced.

    The version a sync made is the record's row if no later sync replaced
    it, else a kept version; the one it replaced is the kept version it
    ended. Columns: ``record_id``, ``external_id``, then for each field and
    for ``deleted`` an ``after_`` and a ``before_`` column, and ``existed``
    (whether there was a version before). Run any select over ``changes``
    with ``parameters``.

    The records are those whose version the sync ended (index (ended_by,
    record_id)) and those it created (a primary-key range recorded with the
    sync): two index scans in ``record_id`` order. A page passes its keyset
    (``after_record_id``) and ``limit`` so that each scan stops early; the
    planner would not merge two ordered scans of a UNION ALL by itself. The
    live table is never scanned for ``sync_id``: it has no index, since one
    would make every update non-HOT.
    """
    return ChangesQuery(
        _changes_statement(entity),
        {
            "changes_sync_id": sync_id,
            "changes_after": _NO_RECORD_BEFORE if after_record_id is None else after_record_id,
            "changes_limit": _NO_LIMIT if limit is None else limit,
        },
    )


@functools.cache
def _changes_statement(entity: str) -> sa.Subquery:
    """The changes statement of ``entity``, with its values as bind parameters.

    Built once: constructing it costs more than running a page of it.
    """
    sync_id = sa.bindparam("changes_sync_id", type_=sa.Integer())
    described = ENTITIES[entity]
    target, versions = described.table, described.versions
    fields = (*described.stored_columns, "deleted")
    changed = sa.union_all(
        *(
            _window(branch)
            for branch in (_replaced(versions, fields, sync_id), _created(target, fields, sync_id))
        )
    ).subquery("changed")
    # What the sync made: a kept version if a later sync replaced it, else the row.
    kept, row = versions.alias("kept"), target.alias("row")
    query = (
        sa.select(
            sa.literal(entity).label("entity"),
            changed.c.record_id,
            sa.func.coalesce(kept.c.external_id, row.c.external_id).label("external_id"),
            changed.c.existed,
        )
        .outerjoin(
            kept, sa.and_(kept.c.record_id == changed.c.record_id, kept.c.sync_id == sync_id)
        )
        .outerjoin(row, sa.and_(row.c.id == changed.c.record_id, row.c.sync_id == sync_id))
        .where(sa.or_(kept.c.record_id.is_not(None), row.c.id.is_not(None)))
    )
    for name in fields:
        after = sa.case((kept.c.record_id.is_not(None), kept.c[name]), else_=row.c[name])
        query = query.add_columns(
            after.label(f"after_{name}"), changed.c[name].label(f"before_{name}")
        )
    for field, through in described.joined:
        # A field held as another table's row id shows as that row's externalId, as
        # reads show it (a payment's patient).
        for side in ("after", "before"):
            owner = through.alias(f"{side}_owner")
            query = query.outerjoin(
                owner, owner.c.id == query.selected_columns[f"{side}_{field.stored_column}"]
            ).add_columns(owner.c.external_id.label(f"{side}_{field.column}"))
    return query.subquery("changes")


def _window(records: sa.Select[Any]) -> sa.Select[Any]:
    """One branch of the changed records, from after a keyset position, at most a limit."""
    record_id = records.selected_columns.record_id
    return (
        records.where(record_id > sa.bindparam("changes_after", type_=sa.Integer()))
        .order_by(record_id)
        .limit(sa.bindparam("changes_limit", type_=sa.BigInteger()))
        .subquery()
        .select()
    )


def _replaced(
    versions: sa.Table, fields: tuple[str, ...], sync_id: sa.BindParameter[int]
) -> sa.Select[Any]:
    """The records whose version the sync replaced, with that version."""
    return sa.select(
        versions.c.record_id, sa.true().label("existed"), *(versions.c[name] for name in fields)
    ).where(versions.c.ended_by == sync_id)


def _created(
    target: sa.Table, fields: tuple[str, ...], sync_id: sa.BindParameter[int]
) -> sa.Select[Any]:
    """The records the sync created: ids in the range it recorded, with no version before.

    A row in the range that the sync did not make (a manual insert between
    two of its ids) has no version made by the sync, and sync_changes drops it.
    """
    run = sa.select(SyncRun.created_after_id, SyncRun.created_through_id).where(
        SyncRun.id == sync_id
    )
    after = run.with_only_columns(SyncRun.created_after_id).scalar_subquery()
    through = run.with_only_columns(SyncRun.created_through_id).scalar_subquery()
    return sa.select(
        target.c.id.label("record_id"),
        sa.false().label("existed"),
        # Typed: an untyped NULL would make the union's column text.
        *(sa.cast(sa.null(), target.c[name].type).label(name) for name in fields),
    ).where(target.c.id > after, target.c.id <= through)


# How a change names each entity's synced fields: (JSON key, column of the change row).
CHANGE_KEYS = {name: entity.changes for name, entity in ENTITIES.items()}


@dataclass(frozen=True, slots=True)
class Change:
    """A change row's op, its two sides by JSON key, and the keys that differ."""

    op: str
    before: dict[str, Any]
    after: dict[str, Any]
    changed_fields: list[str]


def describe(row: Any) -> Change:
    """Classify one change row.

    The op is ``created`` when the record did not exist before the sync,
    ``deleted``/``restored`` when its deleted mark was set/cleared, else
    ``updated``. ``changed_fields`` names the synced fields that differ from
    the version the sync replaced, deleted or not: all of them for a created
    record, none for a deleted one.
    """
    keys = CHANGE_KEYS[row.entity]
    after = {key: getattr(row, f"after_{column}") for key, column in keys}
    before = {key: getattr(row, f"before_{column}") for key, column in keys}
    was_deleted = row.existed and row.before_deleted is not None
    op = op_of(row.existed, was_deleted, row.after_deleted is not None)
    changed = [key for key, _ in keys if not row.existed or before[key] != after[key]]
    return Change(op, before, after, changed)


def op_of(existed: bool, was_deleted: bool, is_deleted: bool) -> str:
    """What a new version of a record was: ``created`` when the record did not exist,
    ``deleted``/``restored`` when its deleted mark was set/cleared, else ``updated``."""
    if not existed:
        return "created"
    if is_deleted and not was_deleted:
        return "deleted"
    if was_deleted and not is_deleted:
        return "restored"
    return "updated"
