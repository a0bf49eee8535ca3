"""data_version: one token that names the state of the replica's tables

The read cache and ETags key on it (SPEC §4: reads are never stale). Triggers
replace the token with a fresh random one on every change to patients,
payments or sync_runs, by any route: a sync, a manual UPDATE, a TRUNCATE, a
data migration. Random, not a counter, so that a value is never reused: after
a restore from an older backup or a sequence restart a counter (or
max(sync_runs.id)) would name a state the replica already had before, with
different data. A restored backup brings its own token, which names exactly
the state it restores.

PostgreSQL: one statement-level trigger per table and operation (TRUNCATE
included), so a sync pays one small UPDATE per statement, not per row. The
triggers run BEFORE the statement, so every writer takes the data_version
row lock before any row lock of these tables: concurrent writers (a manual
repair during a sync) queue on it instead of deadlocking.
SQLite has only row-level triggers and no TRUNCATE; the development database
pays one tiny UPDATE per changed row.

Revision ID: 9a3b5c7d1e2f
Revises: 7d1e2f3a4b5c
Create Date: 2026-11-29 23:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "9a3b5c7d1e2f"
down_revision = "7d1e2f3a4b5c"
branch_labels = None
depends_on = None

TABLES = ("patients", "payments", "sync_runs")

PG_FUNCTION = """
CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO data_version (id, token) VALUES (1, gen_random_uuid()::text)
    ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token;
    RETURN NULL;
END $$
"""

SQLITE_NEW_TOKEN = "lower(hex(randomblob(16)))"


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_data_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_version")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("INSERT INTO data_version (id, token) VALUES (1, gen_random_uuid()::text)")
        op.execute(PG_FUNCTION)
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_bump_data_version "
                       f"BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version()")
        return
    op.execute(f"INSERT INTO data_version (id, token) VALUES (1, {SQLITE_NEW_TOKEN})")
    for table in TABLES:
        for event in ("INSERT", "UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_{event.lower()}_bumps_data_version "
                       f"AFTER {event} ON {table} BEGIN "
                       f"UPDATE data_version SET token = {SQLITE_NEW_TOKEN} WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_bump_data_version ON {table}")
        op.execute("DROP FUNCTION bump_data_version()")
    else:
        for table in TABLES:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_{event}_bumps_data_version")
    op.drop_table("data_version")
