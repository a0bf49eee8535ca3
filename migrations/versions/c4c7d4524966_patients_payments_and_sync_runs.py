"""patients, payments and sync_runs

Money is NUMERIC on PostgreSQL and integer cents on SQLite (see app.db.types.Money);
timestamps are timestamptz.

Revision ID: c4c7d4524966
Revises:
Create Date: 2026-11-22 01:07:37.594768
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c4c7d4524966"
down_revision = None
branch_labels = None
depends_on = None

LIVE = sa.text("deleted IS NULL")


def money(precision: int | None) -> sa.types.TypeEngine:
    return sa.Numeric(precision, 2).with_variant(sa.BigInteger(), "sqlite")


def timestamp() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("first_name", sa.String(length=255), nullable=False),
        sa.Column("last_name", sa.String(length=255), nullable=False),
        sa.Column("middle_name", sa.String(length=255), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("payments_total", money(None), server_default="0", nullable=False),
        sa.Column("payments_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created", timestamp(), nullable=False),
        sa.Column("updated", timestamp(), nullable=False),
        sa.Column("deleted", timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("external_id", name=op.f("uq_patients_external_id")),
    )
    op.create_index("ix_patients_live_total_id", "patients", ["payments_total", "id"],
                    postgresql_where=LIVE, sqlite_where=LIVE)
    op.create_index("ix_patients_live_total_desc_id", "patients",
                    [sa.literal_column("payments_total DESC"), "id"],
                    postgresql_where=LIVE, sqlite_where=LIVE)

    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("amount", money(12), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("created", timestamp(), nullable=False),
        sa.Column("updated", timestamp(), nullable=False),
        sa.Column("deleted", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"],
                                name=op.f("fk_payments_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("external_id", name=op.f("uq_payments_external_id")),
    )
    op.create_index("ix_payments_live_patient_id_id", "payments", ["patient_id", "id"],
                    postgresql_where=LIVE, sqlite_where=LIVE)

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("started_at", timestamp(), nullable=False),
        sa.Column("finished_at", timestamp(), nullable=False),
        sa.Column("report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_runs")),
    )


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_index("ix_payments_live_patient_id_id", table_name="payments")
    op.drop_table("payments")
    op.drop_index("ix_patients_live_total_desc_id", table_name="patients")
    op.drop_index("ix_patients_live_total_id", table_name="patients")
    op.drop_table("patients")
