"""The database seam: column types, the engine's setup, the database's clock, and the
Dialect, the one place that knows PostgreSQL from SQLite (docs/architecture.md,
"Differences between databases").

Code above this package asks ``dialect_of(bind)`` for a named behaviour (a
lock, a soft delete, a JSON expression, the clock) and never compares
dialect names. The models (app/models.py) and the Flask-SQLAlchemy instance
(app/extensions.py) stay where they are: everything imports them, and they
hold no difference between databases.
"""
