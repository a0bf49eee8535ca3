"""Rate limits per token (per client address when auth is off), SPEC §4.

Two budgets, each shared by every endpoint it covers, split by the scope a
request needs (app/auth.py): syncs (RATELIMIT_SYNC, write scope) and reads
(RATELIMIT_READ, read scope); open endpoints spend neither. Counters live in
RATELIMIT_STORAGE_URI: in memory by default (per process), Redis when several
processes or hosts serve and must share one budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit

from app.auth import Scope, required_scope


def init_rate_limits(app: Flask) -> None:
    """Bind a Limiter to ``app``; call after init_auth so a request is identified first.

    Flask-Limiter keeps its storage on the Limiter object, so each app gets its
    own instance (tests build apps with different storages side by side).
    """
    config = app.config
    limiter = Limiter(
        key_func=client_key,
        application_limits=[
            ApplicationLimit(config["RATELIMIT_SYNC"], scope="sync",
                             exempt_when=_unless(Scope.WRITE),
                             error_message=_breach_message("syncs", config["RATELIMIT_SYNC"])),
            ApplicationLimit(config["RATELIMIT_READ"], scope="read",
                             exempt_when=_unless(Scope.READ),
                             error_message=_breach_message("reads", config["RATELIMIT_READ"])),
        ],
        storage_uri=config["RATELIMIT_STORAGE_URI"],
        key_prefix=config["RATELIMIT_KEY_PREFIX"],
        # X-RateLimit-* headers on every response would cost one more storage
        # round trip per request (Redis: ~0.7 ms); 429s carry Retry-After.
        headers_enabled=False,
        on_breach=_remember_breach,
        # An unreachable Redis must not take the API down: count in memory
        # meanwhile, and log it (Flask-Limiter logs each storage error).
        swallow_errors=True,
        in_memory_fallback_enabled=True,
        enabled=config["RATELIMIT_ENABLED"],
    )
    app.after_request(_add_retry_after)
    limiter.init_app(app)


def client_key() -> str:
    """Whose budget a request spends: its token's principal, else its client address."""
    principal = g.get("principal")
    if principal is not None:
        return f"token:{principal.name}"
    return f"addr:{request.remote_addr}"


def _breach_message(budget: str, limit: str) -> str:
    return (f"Too many {budget} for this client: the budget is {limit}. "
            "Retry after the number of seconds in the Retry-After header.")


def _remember_breach(limit: RequestLimit) -> None:
    g.rate_limit_breach = limit


def _add_retry_after(response: Response) -> Response:
    """Tell a limited client when its budget refills (whole seconds, at least 1)."""
    breach: RequestLimit | None = g.get("rate_limit_breach")
    if response.status_code == 429 and breach is not None:
        seconds = max(1, math.ceil(breach.reset_at - time.time()))
        response.headers["Retry-After"] = str(seconds)
    return response


def _unless(scope: Scope) -> Callable[[], bool]:
    """Exempt every request that does not need ``scope`` (open endpoints need none)."""
    return lambda: required_scope() is not scope
