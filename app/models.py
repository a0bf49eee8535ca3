"""The replica's tables: patients, payments and the history of syncs."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.db.types import Money, UTCDateTime, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

EXTERNAL_ID_LENGTH = 255
NAME_LENGTH = 255


class Base(orm.DeclarativeBase):
    """Declarative base with named constraints, so migrations are reviewable."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class TimestampedMixin:
    """created/updated/deleted as SPEC §1 defines them (deleted NULL = live).

    The row is the record's current version (SPEC §5): it began at
    ``updated``, made by sync ``sync_id`` (NULL for rows from before history).
    """

    created: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    updated: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)
    deleted: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    sync_id: orm.Mapped[int | None]


class VersionMixin:
    """A superseded version of a record (SPEC §5): its synced fields and ``deleted``.

    It held from ``valid_from`` (made by sync ``sync_id``) until ``valid_to``,
    when sync ``ended_by`` replaced it. The current version is the record's
    own row; only superseded ones are stored here.
    """

    id: orm.Mapped[int] = orm.mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    record_id: orm.Mapped[int]
    external_id: orm.Mapped[str] = orm.mapped_column(sa.String(EXTERNAL_ID_LENGTH))
    deleted: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    valid_from: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    valid_to: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    sync_id: orm.Mapped[int | None]
    ended_by: orm.Mapped[int]


class Patient(TimestampedMixin, Base):
    """A patient as the external system knows it, plus its live payment totals.

    On PostgreSQL the table has fillfactor 50 (migration a1c3e5f7b9d2), so
    the totals update of an initial payments load is a HOT update.
    """

    __tablename__ = "patients"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    external_id: orm.Mapped[str] = orm.mapped_column(sa.String(EXTERNAL_ID_LENGTH), unique=True)
    first_name: orm.Mapped[str] = orm.mapped_column(sa.String(NAME_LENGTH))
    last_name: orm.Mapped[str] = orm.mapped_column(sa.String(NAME_LENGTH))
    middle_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(NAME_LENGTH))
    date_of_birth: orm.Mapped[date | None] = orm.mapped_column(sa.Date())
    # Derived from live payments and kept current by the payments sync, so the
    # range filter and the sort never aggregate the payments table per request.
    payments_total: orm.Mapped[Decimal] = orm.mapped_column(
        Money(None, 2), default=Decimal("0.00"), server_default="0"
    )
    payments_count: orm.Mapped[int] = orm.mapped_column(default=0, server_default="0")

    __table_args__ = (
        sa.Index(
            "ix_patients_live_total_id",
            "payments_total",
            "id",
            postgresql_where=sa.text("deleted IS NULL"),
            sqlite_where=sa.text("deleted IS NULL"),
        ),
        sa.Index(
            "ix_patients_live_total_desc_id",
            sa.text("payments_total DESC"),
            "id",
            postgresql_where=sa.text("deleted IS NULL"),
            sqlite_where=sa.text("deleted IS NULL"),
        ),
    )


class Payment(TimestampedMixin, Base):
    """A payment as the external system knows it; amount is exact to the cent.

    On PostgreSQL the table has fillfactor 85 (migration 7d1e2f3a4b5c), so the
    daily amount changes are HOT updates that write no index.
    """

    __tablename__ = "payments"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    external_id: orm.Mapped[str] = orm.mapped_column(sa.String(EXTERNAL_ID_LENGTH), unique=True)
    amount: orm.Mapped[Decimal] = orm.mapped_column(Money(12, 2))
    patient_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey("patients.id"))

    patient: orm.Mapped[Patient] = orm.relationship(lazy="raise")

    __table_args__ = (
        sa.Index(
            "ix_payments_live_patient_id_id",
            "patient_id",
            "id",
            postgresql_where=sa.text("deleted IS NULL"),
            sqlite_where=sa.text("deleted IS NULL"),
        ),
    )


class PatientVersion(VersionMixin, Base):
    """A superseded version of a patient."""

    __tablename__ = "patient_versions"

    first_name: orm.Mapped[str] = orm.mapped_column(sa.String(NAME_LENGTH))
    last_name: orm.Mapped[str] = orm.mapped_column(sa.String(NAME_LENGTH))
    middle_name: orm.Mapped[str | None] = orm.mapped_column(sa.String(NAME_LENGTH))
    date_of_birth: orm.Mapped[date | None] = orm.mapped_column(sa.Date())

    __table_args__ = (
        sa.Index("ix_patient_versions_record_id_valid_from", "record_id", "valid_from"),
        # The changes of a sync (GET /syncs/<id>/changes): the versions it ended and
        # made, in record order, so a page is an index range, not a scan.
        sa.Index("ix_patient_versions_ended_by_record_id", "ended_by", "record_id"),
        sa.Index("ix_patient_versions_sync_id_record_id", "sync_id", "record_id"),
    )


class PaymentVersion(VersionMixin, Base):
    """A superseded version of a payment; patient_id is the patients row it belonged to."""

    __tablename__ = "payment_versions"

    amount: orm.Mapped[Decimal] = orm.mapped_column(Money(12, 2))
    patient_id: orm.Mapped[int]

    __table_args__ = (
        sa.Index("ix_payment_versions_record_id_valid_from", "record_id", "valid_from"),
        # The changes of a sync (GET /syncs/<id>/changes): the versions it ended and
        # made, in record order, so a page is an index range, not a scan.
        sa.Index("ix_payment_versions_ended_by_record_id", "ended_by", "record_id"),
        sa.Index("ix_payment_versions_sync_id_record_id", "sync_id", "record_id"),
        # One patient's payments as of an instant (GET /patients/<id>?as_of=, the console).
        sa.Index("ix_payment_versions_patient_id_valid_from", "patient_id", "valid_from"),
    )


