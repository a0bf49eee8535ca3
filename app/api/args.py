"""marshmallow schemas of query arguments: reads ignore unknown ones, syncs refuse them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.instants import InvalidInstant, parse_instant
from app.reads.orderings import PATIENT_SORTS
from app.sync.record_schemas import storable


class QueryArgsSchema(ma.Schema):
    """Query strings: unknown parameters are ignored (SPEC §3)."""

    class Meta:
        unknown = ma.EXCLUDE


class PageArgsSchema(QueryArgsSchema):
    """limit and the opaque keyset cursor from the Link header."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    # Every cursor the service emits is far shorter; a longer one is not ours.
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class TotalBoundField(fields.Decimal):
    """A bound on a payments total: any finite decimal, compared exactly (SPEC §3)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, load_default=None, **kwargs)


class InstantField(fields.Field):
    """An instant in a query string, read by app.instants (SPEC §5); anything else is a 422.

    Not marshmallow's AwareDateTime: it reads through ``fromisoformat``,
    which takes ``T23.5Z`` as half past eleven and lets an instant near the
    calendar's ends overflow into a 500 when it is converted to UTC.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=None, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            return parse_instant(value)
        except InvalidInstant as error:
            raise ma.ValidationError(str(error)) from None


AS_OF_DOC = {
    "description": "An instant (RFC 3339 with an offset): answer as the replica "
    "stood then (SPEC §5).",
    "example": "2026-11-21T10:00:00.5+01:00",
}


class AsOfArgsSchema(QueryArgsSchema):
    """GET of one record: ``as_of`` answers as of an instant."""

    as_of = InstantField(metadata=AS_OF_DOC)


class PatientListArgsSchema(PageArgsSchema):
    """Filters and sort of GET /patients; payments_min/payments_max are aliases."""

    as_of = InstantField(metadata=AS_OF_DOC)

    payment_min = TotalBoundField()
    payment_max = TotalBoundField()
    payments_min = TotalBoundField()
    payments_max = TotalBoundField()
    sort = fields.String(load_default="id", validate=validate.OneOf(list(PATIENT_SORTS)))

    @ma.post_load
    def merge_aliases(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Fold the alias spellings into payment_min/payment_max and check the range."""
        for name in ("min", "max"):
            canonical, alias = data.pop(f"payment_{name}"), data.pop(f"payments_{name}")
            if canonical is not None and alias is not None and canonical != alias:
                raise ma.ValidationError(
                    f"payment_{name} and payments_{name} disagree; send one.", f"payment_{name}"
                )
            data[f"payment_{name}"] = canonical if canonical is not None else alias
        low, high = data["payment_min"], data["payment_max"]
        if low is not None and high is not None and low > high:
            raise ma.ValidationError("payment_min is greater than payment_max.", "payment_min")
        return data


class ExternalIdArgField(fields.String):
    """An externalId in a query string: any text a stored id could be (else 422)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(load_default=None, validate=self._storable, **kwargs)

    @staticmethod
    def _storable(value: str) -> None:
        problem = storable(value)
        if problem:
            raise ma.ValidationError(problem)


class PaymentListArgsSchema(PageArgsSchema):
    """GET /payments: external_id is the patient's externalId."""

    as_of = InstantField(metadata=AS_OF_DOC)

    external_id = ExternalIdArgField()


class SyncArgsSchema(ma.Schema):
    """POST /patients and /payments options (SPEC §2).

    Strict, unlike the reads: on a write endpoint an unknown parameter
    (``dryRun=true``), a repeated one, or a value other than true/false is
    a 422, so a typo never turns a preview into a real sync.
    """

    class Meta:
        unknown = ma.RAISE

    dry_run = fields.Boolean(
        load_default=False, truthy={"true", "True", "TRUE"}, falsy={"false", "False", "FALSE"}
    )
    force = fields.Boolean(
        load_default=False, truthy={"true", "True", "TRUE"}, falsy={"false", "False", "FALSE"}
    )

    @ma.pre_load
    def refuse_unknown_and_repeated(self, data: Any, **kwargs: Any) -> Any:
        """Unknown names, and names given twice (``dry_run=false&dry_run=true``), are 422.

        Checked here rather than left to Meta.unknown, which webargs overrides
        with EXCLUDE for query strings.
        """
        getlist = getattr(data, "getlist", None)
        for name in data:
            if name not in self.fields:
                raise ma.ValidationError(
                    "Unknown parameter; the sync endpoints take dry_run and force only.", name
                )
            if getlist is not None and len(getlist(name)) > 1:
                raise ma.ValidationError("Given more than once; send it once.", name)
        return data


class SyncListArgsSchema(PageArgsSchema):
    """GET /syncs: ``after`` lists the syncs after that one, oldest first."""

    after = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={
            "description": "A syncId: list the syncs after it, oldest first (to follow the feed)."
        },
    )


class HistogramArgsSchema(AsOfArgsSchema):
    """GET /analytics/histogram: how many equal-width buckets, and ``as_of``."""

    buckets = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "How many equal-width buckets span [min, max] (1-100)."},
    )


class AnalyticsSyncArgsSchema(PageArgsSchema):
    """GET /analytics/syncs: oldest first, ``after`` a syncId."""

    after = fields.Integer(
        load_default=None,
        validate=validate.Range(min=0, max=2**63 - 1),
        metadata={"description": "A syncId: list the syncs after it (oldest first)."},
    )
