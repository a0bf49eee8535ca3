"""Patients and payments described once, for everything that reads them (SPEC §1, §3, §5).

Each ``Entity`` names its table and versions table, its synced fields (in
the order every answer shows them: JSON key, column, console label, kind),
the read-only fields a record's answer adds, and how the console lists its
fields. The serializers (Python and SQL), the OpenAPI schemas, the changes
feed, the ``as_of`` and versions queries and the console's timelines all
take their field lists from here; the sync engine describes what it writes
in app/sync/entity.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

from app.models import Patient, PatientVersion, Payment, PaymentVersion

# How a value is written: as text, a date, money (two decimals) or a whole number.
Kind = Literal["text", "date", "money", "integer"]

# What a new version of a record was (SPEC §5): the op of a change and of its event.
OPS = ("created", "updated", "deleted", "restored")


@dataclass(frozen=True)
class Field:
    """A field of an answer: its JSON key, the column reads select it as, and how it shows.

    ``column`` is the name a read's row has it under. A field ``through``
    another table is stored as that table's row id in column ``stored`` and
    shown as that row's externalId (a payment's patientId).
    """

    key: str
    column: str
    label: str
    kind: Kind
    nullable: bool = False
    stored: str | None = None
    through: sa.Table | None = None

    @property
    def stored_column(self) -> str:
        """The column of the entity's table (and versions table) that holds the field."""
        return self.stored or self.column


@dataclass(frozen=True)
class Entity:
    """A synced entity as reads show it: tables, synced fields, read-only extras."""

    name: str
    table: sa.Table
    # The versions a sync replaced (SPEC §5): the synced fields and ``deleted``.
    versions: sa.Table
    # The synced fields, after externalId, in the order every answer shows them.
    fields: tuple[Field, ...]
    # Read-only fields of a record's answer, after the synced ones (not in versions or changes).
    extras: tuple[Field, ...] = ()
    # The keys of ``fields`` in the order the console's timelines list them, if not theirs.
    console_order: tuple[str, ...] | None = None
    # Whether the console shows each record on a page of its own (a patient's page).
    own_page: bool = False

    def field(self, key: str) -> Field:
        """The synced field whose JSON key is ``key``."""
        return next(field for field in self.fields if field.key == key)

    @property
    def stored_columns(self) -> tuple[str, ...]:
        """The columns holding the synced fields, in the table and in the versions table."""
        return tuple(field.stored_column for field in self.fields)

    @property
    def changes(self) -> tuple[tuple[str, str], ...]:
        """(JSON key, read column) of each synced field, as a change compares them."""
        return tuple((field.key, field.column) for field in self.fields)

    @property
    def joined(self) -> tuple[tuple[Field, sa.Table], ...]:
        """(field, table) of each synced field shown as a row of another table (its externalId)."""
        return tuple((field, field.through) for field in self.fields if field.through is not None)

    @property
    def own(self) -> tuple[Field, ...]:
        """The synced fields held in the entity's own rows (not through another table)."""
        return tuple(field for field in self.fields if field.through is None)

    @property
    def labelled(self) -> tuple[tuple[str, str], ...]:
        """(console label, read column) of each synced field, in the console's order."""
        by_key = {field.key: field for field in self.fields}
        order = self.console_order or tuple(by_key)
        return tuple((by_key[key].label, by_key[key].column) for key in order)


PATIENTS = Entity(
    name="patients",
    table=Patient.__table__,  # type: ignore[arg-type]
    versions=PatientVersion.__table__,  # type: ignore[arg-type]
    fields=(
        Field("firstName", "first_name", "First name", "text"),
        Field("lastName", "last_name", "Last name", "text"),
        Field("middleName", "middle_name", "Middle name", "text", nullable=True),
        Field("dateOfBirth", "date_of_birth", "Date of birth", "date", nullable=True),
    ),
    extras=(
        Field("paymentsTotal", "payments_total", "Total of live payments", "money"),
        Field("paymentsCount", "payments_count", "Live payments", "integer"),
    ),
    own_page=True,
)

PAYMENTS = Entity(
    name="payments",
    table=Payment.__table__,  # type: ignore[arg-type]
    versions=PaymentVersion.__table__,  # type: ignore[arg-type]
    fields=(
        Field(
            "patientId",
            "patient_external_id",
            "Patient",
            "text",
            stored="patient_id",
            through=Patient.__table__,  # type: ignore[arg-type]
        ),
        Field("amount", "amount", "Amount", "money"),
    ),
    # A payment's timeline is read on its patient's page: the amount first.
    console_order=("amount", "patientId"),
)

# A payment's patientId: held as the patient's row id, shown as the patient's externalId.
PAYMENT_PATIENT = PAYMENTS.field("patientId")

ENTITIES: dict[str, Entity] = {entity.name: entity for entity in (PATIENTS, PAYMENTS)}
