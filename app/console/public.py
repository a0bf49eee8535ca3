"""Sign-in, sign-out and the stylesheet: the console's only parts reachable without a token.

A blueprint of its own nested in the console's ("console.public"), so that
app/web/auth.py lets it through (OPEN_BLUEPRINTS) while the console's headers
and error pages still apply. Nothing here shows patient data.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for

from app.console import session
from app.console.errors import SignInRequired
from app.web.auth import BEARER_CHALLENGE, run_failure_hooks, token_registry

public = Blueprint("public", __name__, static_folder="static", static_url_path="/static")


@public.get("/sign-in")
def sign_in() -> str:
    """The sign-in form."""
    return render_template("console/sign_in.html", next=_next_page(), csrf=session.csrf_token())


@public.post("/sign-in")
def submit_sign_in() -> Response | tuple[str, int]:
    """Check the token from the form body; start a session, or show the form again (401)."""
    session.check_csrf()
    registry = token_registry(current_app)
    if not registry.enabled:
        return redirect(url_for("console.show_overview"), 303)
    if session.sign_in(registry, request.form.get("token", "").strip()) is None:
        # The rate limiter charges the failure (and answers 429 once the budget is spent).
        run_failure_hooks()
        return render_template(
            "console/sign_in.html",
            next=_next_page(),
            csrf=session.csrf_token(),
            error="That token is not valid.",
        ), 401
    return redirect(_next_page() or url_for("console.show_overview"), 303)


@public.post("/sign-out")
def submit_sign_out() -> Response:
    """End the session and go back to the sign-in form."""
    session.check_csrf()
    session.sign_out()
    return redirect(url_for("console.public.sign_in"), 303)


def ask_to_sign_in(error: SignInRequired) -> tuple[str, int, dict[str, str]]:
    """A console page asked for without a credential: 401, as the API answers, with the form.

    No data, and signing in comes back to the page that was asked for.
    """
    back_to = request.full_path.rstrip("?") if request.method == "GET" else None
    return (
        render_template("console/sign_in.html", next=back_to, csrf=session.csrf_token()),
        401,
        {"WWW-Authenticate": BEARER_CHALLENGE},
    )


def _next_page() -> str | None:
    """Where to go after signing in: a console path of this site only, never another host.

    A target with a control character (CR, LF, NUL...) is no path we link
    to, and a header cannot carry CR or LF: it is dropped, not sent.
    """
    target = request.values.get("next", "")
    if not target.isprintable():
        return None
    parts = urlsplit(target)
    console = url_for("console.show_overview")
    if parts.scheme or parts.netloc or not target.startswith(console) or "\\" in target:
        return None
    return target
