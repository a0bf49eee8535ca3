"""The patients entity (SPEC §2): a record's names and date of birth."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa

from app.entities import PATIENTS
from app.sync.entity import Entity, Fields, PlanSource
from app.sync.record_schemas import DATE_PATTERN, PatientRecordSchema
from app.sync.records import fast_external_id, plain_text
from app.sync.staging import NULL, copy_text

# The columns a valid record writes: the synced fields as app/entities.py describes them.
FIELDS = PATIENTS.stored_columns


def fast_patient(record: Any) -> Fields | None:
    """(externalId, first, last, middle, born) of a certainly valid patient, else None."""
    if type(record) is not dict:
        return None
    external_id = fast_external_id(record.get("externalId"))
    first, last = record.get("firstName"), record.get("lastName")
    middle, born = record.get("middleName"), record.get("dateOfBirth")
    if external_id is None or not (plain_text(first) and plain_text(last)):
        return None
    if middle is not None and not plain_text(middle):
        return None
    if born is not None:
        if type(born) is not str or not DATE_PATTERN.fullmatch(born):
            return None
        try:
            born = date.fromisoformat(born)
        except ValueError:
            return None
    return external_id, first, last, middle, born


def copy_line(fields: Fields) -> str:
    """The staged fields of one patient as COPY text."""
    first, last, middle, born = fields
    return (
        f"{copy_text(first)}\t{copy_text(last)}\t"
        f"{NULL if middle is None else copy_text(middle)}\t"
        f"{NULL if born is None else born.isoformat()}"
    )


def plan_source(stage: sa.Table, target: sa.Table) -> PlanSource:
    """Each staged patient with its stored row; the fields are the staged ones."""
    return PlanSource(
        source=stage.outerjoin(target, target.c.external_id == stage.c.external_id),
        valid=stage.c.valid,
        values={name: stage.c[name] for name in FIELDS},
    )


_STAGED = (
    ("first_name", sa.Text),
    ("last_name", sa.Text),
    ("middle_name", sa.Text),
    ("date_of_birth", sa.Date),
)

PATIENTS_ENTITY = Entity(
    name=PATIENTS.name,
    target=PATIENTS.table,
    versions=PATIENTS.versions,
    schema=PatientRecordSchema(),
    fast_path=fast_patient,
    staged=_STAGED,
    copy_line=copy_line,
    merged=FIELDS,
    plan_columns=_STAGED,
    plan_source=plan_source,
)
