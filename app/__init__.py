"""Patient Payments replica: a Flask app built by create_app()."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Flask

from config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, then apply ``test_config`` on top."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    configure_logging(app)
    register_json(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def configure_logging(app: Flask) -> None:
    """Log to stderr at INFO unless the host already configured logging."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Alembic announces its plugins at INFO whenever Flask-Migrate is imported.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def register_json(app: Flask) -> None:
    """Serialize Decimal amounts as exact JSON numbers."""
    from app.json import DecimalJSONProvider

    app.json = DecimalJSONProvider(app)


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations and the API to the app."""
    from app import models  # noqa: F401  (so Alembic sees every table)
    from app.extensions import api, db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    api.init_app(app)
    from app.api.cache import ResponseCache

    app.extensions["read_cache"] = ResponseCache(app.config["READ_CACHE_SIZE"])
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _use_explicit_sqlite_transactions(db.engine)


def register_blueprints(app: Flask) -> None:
    """Route and document every resource."""
    from app.api import register_blueprints as register
    from app.extensions import api

    register(api)


def register_error_handlers(app: Flask) -> None:
    """Every error becomes the JSON envelope."""
    from app.errors import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    """Add `flask sync ...`."""
    from app.cli import sync_cli

    app.cli.add_command(sync_cli)


def _use_explicit_sqlite_transactions(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not pysqlite, begin SQLite transactions.

    pysqlite starts transactions lazily and never around DDL, which breaks
    the sync's all-or-nothing guarantee (its staging tables are DDL) and
    SAVEPOINTs; this is SQLAlchemy's documented recipe.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")
