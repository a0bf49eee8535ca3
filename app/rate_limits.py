"""Rate limits per token (per client address when auth is off), SPEC §4.

Two budgets, each shared by every endpoint it covers, split by the scope a
request needs (app/auth.py): syncs (RATELIMIT_SYNC, write scope) and reads
(RATELIMIT_READ, read scope); open endpoints spend neither. A third, per
client address, counts failed authentications (RATELIMIT_AUTH_FAILURES; see
AuthFailureBudget). Counters live in RATELIMIT_STORAGE_URI: in memory by
default (per process), Redis when several processes or hosts serve and must
share one budget. RATELIMIT_ENABLED=false turns all three off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from operator import methodcaller
from typing import TypeVar

from flask import Flask, Response, g, request
from flask_limiter import ApplicationLimit, Limiter, RequestLimit
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.strategies import RateLimiter

from app.auth import Scope, add_failure_hook, required_scope
from app.errors import APIError

log = logging.getLogger(__name__)

AUTH_FAILURE_SCOPE = "auth-failures"
T = TypeVar("T")


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
    if limiter.enabled:
        budget = AuthFailureBudget(limiter, config["RATELIMIT_AUTH_FAILURES"],
                                   config["RATELIMIT_KEY_PREFIX"])
        add_failure_hook(app, budget.spend)


class AuthFailureBudget:
    """Failed authentications per client address (RATELIMIT_AUTH_FAILURES), SPEC §4.

    Each request that fails authentication (no, a malformed or an unknown
    token) spends one unit of its address's budget; once it is spent, failing
    requests get 429 instead of 401 until the window refills. Tokens are
    high-entropy, so guessing one is hopeless anyway: the budget bounds the
    work and the log volume a stranger causes. Only failures are counted and
    refused, so a request with a valid token always passes, even from an
    address whose budget a neighbour (behind the same NAT) has spent.

    The counters share the Limiter's storage, strategy and key prefix, and its
    switch to in-memory counting while that storage is unreachable.
    """

    def __init__(self, limiter: Limiter, limits: str, key_prefix: str) -> None:
        self._limiter = limiter
        self._budget = limits
        self._items: list[RateLimitItem] = parse_many(limits)
        # Keys laid out as Flask-Limiter lays out its own: [prefix,] key, scope.
        self._prefix = (key_prefix,) if key_prefix else ()
        self._storage_errors = _storage_errors(limiter)

    def spend(self) -> None:
        """Charge the current request's failure to its address; 429 once the budget is spent."""
        identifiers = (*self._prefix, address_key(), AUTH_FAILURE_SCOPE)
        for item in self._items:
            if not self._with_strategy(methodcaller("hit", item, *identifiers)):
                stats = self._with_strategy(methodcaller("get_window_stats", item, *identifiers))
                raise APIError(429, "rate_limited",
                               _breach_message("failed authentications", self._budget),
                               headers={"Retry-After": str(_seconds_until(stats.reset_time))})

    def _with_strategy(self, action: Callable[[RateLimiter], T]) -> T:
        """Run ``action`` on the Limiter's strategy; on a storage error, switch to memory.

        The switch is Flask-Limiter's own (its ``limiter`` property then returns
        the in-memory fallback, and it probes the storage to switch back), so
        every budget falls back and recovers together. A failed authentication
        never reaches the Limiter's own check, hence the flag is set here. The
        retry cannot reach the storage again: init_rate_limits enables the fallback.
        """
        try:
            return action(self._limiter.limiter)
        except self._storage_errors:
            log.warning("Rate limit storage unreachable - falling back to in-memory storage")
            self._limiter._storage_dead = True
            return action(self._limiter.limiter)


def client_key() -> str:
    """Whose budget a request spends: its token's principal, else its client address."""
    principal = g.get("principal")
    if principal is not None:
        return f"token:{principal.name}"
    return address_key()


def address_key() -> str:
    """The budget key of the current request's client address."""
    return f"addr:{request.remote_addr}"


def _storage_errors(limiter: Limiter) -> tuple[type[Exception], ...]:
    """What the storage raises when unreachable: its driver's errors, or them wrapped."""
    driver = limiter.storage.base_exceptions
    return (StorageError, *(driver if isinstance(driver, tuple) else (driver,)))


def _breach_message(budget: str, limit: str) -> str:
    return (f"Too many {budget} for this client: the budget is {limit}. "
            "Retry after the number of seconds in the Retry-After header.")


def _remember_breach(limit: RequestLimit) -> None:
    g.rate_limit_breach = limit


def _add_retry_after(response: Response) -> Response:
    """Tell a limited client when its budget refills (whole seconds, at least 1)."""
    breach: RequestLimit | None = g.get("rate_limit_breach")
    if response.status_code == 429 and breach is not None:
        response.headers["Retry-After"] = str(_seconds_until(breach.reset_at))
    return response


def _seconds_until(reset_at: float) -> int:
    """Whole seconds from now until ``reset_at`` (a Unix time), at least 1."""
    return max(1, math.ceil(reset_at - time.time()))


def _unless(scope: Scope) -> Callable[[], bool]:
    """Exempt every request that does not need ``scope`` (open endpoints need none)."""
    return lambda: required_scope() is not scope
