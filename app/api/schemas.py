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


class SyncReportSchema(SyncSummarySchema):
    """The report of one sync (documentation only; reports are stored as JSON)."""

    errors = fields.List(fields.Nested(SyncRecordErrorSchema))
