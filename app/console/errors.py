"""The console's errors: HTML pages with the right status, never JSON, never a 500 for input.

Registered on the console blueprint, so they answer for its pages only (the
API keeps its JSON envelope), and before the app's own handlers: Flask
picks a blueprint's handler for the same class first.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, Response, render_template
from werkzeug.exceptions import HTTPException

from app.errors import DATABASE_RETRY_AFTER, DATABASE_UNAVAILABLE, APIError
from app.extensions import db
from app.reads.paging import CursorError

log = logging.getLogger(__name__)


class ConsoleError(Exception):
    """A page that cannot be shown: its status, a short title and what to do about it."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message

    @classmethod
    def bad_input(cls, message: str) -> ConsoleError:
        """400: a form value the console cannot use."""
        return cls(400, "That input cannot be used", message)

    @classmethod
    def not_found(cls, message: str) -> ConsoleError:
        """404: nothing by that id."""
        return cls(404, "Not found", message)


class SignInRequired(Exception):
    """The request carries no usable credential: answer 401 with the sign-in form."""


def register_error_pages(bp: Blueprint) -> None:
    """Answer every failure of the console's pages with an HTML page."""

    @bp.errorhandler(ConsoleError)
    def console_error(error: ConsoleError) -> tuple[str, int]:
        return render_template(
            "console/error.html", title=error.title, message=error.message
        ), error.status

    @bp.errorhandler(CursorError)
    def cursor_error(error: CursorError) -> tuple[str, int]:
        # A page link that is not ours, or one whose history was pruned since.
        return render_template(
            "console/error.html", title="Bad request", message=error.message
        ), 400

    @bp.errorhandler(APIError)
    def api_error(error: APIError) -> tuple[str, int, dict[str, str]]:
        # A bad bearer token (401), a spent failure budget (429), a malformed cursor (422).
        return (
            render_template(
                "console/error.html",
                title=_TITLES.get(error.status, "Error"),
                message=error.message,
            ),
            error.status,
            error.headers,
        )

    def database_unavailable(error: sa.exc.SQLAlchemyError) -> tuple[str, int, dict[str, str]]:
        log.warning("database unavailable: %s", type(getattr(error, "orig", error)).__name__)
        _rollback_quietly()
        return (
            render_template(
                "console/error.html",
                title="Database unavailable",
                message="The database cannot be reached; try again shortly.",
            ),
            503,
            {"Retry-After": DATABASE_RETRY_AFTER},
        )

    for error_class in DATABASE_UNAVAILABLE:
        bp.register_error_handler(error_class, database_unavailable)
    _register_http_errors(bp)


def _register_http_errors(bp: Blueprint) -> None:
    """Werkzeug's errors (404, 405, a rate limit's 429) and anything unexpected."""

    @bp.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        response = error.get_response()
        status = error.code or 500
        body = render_template(
            "console/error.html",
            title=_TITLES.get(status, error.name),
            message=_MESSAGES.get(status, error.description or ""),
        )
        page = Response(body, status=status, content_type="text/html; charset=utf-8")
        for name in ("Allow", "Retry-After"):
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    @bp.errorhandler(Exception)
    def unexpected(error: Exception) -> tuple[str, int]:
        log.exception("unhandled console error")
        _rollback_quietly()
        return render_template(
            "console/error.html",
            title="Something went wrong",
            message="An internal error occurred; it has been logged.",
        ), 500


_TITLES = {
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    422: "That input cannot be used",
    429: "Too many requests",
}
_MESSAGES = {
    404: "There is no console page at this address.",
    405: "The console is read-only: this address does not take that method.",
    429: "Too many requests from this client; wait a moment and try again.",
}


def _rollback_quietly() -> None:
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        log.warning("rollback failed after an error")
