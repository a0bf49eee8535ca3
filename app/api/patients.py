"""Patients: the snapshot upload and the analytics reads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint

from app.api.args import AsOfArgsSchema, PageArgsSchema, PatientListArgsSchema, SyncArgsSchema
from app.api.cache import cached_read
from app.api.csv_export import csv_export
from app.api.horizon import require_history_at
from app.api.openapi import QUEUED_SYNC_DESCRIPTION, csv_doc, snapshot_body
from app.api.pagination import paginated
from app.api.schemas import PatientSchema, PatientVersionSchema, QueuedSyncSchema, SyncReportSchema
from app.api.snapshots import sync_or_accept
from app.errors import APIError
from app.extensions import db
from app.reads import live
from app.reads.as_of import live_patient_at
from app.reads.listings import BoundListing, patients_page_listing
from app.reads.orderings import newest_version_first
from app.reads.paging import SortKey
from app.reads.serializers import (
    PATIENT_KEYS,
    patient_csv_sql,
    patient_json,
    patient_json_sql,
    patient_version_json,
)
from app.reads.versions import patient_history

bp = Blueprint("patients", __name__, description="Patients and their live payment totals.")


@bp.route("/patients", methods=["GET"])
@bp.arguments(PatientListArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200,
    schema=PatientSchema(many=True),
    description="A page of patients; with Accept: text/csv, all of them as CSV.",
)
@bp.doc(**csv_doc("patients"))
@csv_export(PATIENT_KEYS, patient_json, "patients.csv", line_sql=patient_csv_sql)
@cached_read
@paginated(item=patient_json, item_sql=patient_json_sql, reused=True)
def list_patients(
    payment_min: Decimal | None, payment_max: Decimal | None, sort: str, as_of: datetime | None
) -> BoundListing:
    """List live patients, filtered by the total of their live payments."""
    require_history_at(as_of)
    return patients_page_listing(payment_min, payment_max, sort, as_of)


@bp.route("/patients/<external_id:external_id>", methods=["GET"])
@bp.arguments(AsOfArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(200, schema=PatientSchema, description="The patient.")
@bp.alt_response(404, response="NOT_FOUND", description="No live patient has this externalId.")
@cached_read
def get_patient(external_id: str, as_of: datetime | None) -> dict[str, Any]:
    """Get one live patient by its externalId."""
    require_history_at(as_of)
    patient = (
        live.live_patient(db.session, external_id)
        if as_of is None
        else live_patient_at(db.session, external_id, as_of)
    )
    if patient is None:
        raise APIError.not_found(f"Patient '{external_id}'")
    return patient_json(patient)


@bp.route("/patients/<external_id:external_id>/history", methods=["GET"])
@bp.arguments(PageArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200, schema=PatientVersionSchema(many=True), description="The patient's versions, newest first."
)
@bp.alt_response(404, response="NOT_FOUND", description="No patient was ever stored under it.")
@cached_read
@paginated(item=patient_version_json)
def get_patient_history(external_id: str) -> tuple[sa.Select[Any], SortKey]:
    """List every version of one patient, deleted ones included, newest first."""
    record = live.stored_patient_id(db.session, external_id)
    if record is None:
        raise APIError.not_found(f"Patient '{external_id}'")
    versions = patient_history(record)
    return sa.select(versions), newest_version_first(versions)


@bp.route("/patients", methods=["POST"])
@bp.arguments(SyncArgsSchema(), location="query", as_kwargs=True)
@bp.doc(requestBody=snapshot_body("PatientRecord"))
@bp.alt_response(200, schema=SyncReportSchema, description="The sync report.")
@bp.alt_response(202, schema=QueuedSyncSchema, description=QUEUED_SYNC_DESCRIPTION)
def sync_patients(dry_run: bool, force: bool) -> dict[str, Any] | Response:
    """Replace the replica's patients with the complete snapshot in the body."""
    return sync_or_accept("patients", dry_run=dry_run, force=force)
