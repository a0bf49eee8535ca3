"""sync_runs: the id range of the records a sync created

A sync's changes include the records it created; the live ones are found
by their ids, which one INSERT … SELECT takes from the sequence while the
entity's sync lock is held, instead of by a scan of the live table for
``sync_id`` (an index on it would make every update non-HOT). For syncs
recorded before this revision the range is found once, here: a sync's
created rows carry its start time as their ``created`` (one scan of each
table). A sync that created nothing gets the empty range (0, 0].

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
    op.execute("UPDATE sync_runs SET created_after_id = 0, created_through_id = 0 "
               "WHERE NOT dry_run")
    for entity in ("patients", "payments"):
        op.execute(
            "UPDATE sync_runs SET created_after_id = made.first_id - 1, "
            "created_through_id = made.last_id "
            f"FROM (SELECT created, min(id) AS first_id, max(id) AS last_id FROM {entity} "
            "GROUP BY created) AS made "
            f"WHERE sync_runs.entity = '{entity}' AND NOT sync_runs.dry_run "
            "AND made.created = sync_runs.started_at")


def downgrade() -> None:
    op.drop_column("sync_runs", "created_through_id")
    op.drop_column("sync_runs", "created_after_id")
