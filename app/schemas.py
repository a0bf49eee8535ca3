"""marshmallow schemas: snapshot records in, resources out, query arguments.

JSON keys are camelCase through ``data_key``; Python attributes stay snake_case.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.models import EXTERNAL_ID_LENGTH, NAME_LENGTH
from app.types import CENT

MAX_ABS_AMOUNT = Decimal(10) ** 10
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_NUMBER_RE = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", re.ASCII)


def storable(value: str) -> str | None:
    """Why a string cannot be stored faithfully in PostgreSQL text, or None if it can."""
    if "\x00" in value:
        return "Must not contain NUL characters."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Must be valid Unicode (no lone surrogates)."
    return None


# --------------------------------------------------------------------------- records in


class ExternalIdField(fields.Field):
    """A non-empty string, or an integer stored as its decimal string; never altered."""

    default_error_messages = {
        "invalid": "Must be a non-empty string or an integer.",
        "too_long": f"Longer than maximum length {EXTERNAL_ID_LENGTH}.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        text = str(value) if isinstance(value, int) else value
        if text == "":
            raise self.make_error("invalid")
        if len(text) > EXTERNAL_ID_LENGTH:
            raise self.make_error("too_long")
        problem = storable(text)
        if problem:
            raise ma.ValidationError(problem)
        return text


class NameField(fields.String):
    """A non-empty string of at most 255 characters, stored exactly as sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=[validate.Length(min=1, max=NAME_LENGTH), self._storable],
                         **kwargs)

    @staticmethod
    def _storable(value: str) -> None:
        problem = storable(value)
        if problem:
            raise ma.ValidationError(problem)


class CalendarDateField(fields.Field):
    """A real calendar date written exactly YYYY-MM-DD."""

    default_error_messages = {"invalid": "Not a valid date; expected YYYY-MM-DD."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        if not isinstance(value, str) or not DATE_PATTERN.fullmatch(value):
            raise self.make_error("invalid")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.make_error("invalid") from None


class AmountField(fields.Field):
    """Money: a JSON number or numeric string, exact, at most 2 decimals, |x| < 10^10."""

    default_error_messages = {
        "invalid": "Not a valid amount; expected a number or a numeric string.",
        "not_finite": "Amount must be finite.",
        "precision": "Amount has more than 2 decimal places.",
        "range": "Amount must be below 10^10 in absolute value.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        number = self._to_decimal(value)
        if not number.is_finite():
            raise self.make_error("not_finite")
        # copy_abs, not abs(): abs() rounds to the context and overflows on 1e1000000.
        if number.copy_abs() >= MAX_ABS_AMOUNT:
            raise self.make_error("range")
        cents = number.quantize(CENT)
        if cents != number:
            raise self.make_error("precision")
        return cents

    def _to_decimal(self, value: Any) -> Decimal:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, Decimal | int):
            return Decimal(value)
        if isinstance(value, float):
            # Only reached when a caller parsed JSON without parse_float=Decimal:
            # repr() is the shortest text that reads back as this float.
            return Decimal(repr(value))
        if isinstance(value, str) and _NUMBER_RE.fullmatch(value):
            try:
                return Decimal(value)
            except InvalidOperation:
                raise self.make_error("invalid") from None
        raise self.make_error("invalid")


def cents_below(limit: Decimal) -> dict[str, Any]:
    """OpenAPI keywords for money: whole cents, strictly between -limit and limit."""
    return {"multipleOf": 0.01, "maximum": float(limit), "exclusiveMaximum": True,
            "minimum": -float(limit), "exclusiveMinimum": True}


_EXTERNAL_ID_DOC = {"minLength": 1, "maxLength": EXTERNAL_ID_LENGTH,
                    "description": "The upstream id: a non-empty string (an integer is also "
                                   "accepted and stored as its decimal string)."}


class RecordSchema(ma.Schema):
    """Common to every snapshot record: unknown keys are ignored."""

    class Meta:
        unknown = ma.EXCLUDE

    external_id = ExternalIdField(required=True, data_key="externalId", metadata=_EXTERNAL_ID_DOC)


class PatientRecordSchema(RecordSchema):
    """One element of a patients snapshot (SPEC §2)."""

    first_name = NameField(required=True, data_key="firstName")
    last_name = NameField(required=True, data_key="lastName")
    middle_name = NameField(load_default=None, allow_none=True, data_key="middleName")
    date_of_birth = CalendarDateField(load_default=None, allow_none=True, data_key="dateOfBirth")


class PaymentRecordSchema(RecordSchema):
    """One element of a payments snapshot (SPEC §2); patientId is the patient's externalId."""

    patient_external_id = ExternalIdField(required=True, data_key="patientId",
                                          metadata=_EXTERNAL_ID_DOC)
    amount = AmountField(required=True, metadata={
        "description": "Exact money: at most 2 decimals (a JSON number, or a numeric string).",
        **cents_below(MAX_ABS_AMOUNT)})


# --------------------------------------------------------------------------- resources out


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


patients_schema = PatientSchema(many=True)
payments_schema = PaymentSchema(many=True)


# --------------------------------------------------------------------------- query arguments


class QueryArgsSchema(ma.Schema):
    """Query strings: unknown parameters are ignored (SPEC §3)."""

    class Meta:
        unknown = ma.EXCLUDE


class PageArgsSchema(QueryArgsSchema):
    """limit and the opaque keyset cursor from the Link header."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    # Every cursor the service emits is far shorter; a longer one is not ours.
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


PATIENT_SORTS = ("id", "paymentsTotal", "-paymentsTotal")


class TotalBoundField(fields.Decimal):
    """A bound on a payments total: any finite decimal, compared exactly (SPEC §3)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=False, load_default=None, **kwargs)


