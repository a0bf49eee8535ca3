"""Who is signed in to the console: a signed cookie holding a token's digest, never the token.

The cookie is Flask's session (signed with SECRET_KEY; HttpOnly,
SameSite=Strict, Secure in production: config.py). It keeps the SHA-256
digest of the token the person signed in with, so the cookie never carries
the token, and removing that token from the configuration ends every session
made with it. A per-session CSRF token guards the sign-in and sign-out forms.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets

from flask import Flask, request, session

from app.auth import Principal, TokenRegistry, bearer_principal, token_digest
from app.console.errors import ConsoleError, SignInRequired

_DIGEST = "token_sha256"
_CSRF = "csrf"
SECRET_FILE = "console_secret_key"


def instance_secret(instance_path: str) -> str:
    """The development secret kept in the instance folder, made on first use.

    Written to a temporary file and linked into place, so that several
    gunicorn workers starting at once all end up with the one secret.
    """
    path = os.path.join(instance_path, SECRET_FILE)
    if not os.path.exists(path):
        staged = f"{path}.{os.getpid()}.tmp"
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(staged, path)
        os.unlink(staged)
    with open(path) as handle:
        return handle.read().strip()


def use_instance_secret(app: Flask) -> None:
    """Give ``app`` a SECRET_KEY when none is configured (production refuses to start instead)."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret(app.instance_path)


def console_principal(registry: TokenRegistry) -> Principal:
    """Who makes a console request: its bearer token if it sends one, else its session.

    A bad bearer token is a failed authentication (401, charged to the
    address's budget); no credential at all just needs signing in.
    """
    if request.headers.get("Authorization"):
        return bearer_principal(registry)
    digest = session.get(_DIGEST)
    principal = None
    if isinstance(digest, str):
        with contextlib.suppress(ValueError):
            principal = registry.identify_digest(bytes.fromhex(digest))
    if principal is None:
        raise SignInRequired()
    return principal


def signed_in() -> bool:
    """Whether the current request's session names a token (checked by console_principal)."""
    return _DIGEST in session


def sign_in(registry: TokenRegistry, token: str) -> Principal | None:
    """Start a session for ``token`` if it is a configured one; a fresh session either way."""
    principal = registry.identify(token)
    if principal is not None:
        # A new session (new CSRF token) on every sign-in: nothing carries over.
        session.clear()
        session.permanent = True
        session[_DIGEST] = token_digest(token).hex()
        session[_CSRF] = secrets.token_urlsafe(32)
    return principal


def sign_out() -> None:
    """End the session."""
    session.clear()


def csrf_token() -> str:
    """The session's CSRF token for a form, made when the session has none."""
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = session[_CSRF] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """400 unless the form's csrf field matches the session's token."""
    expected = session.get(_CSRF)
    sent = request.form.get(_CSRF, "")
    if not (isinstance(expected, str) and hmac.compare_digest(expected.encode(), sent.encode())):
        raise ConsoleError.bad_input("The form expired or did not come from this console; "
                                     "load the page again and resubmit.")
