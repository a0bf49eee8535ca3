"""data_version.counter: the data version's position, so replicas can be compared with it

Streaming replicas (SPEC §8) answer reads as of the changes they have
replayed. A client that saw one state must never be answered from an older
one, so every answer names its state's position: a counter that the
data-version triggers of migrations 9a3b5c7d1e2f and c3d5e7f9a1b3 raise by
one on every change, under the data_version row lock (so in commit order),
and that replicates with the data. A replica has replayed a position once
its own counter reaches it. The token stays random for what it was made
for (a value never reused, even after a restore from an older backup) and
now begins with the counter: ``<counter>.<random>``, so whatever carries a
token (a cursor's pin, an ETag's key) carries its position too.

Revision ID: e1a3c5e7f9b2
Revises: d0f2a4c6e8b1
Create Date: 2026-12-07 03:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "e1a3c5e7f9b2"
down_revision = "d0f2a4c6e8b1"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_version (id, token, counter) VALUES (1, '1.' || gen_random_uuid()::text, 1)
    ON CONFLICT (id) DO UPDATE SET counter = data_version.counter + 1,
        token = (data_version.counter + 1)::text || '.' || gen_random_uuid()::text;
    RETURN NULL;
END $$
"""

PG_OLD_FUNCTION = """
CREATE OR REPLACE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_version (id, token) VALUES (1, gen_random_uuid()::text)
    ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
    RETURN NULL;
END $$
"""

SQLITE_BUMP = (
    "UPDATE data_version SET counter = counter + 1, "
    "token = (counter + 1) || '.' || lower(hex(randomblob(16))) WHERE id = 1"
)
SQLITE_OLD_BUMP = "UPDATE data_version SET token = lower(hex(randomblob(16))) WHERE id = 1"
SUFFIX = "_bumps_data_version"


def upgrade() -> None:
    op.add_column(
        "data_version", sa.Column("counter", sa.BigInteger(), server_default="0", nullable=False)
    )
    op.execute("UPDATE data_version SET counter = 1, token = '1.' || token")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        return
    _replace_sqlite_triggers(SQLITE_BUMP)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_OLD_FUNCTION)
    else:
        _replace_sqlite_triggers(SQLITE_OLD_BUMP)
    # Not a batch (copy and rename) on SQLite: the triggers name data_version.
    op.execute("ALTER TABLE data_version DROP COLUMN counter")


def _replace_sqlite_triggers(body: str) -> None:
    """Give every data-version trigger (``<table>_<event>_bumps_data_version``) ``body``."""
    triggers = op.get_bind().execute(
        sa.text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :n"),
        {"n": f"%{SUFFIX}"},
    )
    for name, table in list(triggers):
        event = name[len(table) + 1 : -len(SUFFIX)].upper()
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {body}; END")
