"""Payments: the snapshot upload and the list of a patient's payments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Response
from flask_smorest import Blueprint

from app.api.args import AsOfArgsSchema, PageArgsSchema, PaymentListArgsSchema, SyncArgsSchema
from app.api.cache import cached_read
from app.api.csv_export import csv_export
from app.api.horizon import require_history_at
from app.api.openapi import QUEUED_SYNC_DESCRIPTION, csv_doc, snapshot_body
from app.api.pagination import paginated
from app.api.schemas import PaymentSchema, PaymentVersionSchema, QueuedSyncSchema, SyncReportSchema
from app.api.snapshots import sync_or_accept
from app.errors import APIError
from app.extensions import db
from app.reads import live
from app.reads.as_of import live_payment_at
from app.reads.listings import Listing, payments_listing
from app.reads.orderings import newest_version_first
from app.reads.paging import SortKey
from app.reads.serializers import (
    PAYMENT_KEYS,
    payment_csv_sql,
    payment_json,
    payment_json_sql,
    payment_version_json,
)
from app.reads.versions import payment_history

bp = Blueprint("payments", __name__, description="Live payments.")


@bp.route("/payments", methods=["GET"])
@bp.arguments(PaymentListArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200,
    schema=PaymentSchema(many=True),
    description="A page of payments; with Accept: text/csv, all of them as CSV.",
)
@bp.doc(**csv_doc("payments"))
@csv_export(PAYMENT_KEYS, payment_json, "payments.csv", line_sql=payment_csv_sql)
@cached_read
@paginated(item=payment_json, item_sql=payment_json_sql)
def list_payments(external_id: str | None, as_of: datetime | None) -> Listing:
    """List live payments in id order, optionally of one patient (by its externalId)."""
    require_history_at(as_of)
    return payments_listing(external_id, as_of)


@bp.route("/payments/<external_id:external_id>", methods=["GET"])
@bp.arguments(AsOfArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(200, schema=PaymentSchema, description="The payment.")
@bp.alt_response(404, response="NOT_FOUND", description="No live payment has this externalId.")
@cached_read
def get_payment(external_id: str, as_of: datetime | None) -> dict[str, Any]:
    """Get one live payment by its own externalId."""
    require_history_at(as_of)
    payment = (
        live.live_payment(db.session, external_id)
        if as_of is None
        else live_payment_at(db.session, external_id, as_of)
    )
    if payment is None:
        raise APIError.not_found(f"Payment '{external_id}'")
    return payment_json(payment)


@bp.route("/payments/<external_id:external_id>/history", methods=["GET"])
@bp.arguments(PageArgsSchema(), location="query", as_kwargs=True)
@bp.alt_response(
    200, schema=PaymentVersionSchema(many=True), description="The payment's versions, newest first."
)
@bp.alt_response(404, response="NOT_FOUND", description="No payment was ever stored under it.")
@cached_read
@paginated(item=payment_version_json)
def get_payment_history(external_id: str) -> tuple[sa.Select[Any], SortKey]:
    """List every version of one payment, deleted ones included, newest first."""
    record = live.stored_payment_id(db.session, external_id)
    if record is None:
        raise APIError.not_found(f"Payment '{external_id}'")
    versions = payment_history(record)
    return sa.select(versions), newest_version_first(versions)


@bp.route("/payments", methods=["POST"])
@bp.arguments(SyncArgsSchema(), location="query", as_kwargs=True)
@bp.doc(requestBody=snapshot_body("PaymentRecord"))
@bp.alt_response(200, schema=SyncReportSchema, description="The sync report.")
@bp.alt_response(202, schema=QueuedSyncSchema, description=QUEUED_SYNC_DESCRIPTION)
def sync_payments(dry_run: bool, force: bool) -> dict[str, Any] | Response:
    """Replace the replica's payments with the complete snapshot in the body."""
    return sync_or_accept("payments", dry_run=dry_run, force=force)
