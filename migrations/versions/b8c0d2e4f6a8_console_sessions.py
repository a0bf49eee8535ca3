"""console_sessions: the console's signed-in sessions, so that signing out ends one everywhere

A console session was a signed cookie alone: signing out cleared the
browser's copy, but any copy taken before went on opening every page until
it expired (SPEC §7). Each session now has a row here, keyed by the SHA-256
digest of a random id the cookie carries, inserted at sign-in and deleted
at sign-out; every console request checks it. The database is the state
every app node shares (SPEC §8), so a sign-out holds on all of them. No
data-version trigger: sessions are not replica data, and signing in must
not empty the read caches.

Revision ID: b8c0d2e4f6a8
Revises: a7b9c1d3e5f7
Create Date: 2026-12-07 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "b8c0d2e4f6a8"
down_revision = "a7b9c1d3e5f7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    # Expired sessions are deleted at each sign-in: a range of this index, not a scan.
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_expires_at", table_name="console_sessions")
    op.drop_table("console_sessions")
