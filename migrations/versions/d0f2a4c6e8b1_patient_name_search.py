"""patients.name_search: each patient's folded "first last" under a trigram index (PostgreSQL)

The console finds a patient by name, case- and accent-insensitively, by
any part of the first or last name (issue 22). pg_trgm's GIN index answers
``LIKE '%…%'`` from trigrams. It indexes a stored generated column rather
than an expression: ``unaccent`` is only STABLE, so it is wrapped in an
IMMUTABLE SQL function (``pp_fold``, every name schema-qualified so that a
restore with an empty search_path computes the same values), and that
function, which PostgreSQL cannot inline, costs about 5 µs a call. An
expression index would pay it again on every row its scan rechecks
(about 90 ms for a common three letters at 100k patients, measured) and on
every row a one- or two-letter search reads without the index; the column
pays it once per written row and a search reads plain text (docs/console.md
has the sizes and timings). Adding the column rewrites the table once.

SQLite has no column: the app registers a Python ``pp_fold`` on each
connection (app/db/names.py) and a search scans.

Revision ID: d0f2a4c6e8b1
Revises: c9e1f3a5b7d9
Create Date: 2026-12-07 03:20:00
"""

from alembic import op

revision = "d0f2a4c6e8b1"
down_revision = "c9e1f3a5b7d9"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Both are trusted extensions (PostgreSQL 13+): the database's owner may create them.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent WITH SCHEMA public")
    op.execute(
        """
        CREATE FUNCTION public.pp_fold(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
        AS $$ SELECT pg_catalog.lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$
        """
    )
    op.execute(
        "ALTER TABLE patients ADD COLUMN name_search text "
        "GENERATED ALWAYS AS (public.pp_fold(first_name || ' ' || last_name)) STORED"
    )
    op.execute(
        "CREATE INDEX ix_patients_name_search_trgm ON patients "
        "USING gin (name_search public.gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_patients_name_search_trgm")
    op.execute("ALTER TABLE patients DROP COLUMN name_search")
    op.execute("DROP FUNCTION public.pp_fold(text)")
    # The extensions stay: other objects of the database may use them.