class PatientListArgsSchema(PageArgsSchema):
    """Filters and sort of GET /patients; payments_min/payments_max are aliases."""

    payment_min = TotalBoundField()
    payment_max = TotalBoundField()
    payments_min = TotalBoundField()
    payments_max = TotalBoundField()
    sort = fields.String(load_default="id", validate=validate.OneOf(PATIENT_SORTS))

    @ma.post_load
    def merge_aliases(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Fold the alias spellings into payment_min/payment_max and check the range."""
        for name in ("min", "max"):
            canonical, alias = data.pop(f"payment_{name}"), data.pop(f"payments_{name}")
            if canonical is not None and alias is not None and canonical != alias:
                raise ma.ValidationError(
                    f"payment_{name} and payments_{name} disagree; send one.", f"payment_{name}")
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

    external_id = ExternalIdArgField()


class SyncArgsSchema(ma.Schema):
    """POST /patients and /payments options (SPEC §2).

    Strict, unlike the reads: on a write endpoint an unknown parameter
    (``dryRun=true``), a repeated one, or a value other than true/false is
    a 422, so a typo never turns a preview into a real sync.
    """

    class Meta:
        unknown = ma.RAISE

    dry_run = fields.Boolean(load_default=False, truthy={"true", "True", "TRUE"},
                             falsy={"false", "False", "FALSE"})
    force = fields.Boolean(load_default=False, truthy={"true", "True", "TRUE"},
                           falsy={"false", "False", "FALSE"})

    @ma.pre_load
    def refuse_unknown_and_repeated(self, data: Any, **kwargs: Any) -> Any:
        """Unknown names, and names given twice (``dry_run=false&dry_run=true``), are 422.

        Checked here rather than left to Meta.unknown, which webargs overrides
        with EXCLUDE for query strings.
        """
        getlist = getattr(data, "getlist", None)
        for name in data:
            if name not in self.fields:
                raise ma.ValidationError("Unknown parameter; the sync endpoints take "
                                         "dry_run and force only.", name)
            if getlist is not None and len(getlist(name)) > 1:
                raise ma.ValidationError("Given more than once; send it once.", name)
        return data
