"""marshmallow schemas of what the API answers: for the OpenAPI document.

The hot paths build the same shapes without marshmallow (app/reads/serializers.py,
held equal to these by a test). JSON keys are camelCase through ``data_key``.
The schemas of records and versions are made from each entity's description
(app/entities.py): its fields, their keys and kinds, in the answers' order.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields

from app.entities import ENTITIES, OPS, PATIENTS, PAYMENTS, Entity, Field


class HealthSchema(ma.Schema):
    """GET /healthz."""

    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(ma.Schema):
    """GET /readyz when ready: the schema revision the database is at."""

    status = fields.String(required=True, metadata={"example": "ready"})
    revision = fields.List(fields.String(), required=True)


def _field(field: Field) -> fields.Field:
    """The marshmallow field that dumps ``field`` under its JSON key."""
    data_key = None if field.key == field.column else field.key
    if field.kind == "date":
        return fields.Date(allow_none=field.nullable, data_key=data_key)
    if field.kind == "money":
        return fields.Decimal(places=2, data_key=data_key)
    if field.kind == "integer":
        return fields.Integer(data_key=data_key)
    return fields.String(allow_none=field.nullable, data_key=data_key)


def _schema(
    name: str, doc: str, declared: dict[str, fields.Field], base: type[ma.Schema] = ma.Schema
) -> type[ma.Schema]:
    """A schema class named ``name`` whose fields are ``base``'s, then ``declared`` in order."""
    return type(base)(name, (base,), {"__doc__": doc, "__module__": __name__, **declared})


def _synced(entity: Entity, *, extras: bool = False) -> dict[str, fields.Field]:
    """externalId and the entity's synced fields (and its read-only extras), in order."""
    shown = (*entity.fields, *entity.extras) if extras else entity.fields
    return {
        "external_id": fields.String(data_key="externalId"),
        **{field.column: _field(field) for field in shown},
    }


def _record_schema(name: str, doc: str, entity: Entity) -> type[ma.Schema]:
    """A record's answer (SPEC §3): id, externalId, synced fields, extras, created, updated."""
    return _schema(
        name,
        doc,
        {
            "id": fields.Integer(),
            **_synced(entity, extras=True),
            "created": fields.AwareDateTime(),
            "updated": fields.AwareDateTime(),
        },
    )


PatientSchema = _record_schema(
    "PatientSchema", "A live patient with the totals of its live payments.", PATIENTS
)
PaymentSchema = _record_schema(
    "PaymentSchema", "A live payment; patientId is the patient's externalId.", PAYMENTS
)


class VersionSchema(ma.Schema):
    """When a version of a record held, and which sync made it (SPEC §5)."""

    deleted = fields.AwareDateTime(allow_none=True)
    valid_from = fields.AwareDateTime(data_key="validFrom")
    valid_to = fields.AwareDateTime(
        allow_none=True,
        data_key="validTo",
        metadata={"description": "Null for the current version."},
    )
    sync_id = fields.Integer(allow_none=True, data_key="syncId")


PatientVersionSchema = _schema(
    "PatientVersionSchema",
    "One version of a patient: its synced fields as they stood.",
    _synced(PATIENTS),
    VersionSchema,
)
PaymentVersionSchema = _schema(
    "PaymentVersionSchema",
    "One version of a payment; patientId is its patient's externalId in that version.",
    _synced(PAYMENTS),
    VersionSchema,
)


class SyncChangeSchema(ma.Schema):
    """One record a sync changed (SPEC §5); before/after hold its synced fields."""

    entity = fields.String(metadata={"enum": list(ENTITIES)})
    external_id = fields.String(data_key="externalId")
    op = fields.String(metadata={"enum": list(OPS)})
    before = fields.Dict(
        allow_none=True,
        metadata={
            "description": "The synced fields before the sync; null if the record did not exist "
            "(created, or restored from deleted)."
        },
    )
    after = fields.Dict(
        allow_none=True,
        metadata={"description": "The synced fields after the sync; null if it was deleted."},
    )
    changed_fields = fields.List(fields.String(), data_key="changedFields")


class SyncRecordErrorSchema(ma.Schema):
    """Why one element of a snapshot was rejected."""

    index = fields.Integer()
    external_id = fields.String(allow_none=True, data_key="externalId")
    messages = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


class SyncSummarySchema(ma.Schema):
    """One sync in the list: its report without the errors (documentation only)."""

    sync_id = fields.Integer(data_key="syncId")
    entity = fields.String()
    dry_run = fields.Boolean(data_key="dryRun")
    received = fields.Integer()
    created = fields.Integer()
    updated = fields.Integer()
    restored = fields.Integer()
    unchanged = fields.Integer()
    rejected = fields.Integer()
    deleted = fields.Integer()
    errors_truncated = fields.Boolean(data_key="errorsTruncated")
    started_at = fields.String(data_key="startedAt")
    finished_at = fields.String(data_key="finishedAt")


class SyncReportSchema(SyncSummarySchema):
    """The report of one sync (documentation only; reports are stored as JSON)."""

    errors = fields.List(fields.Nested(SyncRecordErrorSchema))
