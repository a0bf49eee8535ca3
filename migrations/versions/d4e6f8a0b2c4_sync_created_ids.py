"""sync_runs: the id range of the records a sync created

A sync's changes include the records it created; the live ones are found
by their ids, which one INSERT … SELECT takes from the sequence while the
entity's sync lock is held, instead of by a scan of the live table for
``sync_id`` (an index on it would make every update non-HOT). Syncs
recorded before this revision have no range; their changes scan.

Revision ID: d4e6f8a0b2c4
Revises: c3d5e7f9a1b3
Create Date: 2026-11-30 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "d4e6f8a0b2c4"
down_revision = "c3d5e7f9a1b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTERs: a batch rebuild on SQLite would drop the table's triggers.
    op.add_column("sync_runs", sa.Column("created_after_id", sa.Integer(), nullable=True))
    op.add_column("sync_runs", sa.Column("created_through_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("sync_runs", "created_through_id")
    op.drop_column("sync_runs", "created_after_id")
