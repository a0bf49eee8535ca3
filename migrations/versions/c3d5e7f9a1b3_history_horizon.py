"""history_horizon: how far back history goes after a prune; versions change the data version

``flask history prune --before T`` drops the versions that ended and the
sync records that began before T, and records T here: ``as_of`` before it
is refused with history_pruned. The version tables and this one get the
data-version triggers of migration 9a3b5c7d1e2f, so a prune is seen by
every read cache.

Revision ID: c3d5e7f9a1b3
Revises: b2c4d6e8f0a1
Create Date: 2026-11-30 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c3d5e7f9a1b3"
down_revision = "b2c4d6e8f0a1"
branch_labels = None
depends_on = None

TABLES = ("patient_versions", "payment_versions", "history_horizon")
SQLITE_NEW_TOKEN = "lower(hex(randomblob(16)))"


def upgrade() -> None:
    op.create_table(
        "history_horizon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pruned_before", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_history_horizon_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_horizon")),
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_bump_data_version "
                       f"BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()")
        return
    for table in TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_{event.lower()}_bumps_data_version "
                       f"AFTER {event} ON {table} BEGIN "
                       f"UPDATE data_version SET token = {SQLITE_NEW_TOKEN} WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_bump_data_version ON {table}")
    else:
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{event}_bumps_data_version")
    op.drop_table("history_horizon")
