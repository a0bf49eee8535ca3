"""Rate limits per token (per client address when auth is off), SPEC §4.

Two budgets, each shared by every endpoint it covers, split by the scope a
request needs (app/web/auth.py): syncs (RATELIMIT_SYNC, write scope) and reads
(RATELIMIT_READ, read scope); open endpoints spend neither. A third, per
client address, counts failed authentications (RATELIMIT_AUTH_FAILURES; see
init_rate_limits). Counters live in RATELIMIT_STORAGE_URI: in memory by
default (per process), Redis when several processes or hosts serve and must
share one budget. RATELIMIT_ENABLED=false turns all three off.

Built on the ``limits`` library directly: Flask-Limiter, which we used
before, spent a quarter of a cached read's Python work (about 1.0 of 4.2
million instructions per request, callgrind) deciding which of its limits
apply; here the scope already says.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from app.errors import APIError
from app.web.auth import Scope, add_failure_hook, required_scope

log = logging.getLogger(__name__)

AUTH_FAILURE_SCOPE = "auth-failures"
READ_BUDGET = "read_budget"
# A streamed export spends one read for each this many rows it sends (the request
# itself paid for the first ones).
EXPORT_ROWS_PER_READ = 1000
# How long counters stay in memory after the storage failed, before it is tried again.
STORAGE_RETRY_SECONDS = 10.0
# How often in-memory counters whose window has ended are dropped.
SWEEP_SECONDS = 1.0


def init_rate_limits(app: Flask) -> None:
    """Charge each request to its budget; call after init_auth so a request is identified first."""
    config = app.config
    if not config["RATELIMIT_ENABLED"]:
        return
    counters = Counters(config["RATELIMIT_STORAGE_URI"], config["RATELIMIT_KEY_PREFIX"])
    budgets = {
        Scope.WRITE: Budget("sync", "syncs", config["RATELIMIT_SYNC"]),
        Scope.READ: Budget("read", "reads", config["RATELIMIT_READ"]),
    }

    app.extensions[READ_BUDGET] = (budgets[Scope.READ], counters)

    @app.before_request
    def spend_budget() -> None:
        scope = required_scope()
        if scope is None:
            return
        charged: Charge | None = request.environ.get(CHARGED)
        if charged is None:
            budgets[scope].spend(counters, client_key())
        elif charged.refill is not None:
            budgets[scope].refuse(charged.refill)

    # Only failures are counted and refused, per address: tokens are high-entropy, so
    # the budget bounds the work and log volume a stranger causes, and a valid token
    # always passes, even from an address whose budget a neighbour (same NAT) spent.
    failures = Budget(
        AUTH_FAILURE_SCOPE, "failed authentications", config["RATELIMIT_AUTH_FAILURES"]
    )
    add_failure_hook(app, lambda: failures.spend(counters, address_key()))


@dataclass(frozen=True)
class Charge:
    """A read already charged to its budget by a layer in front of Flask (app/api/fast_pages.py),
    which then left the request to Flask: its refill time if it did not fit, else None."""

    refill: float | None


# The WSGI environ key of a Charge: Flask's hook charges such a request no second time.
CHARGED = "app.rate_limits.charged"


class Counters:
    """Fixed-window counters in the configured storage, or in memory while it is unreachable.

    An unreachable Redis must not take the API down: after a storage error
    every budget counts in this process's memory for STORAGE_RETRY_SECONDS,
    then the storage is tried again.
    """

    def __init__(self, storage_uri: str, key_prefix: str) -> None:
        storage = storage_from_string(storage_uri)
        if type(storage) is MemoryStorage:
            storage = SweptMemoryStorage()
        driver = storage.base_exceptions
        self._errors = (StorageError, *(driver if isinstance(driver, tuple) else (driver,)))
        self._shared = FixedWindowRateLimiter(storage)
        self._memory = FixedWindowRateLimiter(SweptMemoryStorage())
        self._shared_down_until = 0.0
        self._prefix = (key_prefix,) if key_prefix else ()

    def spend(self, item: RateLimitItem, key: str, scope: str) -> float | None:
        """Count one request of ``key`` against ``item``: None if it fits, else when it refills.

        The refill time is a Unix time.
        """
        identifiers = (*self._prefix, key, scope)
        if time.monotonic() >= self._shared_down_until:
            try:
                return _spend(self._shared, item, identifiers)
            except self._errors:
                log.warning(
                    "Rate limit storage unreachable - counting in memory for %.0f s",
                    STORAGE_RETRY_SECONDS,
                )
                self._shared_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        return _spend(self._memory, item, identifiers)


class SweptMemoryStorage(MemoryStorage):
    """The limits library's in-memory counters, their ended windows dropped by the counting thread.

    MemoryStorage starts a timer thread on a hit whenever its previous one
    has ended (10 ms later), so under load nearly every request started a
    thread: 9% of a worker's Python time on uncached pages under gunicorn
    (py-spy). Here a hit drops the counters whose window has ended itself,
    at most once per SWEEP_SECONDS, so memory stays bounded by the keys one
    window and one sweep interval see, as before.
    """

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = 0.0
        self._sweeping = threading.Lock()

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        """Count ``amount`` more for ``key``; a new window ends ``expiry`` seconds from now."""
        self._sweep()
        self.get(key)  # drops the key's counter if its window has ended
        with self.locks[key]:
            self.storage[key] += amount
            if self.storage[key] == amount:
                self.expirations[key] = time.time() + expiry
        return self.storage.get(key, 0)

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._next_sweep = now + SWEEP_SECONDS
            for key, ends in list(self.expirations.items()):
                if ends <= now:
                    self.storage.pop(key, None)
                    self.expirations.pop(key, None)
                    self.locks.pop(key, None)
        finally:
            self._sweeping.release()


def _spend(
    strategy: FixedWindowRateLimiter, item: RateLimitItem, identifiers: tuple[str, ...]
) -> float | None:
    if strategy.hit(item, *identifiers):
        return None
    return strategy.get_window_stats(item, *identifiers).reset_time


class Budget:
    """One budget (a RATELIMIT_* value): how many requests of one kind a client may make."""

    def __init__(self, scope: str, what: str, limits: str) -> None:
        self._scope = scope
        self._items: list[RateLimitItem] = parse_many(limits)
        self._message = (
            f"Too many {what} for this client: the budget is {limits}. "
            "Retry after the number of seconds in the Retry-After header."
        )

    def spend(self, counters: Counters, key: str) -> None:
        """Charge one request to ``key``; 429 rate_limited with Retry-After once it is spent."""
        refill = self.try_spend(counters, key)
        if refill is not None:
            self.refuse(refill)

    def refuse(self, refill: float) -> None:
        """Raise the 429 rate_limited of a spent budget that refills at ``refill`` (a Unix time)."""
        raise APIError(
            429,
            "rate_limited",
            self._message,
            headers={"Retry-After": str(_seconds_until(refill))},
        )

    def try_spend(self, counters: Counters, key: str) -> float | None:
        """Charge one request to ``key``: None if it fits, else when it refills (a Unix time)."""
        for item in self._items:
            refill = counters.spend(item, key, self._scope)
            if refill is not None:
                return refill
        return None


class ExportMeter:
    """What a streamed export spends: one read per EXPORT_ROWS_PER_READ rows it sends.

    Built in the view (it knows the client), called by the response's
    generator with each batch's row count before the batch is sent. The
    request paid for its first EXPORT_ROWS_PER_READ rows; each further
    thousand, begun, spends one read of the same budget as every other read
    of the client. When the budget is spent, the export waits for it to
    refill (the client's other reads get 429 meanwhile): one token's exports
    move at its budget's pace, however large the listing, and never end
    half-written.
    """

    def __init__(
        self,
        charge: Callable[[], float | None] | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._charge = charge
        self._sleep = sleep
        self.rows = 0
        self.reads = 1  # the request's own

    def count(self, rows: int) -> None:
        """Count ``rows`` more rows about to be sent; wait while the budget is spent."""
        self.rows += rows
        due = max(1, math.ceil(self.rows / EXPORT_ROWS_PER_READ))
        while self.reads < due:
            refill = None if self._charge is None else self._charge()
            if refill is None:
                self.reads += 1
            else:
                self._sleep(max(0.05, refill - time.time()))


def export_meter() -> ExportMeter:
    """The meter of the current request's export (it charges nothing when limits are off)."""
    budget = current_app.extensions.get(READ_BUDGET)
    if budget is None:
        return ExportMeter(None)
    read, counters = budget
    key = client_key()
    return ExportMeter(lambda: read.try_spend(counters, key))


def client_key() -> str:
    """Whose budget a request spends: its token's principal, else its client address."""
    principal = g.get("principal")
    return budget_key(None if principal is None else principal.name, request.remote_addr)


def budget_key(principal: str | None, remote_addr: str | None) -> str:
    """The budget of the token named ``principal``, else of the client address."""
    return f"addr:{remote_addr}" if principal is None else f"token:{principal}"


def address_key() -> str:
    """The budget key of the current request's client address."""
    return f"addr:{request.remote_addr}"


def _seconds_until(reset_at: float) -> int:
    """Whole seconds from now until ``reset_at`` (a Unix time), at least 1."""
    return max(1, math.ceil(reset_at - time.time()))