class SyncRun(Base):
    """One sync: applied (or a dry run) with its report, or accepted and not finished yet."""

    __tablename__ = "sync_runs"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    entity: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    dry_run: orm.Mapped[bool]
    started_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    finished_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())
    report: orm.Mapped[dict[str, Any]] = orm.mapped_column(
        sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    )
    # The records this sync created have ids in (created_after_id,
    # created_through_id]: its changes find them by id, not by a scan for
    # sync_id. An empty range if it created none; null for a dry run.
    created_after_id: orm.Mapped[int | None]
    created_through_id: orm.Mapped[int | None]
    # A random identity given when the sync is recorded: its events' ids derive
    # from it, so no other database, nor a restore, gives them to other
    # changes (SPEC §6). Null for syncs recorded before migration a7b9c1d3e5f7.
    uid: orm.Mapped[str | None] = orm.mapped_column(sa.String(36))
    # Where the sync stands (SPEC §2, asynchronous syncs): ``queued`` and
    # ``running`` (accepted, not applied yet), then ``applied``, ``refused`` or
    # ``failed``. A synchronous sync is recorded once applied.
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), server_default="applied")
    # When an asynchronous sync was accepted (the database's clock); null for
    # synchronous syncs recorded before migration c9e1f3a5b7d9.
    accepted_at: orm.Mapped[datetime | None] = orm.mapped_column(UTCDateTime())
    # The order syncs finished in: given under the sync lock when a sync is
    # recorded finished, so a later finish always has a larger one. Ids follow
    # acceptance, which an asynchronous sync may finish long after; the feed
    # (GET /syncs?after=, the relay) follows this. Null while unfinished.
    applied_seq: orm.Mapped[int | None] = orm.mapped_column(sa.BigInteger())
    # ?force=true of an asynchronous sync, kept for the worker; null for synchronous ones.
    force: orm.Mapped[bool | None]
    # The worker that claimed a running sync (host, pid and a random token).
    claimed_by: orm.Mapped[str | None] = orm.mapped_column(sa.String(128))

    __table_args__ = (
        sa.Index("ix_sync_runs_applied_seq", "applied_seq", unique=True),
        # The queue: unfinished syncs in acceptance order, a few rows of a large table.
        sa.Index(
            "ix_sync_runs_unfinished",
            "id",
            postgresql_where=sa.text("state IN ('queued', 'running')"),
            sqlite_where=sa.text("state IN ('queued', 'running')"),
        ),
    )


class SyncUpload(Base):
    """The stored body of an accepted asynchronous sync, gzip, in parts of about 1 MiB.

    Written with the queued sync_runs row in one transaction (accepted means
    durable), read back part by part by the worker, and deleted in the
    transaction that records the sync finished. No data-version trigger: an
    upload is not replica data.
    """

    __tablename__ = "sync_uploads"

    sync_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey("sync_runs.id", ondelete="CASCADE"), primary_key=True
    )
    part: orm.Mapped[int] = orm.mapped_column(primary_key=True, autoincrement=False)
    chunk: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary())


class DataVersion(Base):
    """The one row whose token names the current state of the replica's tables.

    Database triggers (migration 9a3b5c7d1e2f) replace the token with a fresh
    random one on every change to patients, payments or sync_runs, whoever
    makes it; the application never writes it.
    """

    __tablename__ = "data_version"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    token: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    # Raised with the token (migration e1a3c5e7f9b2), which begins with it: the position.
    counter: orm.Mapped[int] = orm.mapped_column(sa.BigInteger(), server_default="0")

    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)


class HistoryHorizon(Base):
    """The one row that says history before ``pruned_before`` was pruned (SPEC §5)."""

    __tablename__ = "history_horizon"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    pruned_before: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime())

    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)


class EventRelayPosition(Base):
    """The one row that says how far the change-event relay got (SPEC §6).

    The broker confirmed every event up to and including the change of
    record ``record_id`` in sync ``sync_id`` (and that sync's ``sync.applied``
    too when ``sync_complete``); ``sync_events`` of that sync's events were
    confirmed. The relay writes it only after the broker's confirms, so a
    relay that dies resumes here. No data-version trigger: it is not replica data.
    """

    __tablename__ = "event_relay_position"

    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    sync_id: orm.Mapped[int] = orm.mapped_column(default=0)
    # That sync's place in the order syncs were applied (sync_runs.applied_seq):
    # the feed follows it, not the id (migration c9e1f3a5b7d9).
    sync_seq: orm.Mapped[int] = orm.mapped_column(sa.BigInteger(), default=0, server_default="0")
    record_id: orm.Mapped[int] = orm.mapped_column(sa.BigInteger(), default=0)
    sync_complete: orm.Mapped[bool] = orm.mapped_column(default=True)
    sync_events: orm.Mapped[int] = orm.mapped_column(default=0)
    published_total: orm.Mapped[int] = orm.mapped_column(sa.BigInteger(), default=0)
    # Events per second confirmed by the latest window (as of updated_at).
    publish_rate: orm.Mapped[float] = orm.mapped_column(default=0.0, server_default="0")
    updated_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)


class ConsoleSession(Base):
    """A console sign-in the server still honours (SPEC §7, §8).

    ``id`` is the hex SHA-256 digest of the random session id kept in the
    signed cookie (app/console/session.py), so the table holds nothing a
    cookie could be made from. Inserted at sign-in, deleted at sign-out;
    a cookie whose row is gone or past ``expires_at`` opens nothing, on any
    node. No data-version trigger: it is not replica data.
    """

    __tablename__ = "console_sessions"

    id: orm.Mapped[str] = orm.mapped_column(sa.String(64), primary_key=True)
    expires_at: orm.Mapped[datetime] = orm.mapped_column(UTCDateTime(), index=True)
