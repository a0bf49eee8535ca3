"""marshmallow schemas of what the API answers: for the OpenAPI document.

The hot paths build the same shapes without marshmallow (app/reads/serializers.py,
held equal to these by a test). JSON keys are camelCase through ``data_key``.
The schemas of records and versions are made from each entity's description
(app/entities.py): its fields, their keys and kinds, in the answers' order.
"""

from __future__ import annotations

from typing import Any

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
    databases = fields.Dict(
        metadata={
            "description": "Which databases answer: the primary's state and, with replicas "
            "(DATABASE_REPLICA_URLS), each replica's (up, lagging or down) and lagSeconds."
        }
    )


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


SYNC_STATES = ("queued", "running", "applied", "refused", "failed")


class SyncErrorBodySchema(ma.Schema):
    """Why an asynchronous sync was refused or failed: the error a synchronous one answers."""

    code = fields.String()
    message = fields.String()
    details = fields.Dict()


class QueuedSyncSchema(ma.Schema):
    """An asynchronous sync not finished yet (queued or running): no counts so far."""

    sync_id = fields.Integer(data_key="syncId")
    entity = fields.String()
    dry_run = fields.Boolean(data_key="dryRun")
    state = fields.String(
        metadata={"enum": list(SYNC_STATES), "description": "queued or running while unfinished."}
    )
    accepted_at = fields.String(
        data_key="acceptedAt",
        metadata={"description": "When the sync was accepted (the database's clock)."},
    )


class SyncSummarySchema(ma.Schema):
    """One sync in the list: its report without the errors (documentation only).

    A finished sync (``applied``) carries the counts; an unfinished one
    (``queued``, ``running``) only its id, entity, dryRun, state and
    acceptedAt; a ``refused`` or ``failed`` one its ``error`` instead of counts.
    """

    sync_id = fields.Integer(data_key="syncId")
    entity = fields.String()
    dry_run = fields.Boolean(data_key="dryRun")
    state = fields.String(metadata={"enum": list(SYNC_STATES)})
    accepted_at = fields.String(
        data_key="acceptedAt",
        metadata={"description": "Asynchronous syncs until finished, and refused or failed ones."},
    )
    error = fields.Nested(
        SyncErrorBodySchema,
        metadata={"description": "A refused or failed asynchronous sync: why (code, message)."},
    )
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
    data_position = fields.String(
        data_key="dataPosition",
        allow_none=True,
        metadata={
            "description": "A position from which a read sees this sync: send it as "
            "X-Data-Position to read your own writes (SPEC §8). Only applied syncs have one "
            "(not those recorded before positions existed).",
            "example": "42",
        },
    )


class SyncReportSchema(SyncSummarySchema):
    """The report of one sync (documentation only; reports are stored as JSON)."""

    errors = fields.List(fields.Nested(SyncRecordErrorSchema))


def _money(description: str, example: str, **kwargs: Any) -> fields.String:
    """An amount written as an exact decimal string with two places."""
    return fields.String(metadata={"description": description, "example": example}, **kwargs)


def _count() -> fields.Integer:
    """One count of a sync's report; null unless the sync was applied (a dry run included)."""
    return fields.Integer(allow_none=True, metadata={"example": 3})


class PatientTotalsSchema(ma.Schema):
    """The spread of live patients' totals (a patient with no payments counts as 0)."""

    min = _money("The smallest total.", "-3.00")
    max = _money("The largest total.", "1234.50")
    mean = _money("The mean, rounded half to even to the cent.", "101.37")
    p50 = _money("The median, nearest-rank: the total at rank ceil(0.5 n).", "87.00")
    p90 = _money("Nearest-rank 90th percentile: the total at rank ceil(0.9 n).", "240.10")
    p99 = _money("Nearest-rank 99th percentile: the total at rank ceil(0.99 n).", "712.45")


class AnalyticsSummarySchema(ma.Schema):
    """GET /analytics/summary: counts, the amount, and the spread of totals (SPEC §3)."""

    patients = fields.Integer(metadata={"description": "Live patients.", "example": 1200})
    payments = fields.Integer(
        metadata={
            "description": "Live payments (those of deleted patients included).",
            "example": 9800,
        }
    )
    total_amount = _money("What the live payments add up to.", "121644.00", data_key="totalAmount")
    patients_without_payments = fields.Integer(
        data_key="patientsWithoutPayments",
        metadata={"description": "Live patients with no live payment.", "example": 37},
    )
    patient_totals = fields.Nested(PatientTotalsSchema, data_key="patientTotals")


class HistogramBucketSchema(ma.Schema):
    """One bucket: totals from ``from`` up to ``to`` (the last one includes ``to``)."""

    low = fields.String(
        data_key="from",
        metadata={
            "description": "Lower edge: exact, or rounded to 6 places when the width "
            "is not a terminating decimal.",
            "example": "0.00",
        },
    )
    high = fields.String(data_key="to", metadata={"description": "Upper edge.", "example": "0.25"})
    patients = fields.Integer(metadata={"description": "Live patients in it.", "example": 12})


class AnalyticsHistogramSchema(ma.Schema):
    """GET /analytics/histogram: live patients per bucket of totals (SPEC §3)."""

    buckets = fields.List(
        fields.Nested(HistogramBucketSchema),
        metadata={
            "example": [
                {"from": "0.00", "to": "0.25", "patients": 3},
                {"from": "0.25", "to": "0.50", "patients": 0},
                {"from": "0.50", "to": "0.75", "patients": 1},
                {"from": "0.75", "to": "1.00", "patients": 2},
            ]
        },
    )


class AnalyticsSyncSchema(ma.Schema):
    """One recorded sync as GET /analytics/syncs lists it, in acceptance order: trends, alerts."""

    sync_id = fields.Integer(data_key="syncId", metadata={"example": 12})
    entity = fields.String(metadata={"enum": list(ENTITIES)})
    state = fields.String(metadata={"enum": ["queued", "running", "applied", "refused", "failed"]})
    dry_run = fields.Boolean(data_key="dryRun")
    started_at = fields.String(
        data_key="startedAt",
        allow_none=True,
        metadata={
            "description": "Null while the sync is queued or running.",
            "example": "2026-11-21T10:00:00.000000+00:00",
        },
    )
    duration_seconds = fields.Float(
        data_key="durationSeconds",
        allow_none=True,
        metadata={
            "description": "finishedAt - startedAt; null while queued or running.",
            "example": 0.012,
        },
    )
    received = _count()
    created = _count()
    updated = _count()
    restored = _count()
    unchanged = _count()
    rejected = _count()
    deleted = _count()
