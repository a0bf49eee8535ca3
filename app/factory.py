"""The app factory: create_app() builds the Flask app from config, then registers each part."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from app.web.logs import configure_logging
from config import load_config, validate_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, then apply ``test_config`` on top."""
    # No static folder: the only static files are the docs assets (app/api/docs.py).
    app = Flask("app", instance_relative_config=True, static_folder=None)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(load_config(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    validate_config(app.config)
    configure_logging(app.config["LOG_LEVEL"])
    register_json(app)
    register_extensions(app)
    register_request_hooks(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_commands(app)
    return app


def register_json(app: Flask) -> None:
    """Serialize Decimal amounts as exact JSON numbers."""
    from app.web.json import DecimalJSONProvider

    app.json = DecimalJSONProvider(app)


def register_extensions(app: Flask) -> None:
    """Bind the database, migrations and the API to the app."""
    from app import models  # noqa: F401  (so Alembic sees every table)
    from app.api import openapi
    from app.db.engine import configure_engine
    from app.extensions import api, db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"))
    api.init_app(app, spec_kwargs=openapi.spec_kwargs())
    openapi.document_components(api)
    from app.api.cache import ResponseCache

    app.extensions["read_cache"] = ResponseCache(
        app.config["READ_CACHE_SIZE"], app.config["READ_CACHE_BYTES"]
    )
    with app.app_context():
        configure_engine(db.engine)


def register_request_hooks(app: Flask) -> None:
    """Request id and access log, metrics, then access control, rate limits, read routing.

    The order matters: hooks run in registration order (after-request hooks in
    reverse), so every response, a 401 or 429 included, gets its request id,
    log line and timing, and a request is identified before it is counted.
    """
    from app.api.converters import EncodedSlashes
    from app.api.fast_pages import PatientPagesFastPath
    from app.web.auth import init_auth
    from app.web.metrics import init_metrics
    from app.web.rate_limits import init_rate_limits
    from app.web.replicas import init_replicas
    from app.web.request_log import init_request_log

    # The plain first page of GET /patients is answered before Flask (app/api/fast_pages.py).
    app.wsgi_app = PatientPagesFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
    # An escaped slash inside an id must survive to routing (app/api/converters.py).
    app.wsgi_app = EncodedSlashes(app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXIES"]:
        # Client address and scheme from X-Forwarded-* set by our own proxies only.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=hops,
            x_proto=hops,  # type: ignore[method-assign]
            x_host=hops,
            x_prefix=hops,
        )
    init_request_log(app)
    init_metrics(app)
    init_auth(app)
    init_rate_limits(app)
    init_replicas(app)


def register_blueprints(app: Flask) -> None:
    """Route and document every resource; serve the /docs page's files and the console."""
    from app.api import docs
    from app.api import register_blueprints as register
    from app.api.converters import configure_url_map
    from app.console import init_console
    from app.extensions import api

    configure_url_map(app.url_map)
    register(api)
    # Through Flask, not the Api: static files have no place in the OpenAPI document.
    app.register_blueprint(docs.bp)
    # The console's HTML pages are not API endpoints either.
    init_console(app)
    # With replicas, a view whose replica fails runs again elsewhere (app/web/replicas.py).
    from app.web.replicas import retry_reads_elsewhere

    retry_reads_elsewhere(app)


def register_error_handlers(app: Flask) -> None:
    """Every error becomes the JSON envelope."""
    from app.api.error_handlers import register_error_handlers as register

    register(app)


def register_commands(app: Flask) -> None:
    """Add `flask sync ...`, `flask history ...`, `flask syncs worker` and `flask events relay`."""
    from app.cli import history_cli, sync_cli, syncs_cli
    from app.events.cli import events_cli

    app.cli.add_command(sync_cli)
    app.cli.add_command(history_cli)
    app.cli.add_command(syncs_cli)
    app.cli.add_command(events_cli)
