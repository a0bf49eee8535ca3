"""sync_runs.uid: a random identity per sync, from which its events' ids are derived

Event ids were derived from the sync's id alone, so two databases, or one
restored from an older backup, gave the same eventId to different changes
(SPEC §6). A sync recorded from this revision on gets a random UUID; syncs
recorded before it keep no uid, and their events keep the ids they were
published with.

Revision ID: a7b9c1d3e5f7
Revises: f6a8b0c2d4e6
Create Date: 2026-12-07 00:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "a7b9c1d3e5f7"
down_revision = "f6a8b0c2d4e6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER: a batch rebuild on SQLite would drop the table's triggers.
    op.add_column("sync_runs", sa.Column("uid", sa.String(36), nullable=True))


def downgrade() -> None:
    op.drop_column("sync_runs", "uid")
