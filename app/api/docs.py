"""Swagger UI's files, served by the app itself so that /docs works offline.

flask-smorest renders the /docs page but expects its scripts and stylesheet
to come from a CDN; the hosts this service runs on have no internet access,
so the page would stay blank. The files come from the pinned
``swagger_ui_bundle`` package instead and are served here, under the prefix
that OPENAPI_SWAGGER_UI_URL (config.py) points the page at.

A plain Flask blueprint, not a flask-smorest one: static files do not belong
in the OpenAPI document. Its name, ``docs``, is what the auth hook lets
through without a token (app/web/auth.py): these files carry no patient data.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__, url_prefix="/docs/assets")

# Only what flask-smorest's swagger_ui.html loads (plus the source maps that
# browser dev tools ask for). The bundle directory also holds Swagger UI's own
# demo index.html, which points at the public petstore; it is not served.
# Content types are fixed here rather than guessed from /etc/mime.types, which
# differs between hosts.
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css.map": "application/json",
    "swagger-ui-bundle.js.map": "application/json",
    "swagger-ui-standalone-preset.js.map": "application/json",
}

# The URLs carry no version, so a newer bundle must reach browsers without a
# hard refresh: cache for a day, then revalidate cheaply with the ETag that
# send_from_directory sets (a 304 with no body).
MAX_AGE = 24 * 60 * 60


@bp.get("/<filename>")
def asset(filename: str) -> Response:
    """Serve one Swagger UI file; anything not in ASSETS is a 404."""
    mimetype = ASSETS.get(filename)
    if mimetype is None:
        abort(404)
    return send_from_directory(swagger_ui_path, filename, mimetype=mimetype, max_age=MAX_AGE)
