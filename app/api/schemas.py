"""marshmallow schemas of what the API answers: for the OpenAPI document.

The hot paths build the same shapes without marshmallow (app/reads/serializers.py,
held equal to these by a test). JSON keys are camelCase through ``data_key``.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields


class HealthSchema(ma.Schema):
    """GET /healthz."""

    status = fields.String(required=True, metadata={"example": "ok"})


class ReadinessSchema(ma.Schema):
    """GET /readyz when ready: the schema revision the database is at."""

    status = fields.String(required=True, metadata={"example": "ready"})
    revision = fields.List(fields.String(), required=True)
    databases = fields.Dict(
        metadata={
            "description": "With replicas (DATABASE_REPLICA_URLS): which databases answer: "
            "the primary's state and each replica's (up, lagging or down) and lagSeconds."
        }
    )


class PatientSchema(ma.Schema):
    """A live patient with the totals of its live payments."""

    id = fields.Integer()
    external_id = fields.String(data_key="externalId")
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")
    middle_name = fields.String(allow_none=True, data_key="middleName")
    date_of_birth = fields.Date(allow_none=True, data_key="dateOfBirth")
    payments_total = fields.Decimal(places=2, data_key="paymentsTotal")
    payments_count = fields.Integer(data_key="paymentsCount")
    created = fields.AwareDateTime()
    updated = fields.AwareDateTime()


class PaymentSchema(ma.Schema):
    """A live payment; patientId is the patient's externalId."""

    id = fields.Integer()
    external_id = fields.String(data_key="externalId")
    patient_external_id = fields.String(data_key="patientId")
    amount = fields.Decimal(places=2)
    created = fields.AwareDateTime()
    updated = fields.AwareDateTime()


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


class PatientVersionSchema(VersionSchema):
    """One version of a patient: its synced fields as they stood."""

    external_id = fields.String(data_key="externalId")
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")
    middle_name = fields.String(allow_none=True, data_key="middleName")
    date_of_birth = fields.Date(allow_none=True, data_key="dateOfBirth")


class PaymentVersionSchema(VersionSchema):
    """One version of a payment; patientId is its patient's externalId in that version."""

    external_id = fields.String(data_key="externalId")
    patient_external_id = fields.String(data_key="patientId")
    amount = fields.Decimal(places=2)


class SyncChangeSchema(ma.Schema):
    """One record a sync changed (SPEC §5); before/after hold its synced fields."""

    entity = fields.String(metadata={"enum": ["patients", "payments"]})
    external_id = fields.String(data_key="externalId")
    op = fields.String(metadata={"enum": ["created", "updated", "deleted", "restored"]})
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
    data_position = fields.String(
        data_key="dataPosition",
        metadata={
            "description": "The data position this sync's state is at (or a later one): "
            "send it as X-Data-Position to read your own writes (SPEC §8)."
        },
    )
