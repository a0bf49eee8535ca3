"""async syncs: sync_runs.state, the queue, stored uploads, the order syncs were applied in

SPEC §2, asynchronous syncs. A sync POST with ``Prefer: respond-async`` is
recorded ``queued`` at acceptance (its id allotted then) with its body in
``sync_uploads``; ``flask syncs worker`` applies it later. Every sync has a
``state``: existing rows were applied (or dry runs), so the server default
is 'applied'.

Ids follow acceptance, but an accepted sync may be applied after a later
one, so the feed (``GET /syncs?after=``, the event relay) follows
``applied_seq``, given under the sync lock when a sync is recorded finished.
Existing syncs were applied in id order: their ``applied_seq`` is their id,
and the relay's stored position gets the same (``sync_seq``), so it resumes
where it stood.

``sync_uploads.chunk`` is stored EXTERNAL on PostgreSQL: the parts are gzip
already, and TOAST's own compression would only spend CPU failing to shrink
them.

Revision ID: c9e1f3a5b7d9
Revises: b8c0d2e4f6a8
Create Date: 2026-12-07 03:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c9e1f3a5b7d9"
down_revision = "b8c0d2e4f6a8"
branch_labels = None
depends_on = None

UNFINISHED = "state IN ('queued', 'running')"


def upgrade() -> None:
    op.add_column(
        "sync_runs",
        sa.Column("state", sa.String(16), server_default="applied", nullable=False),
    )
    op.add_column("sync_runs", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sync_runs", sa.Column("applied_seq", sa.BigInteger(), nullable=True))
    op.add_column("sync_runs", sa.Column("force", sa.Boolean(), nullable=True))
    op.add_column("sync_runs", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.execute("UPDATE sync_runs SET applied_seq = id")
    op.create_index("ix_sync_runs_applied_seq", "sync_runs", ["applied_seq"], unique=True)
    op.create_index(
        "ix_sync_runs_unfinished",
        "sync_runs",
        ["id"],
        postgresql_where=sa.text(UNFINISHED),
        sqlite_where=sa.text(UNFINISHED),
    )
    op.create_table(
        "sync_uploads",
        sa.Column("sync_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sync_id"],
            ["sync_runs.id"],
            name=op.f("fk_sync_uploads_sync_id_sync_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sync_id", "part", name=op.f("pk_sync_uploads")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE sync_uploads ALTER COLUMN chunk SET STORAGE EXTERNAL")
    op.add_column(
        "event_relay_position",
        sa.Column("sync_seq", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.execute("UPDATE event_relay_position SET sync_seq = sync_id")


def downgrade() -> None:
    op.drop_column("event_relay_position", "sync_seq")
    op.drop_table("sync_uploads")
    op.drop_index("ix_sync_runs_unfinished", table_name="sync_runs")
    op.drop_index("ix_sync_runs_applied_seq", table_name="sync_runs")
    # Unfinished syncs have no report to keep; the rest lose their state only.
    op.execute("DELETE FROM sync_runs WHERE state IN ('queued', 'running')")
    for column in ("claimed_by", "force", "applied_seq", "accepted_at", "state"):
        op.drop_column("sync_runs", column)
