"""The console (SPEC §7): read-only pages for people over the replica, its syncs and its history.

Served by the app at /console: HTML rendered on the server, charts as SVG,
one stylesheet, no script. It needs a read token exactly like the API
(open, with a warning on every page, when auth is off in development); a
person signs in once with the token and gets a session cookie that holds
only its digest (session.py), scripts may send the bearer header instead.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app

from app.console.args import INSTANT_EXAMPLE
from app.console.blueprint import bp
from app.console.errors import SignInRequired, register_error_pages
from app.console.formatting import HELPERS
from app.console.public import ask_to_sign_in, public
from app.console.session import console_principal, csrf_token, signed_in, use_instance_secret
from app.console.views import RestOfPath  # importing the views registers the pages on bp
from app.web.auth import add_authenticator, token_registry

# No script at all, styles and images from this site only, no framing, forms post here only.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    # Pages hold patient data: no copy in any cache, shared or private.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

bp.register_blueprint(public)
register_error_pages(bp)
bp.register_error_handler(SignInRequired, ask_to_sign_in)


@bp.after_request
def add_security_headers(response: Response) -> Response:
    """The same strict headers on every console response, redirects and errors included."""
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.context_processor
def page_context() -> dict[str, Any]:
    """What the layout needs: whether auth is off (the warning), the sign-out form, and
    the formatting helpers."""
    auth_on = token_registry(current_app).enabled
    return {
        "auth_off": not auth_on,
        "signed_in": auth_on and signed_in(),
        "csrf_token": csrf_token,
        "instant_example": INSTANT_EXAMPLE,
        **HELPERS,
    }


def init_console(app: Flask) -> None:
    """Serve the console on ``app``: its secret, its blueprint, and its own authentication."""
    use_instance_secret(app)
    app.url_map.converters["console_rest"] = RestOfPath
    app.register_blueprint(bp)
    add_authenticator(app, bp.name, console_principal)
