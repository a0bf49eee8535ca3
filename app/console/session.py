"""Who is signed in to the console: a signed cookie holding a token's digest, never the token.

The cookie is Flask's session (signed with SECRET_KEY; HttpOnly,
SameSite=Strict, Secure in production: config.py). It keeps the SHA-256
digest of the token the person signed in with, so the cookie never carries
the token, and removing that token from the configuration ends every session
made with it. A per-session CSRF token guards the sign-in and sign-out forms.

A signed cookie cannot be taken back, so the server keeps a row per session
too (console_sessions, keyed by the digest of a random id the cookie holds):
signing out deletes it, and a copy of the cookie taken before opens nothing
afterwards, on any app node, since the database is what they share (SPEC §7,
§8). Expiry is read on the database's clock, not an app host's.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, request, session

from app.console.errors import ConsoleError, SignInRequired
from app.db.clock import transaction_clock
from app.extensions import db
from app.models import ConsoleSession
from app.web.auth import Principal, TokenRegistry, bearer_principal, token_digest
from app.web.replicas import reading_sessions

_DIGEST = "token_sha256"
_CSRF = "csrf"
# The random id naming the session's row (by its digest) in console_sessions.
_SESSION_ID = "sid"
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
    if principal is None or not _session_is_open(session.get(_SESSION_ID)):
        # A signed-out (or expired) session's cookie: drop it, and ask to sign in.
        session.clear()
        raise SignInRequired()
    return principal


def signed_in() -> bool:
    """Whether the current request's session names a token (checked by console_principal)."""
    return _DIGEST in session


def sign_in(registry: TokenRegistry, token: str) -> Principal | None:
    """Start a session for ``token`` if it is a configured one; a fresh session either way."""
    principal = registry.identify(token)
    if principal is not None:
        # A new session (new id, new CSRF token) on every sign-in: nothing carries over.
        _end_session(session.get(_SESSION_ID))
        session.clear()
        session.permanent = True
        session[_SESSION_ID] = _open_session(current_app.permanent_session_lifetime)
        session[_DIGEST] = token_digest(token).hex()
        session[_CSRF] = secrets.token_urlsafe(32)
    return principal


def sign_out() -> None:
    """End the session: on the server (every copy of the cookie), then in this browser."""
    _end_session(session.get(_SESSION_ID))
    session.clear()


def _row_id(session_id: str) -> str:
    """The console_sessions key of a session id: its digest, so the table holds no cookie."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def _database_now(later_by: timedelta = timedelta(0)) -> sa.ColumnElement[datetime]:
    """``later_by`` after now on the database's clock, the one every app node shares (SPEC §8)."""
    return transaction_clock(db.session, later_by)


def _open_session(lifetime: timedelta) -> str:
    """A new session id, its row stored for ``lifetime``; expired rows are deleted on the way."""
    session_id = secrets.token_urlsafe(32)
    db.session.execute(
        sa.delete(ConsoleSession).where(ConsoleSession.expires_at <= _database_now())
    )
    db.session.execute(
        sa.insert(ConsoleSession).values(id=_row_id(session_id), expires_at=_database_now(lifetime))
    )
    db.session.commit()
    return session_id


def _session_is_open(session_id: object) -> bool:
    """Whether ``session_id`` (from the cookie) names a session not signed out nor expired."""
    if not isinstance(session_id, str):
        return False
    # On the primary, which has every sign-in and sign-out (a replica may not yet).
    with reading_sessions():
        found = db.session.execute(
            sa.select(ConsoleSession.id).where(
                ConsoleSession.id == _row_id(session_id),
                ConsoleSession.expires_at > _database_now(),
            )
        ).first()
    return found is not None


def _end_session(session_id: object) -> None:
    """Delete the row of ``session_id`` (from the cookie), if there is one."""
    if isinstance(session_id, str):
        db.session.execute(
            sa.delete(ConsoleSession).where(ConsoleSession.id == _row_id(session_id))
        )
        db.session.commit()


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
        raise ConsoleError.bad_input(
            "The form expired or did not come from this console; load the page again and resubmit."
        )
