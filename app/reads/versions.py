"""Every version of one record (SPEC §5): its row, the current version, and the kept ones."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.entities import PATIENTS, PAYMENTS, Entity


def history(entity: Entity, record_id: int) -> sa.Subquery:
    """Every version of one record: its row (the current one) and the kept ones.

    Columns: ``external_id``, the synced fields as reads show them (a field
    held as another table's row id, as that row's externalId in the
    version), ``deleted``, ``valid_from``, ``valid_to`` and ``sync_id``.
    """
    row, kept = entity.table, entity.versions
    # One alias of each other table a field is shown through, for both parts.
    owners = {field.key: through.alias() for field, through in entity.joined}
    now = _version(
        entity, owners, row, row.c.updated.label("valid_from"), sa.null().label("valid_to")
    ).where(row.c.id == record_id)
    past = _version(entity, owners, kept, kept.c.valid_from, kept.c.valid_to).where(
        kept.c.record_id == record_id
    )
    # The kept versions first: a union takes its column types from its first part.
    return sa.union_all(past, now).subquery("versions")


def _version(
    entity: Entity,
    owners: dict[str, sa.Alias],
    table: sa.Table,
    valid_from: Any,
    valid_to: Any,
) -> sa.Select[Any]:
    """One part of a history: ``table``'s versions with their fields as reads show them
    (those shown through another table, through its alias in ``owners``)."""
    columns: list[Any] = [table.c.external_id]
    joins: list[tuple[sa.Alias, sa.ColumnElement[bool]]] = []
    for field in entity.fields:
        owner = owners.get(field.key)
        if owner is None:
            columns.append(table.c[field.column])
        else:
            columns.append(owner.c.external_id.label(field.column))
            joins.append((owner, owner.c.id == table.c[field.stored_column]))
    query = sa.select(*columns, table.c.deleted, valid_from, valid_to, table.c.sync_id)
    for owner, on in joins:
        query = query.join(owner, on)
    return query


def patient_history(record_id: int) -> sa.Subquery:
    """Every version of one patient (SPEC §5): its row (the current one) and the kept ones."""
    return history(PATIENTS, record_id)


def payment_history(record_id: int) -> sa.Subquery:
    """Every version of one payment, each with its patient's externalId in that version."""
    return history(PAYMENTS, record_id)
