"""history: the sync that made each current row, and the superseded versions

A record's current row is its open version (it began at ``updated``, made by
``sync_id``); every sync that changes a record first copies the row it
replaces into ``<entity>_versions``, set-based from the sync's plan. An
initial load copies nothing, and an unchanged resend nothing either. Rows
from before this revision keep ``sync_id`` NULL: which sync made them is not
known.

Revision ID: b2c4d6e8f0a1
Revises: 9a3b5c7d1e2f
Create Date: 2026-11-30 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b2c4d6e8f0a1"
down_revision = "9a3b5c7d1e2f"
branch_labels = None
depends_on = None

VERSION_TABLES = ("patient_versions", "payment_versions")


def timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def version_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("deleted", timestamp(), nullable=True),
        sa.Column("valid_from", timestamp(), nullable=False),
        sa.Column("valid_to", timestamp(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=True),
        sa.Column("ended_by", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.add_column("patients", sa.Column("sync_id", sa.Integer(), nullable=True))
    op.add_column("payments", sa.Column("sync_id", sa.Integer(), nullable=True))
    op.create_table(
        "patient_versions", *version_columns(),
        sa.Column("first_name", sa.String(length=255), nullable=False),
        sa.Column("last_name", sa.String(length=255), nullable=False),
        sa.Column("middle_name", sa.String(length=255), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_versions")),
    )
    op.create_table(
        "payment_versions", *version_columns(),
        sa.Column("amount", sa.Numeric(12, 2).with_variant(sa.BigInteger(), "sqlite"),
                  nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_versions")),
    )
    for table in VERSION_TABLES:
        op.create_index(f"ix_{table}_record_id_valid_from", table, ["record_id", "valid_from"])
        op.create_index(f"ix_{table}_ended_by_record_id", table, ["ended_by", "record_id"])
        op.create_index(f"ix_{table}_sync_id_record_id", table, ["sync_id", "record_id"])


def downgrade() -> None:
    for table in VERSION_TABLES:
        op.drop_table(table)
    op.drop_column("payments", "sync_id")
    op.drop_column("patients", "sync_id")
