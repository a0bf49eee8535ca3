"""marshmallow schemas of one snapshot record (SPEC §2): the reference for validation.

The sync engine validates with them (``app.sync.records``), the OpenAPI
document describes snapshot bodies with them. JSON keys are camelCase
through ``data_key``; Python attributes stay snake_case.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from app.db.types import CENT
from app.models import EXTERNAL_ID_LENGTH, NAME_LENGTH

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
        super().__init__(
            validate=[validate.Length(min=1, max=NAME_LENGTH), self._storable], **kwargs
        )

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
    return {
        "multipleOf": 0.01,
        "maximum": float(limit),
        "exclusiveMaximum": True,
        "minimum": -float(limit),
        "exclusiveMinimum": True,
    }


_EXTERNAL_ID_DOC = {
    "minLength": 1,
    "maxLength": EXTERNAL_ID_LENGTH,
    "description": "The upstream id: a non-empty string (an integer is also "
    "accepted and stored as its decimal string).",
}


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

    patient_external_id = ExternalIdField(
        required=True, data_key="patientId", metadata=_EXTERNAL_ID_DOC
    )
    amount = AmountField(
        required=True,
        metadata={
            "description": "Exact money: at most 2 decimals (a JSON number, or a numeric string).",
            **cents_below(MAX_ABS_AMOUNT),
        },
    )
