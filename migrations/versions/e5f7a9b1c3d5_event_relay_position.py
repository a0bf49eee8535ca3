"""event_relay_position: how far the change-event relay got

One row (id = 1), written by `flask events relay` only after the broker
confirmed every event up to it (SPEC §6), so a relay that is killed resumes
there. The relay inserts the row on its first start; until then /metrics
shows no relay series unless EVENTS_BROKER_URL is set. No data-version
trigger: the position is not replica data, and moving it must not empty
the read caches.

Revision ID: e5f7a9b1c3d5
Revises: d4e6f8a0b2c4
Create Date: 2026-11-30 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e5f7a9b1c3d5"
down_revision = "d4e6f8a0b2c4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_relay_position",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("sync_complete", sa.Boolean(), nullable=False),
        sa.Column("sync_events", sa.Integer(), nullable=False),
        sa.Column("published_total", sa.BigInteger(), nullable=False),
        sa.Column("publish_rate", sa.Float(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_event_relay_position_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_relay_position")),
    )


def downgrade() -> None:
    op.drop_table("event_relay_position")
