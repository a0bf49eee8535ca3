"""Bearer-token access control (SPEC §4).

Tokens come from API_READ_TOKENS and API_WRITE_TOKENS; a write token can also
read. Every request is checked before routing reaches a view, so a new
endpoint is protected by default: only the blueprints in OPEN_BLUEPRINTS
(probes, API docs, metrics: no patient data) are reachable without a token,
and every method other than GET/HEAD/OPTIONS needs a write token. A blueprint
may authenticate its own way (add_authenticator): the console (app/console)
takes a signed-in session cookie as well as a bearer token.

A request that fails authentication gets 401, after the failure hooks other
modules register with add_failure_hook have run: app/web/rate_limits.py charges it
to the client address's auth-failure budget and answers 429 instead once that
is spent. Auth itself knows nothing of rate limits.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from flask import Flask, current_app, g, request

from app.errors import APIError

log = logging.getLogger(__name__)

# console.public: the console's sign-in form and its stylesheet (no patient data).
OPEN_BLUEPRINTS = frozenset({"health", "api-docs", "docs", "metrics", "console.public"})
# Blueprints that change nothing whatever the method: a POST to them needs a read token.
READ_ONLY_BLUEPRINTS = frozenset({"console"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a request without a token is told to send.
BEARER_CHALLENGE = 'Bearer realm="patient-payments"'
# app.extensions key of the hooks run on each failed authentication.
FAILURE_HOOKS = "auth_failure_hooks"
FailureHook = Callable[[], None]
# app.extensions keys: the TokenRegistry, and the authenticators of blueprints.
TOKENS = "auth_tokens"
AUTHENTICATORS = "auth_authenticators"


class Scope(IntEnum):
    """What a token may do; a higher scope includes the lower ones."""

    READ = 1
    WRITE = 2


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid token, named by a digest prefix that is safe to log."""

    name: str
    scope: Scope


class TokenRegistry:
    """The configured tokens, kept as SHA-256 digests and compared in constant time."""

    def __init__(self, read_tokens: tuple[str, ...], write_tokens: tuple[str, ...]) -> None:
        scopes = {token_digest(token): Scope.READ for token in read_tokens}
        # A token listed in both lists is a write token.
        scopes.update({token_digest(token): Scope.WRITE for token in write_tokens})
        self._scopes = list(scopes.items())

    @property
    def enabled(self) -> bool:
        """Whether any token is configured; without tokens auth is off (development only)."""
        return bool(self._scopes)

    def identify(self, token: str) -> Principal | None:
        """The principal for ``token``, or None when it is unknown.

        Digests have a fixed length, and every configured token is compared
        without stopping at a match, so timing reveals neither which token
        matched nor how much of one did.
        """
        return self.identify_digest(token_digest(token))

    def identify_digest(self, presented: bytes) -> Principal | None:
        """The principal whose token has the SHA-256 digest ``presented``, or None.

        For credentials that keep a digest rather than the token itself (the
        console's session): removing the token from the config revokes them.
        """
        found: Scope | None = None
        for digest, scope in self._scopes:
            if hmac.compare_digest(digest, presented):
                found = scope
        if found is None:
            return None
        return Principal(name=presented.hex()[:12], scope=found)


# Authenticates a request to a blueprint of its own (see add_authenticator).
Authenticator = Callable[[TokenRegistry], Principal]


def init_auth(app: Flask) -> None:
    """Check every request's token before it reaches a view."""
    registry = TokenRegistry(app.config["API_READ_TOKENS"], app.config["API_WRITE_TOKENS"])
    app.extensions[TOKENS] = registry
    if not registry.enabled:
        log.warning(
            "API_READ_TOKENS and API_WRITE_TOKENS are empty: access control is OFF; "
            "every client can read and sync (development only)"
        )

    @app.before_request
    def authenticate() -> None:
        g.principal = None
        required = required_scope()
        if required is None or not registry.enabled:
            return
        authenticator = current_app.extensions.get(AUTHENTICATORS, {}).get(
            (request.blueprint or "").split(".")[0], bearer_principal
        )
        try:
            principal = authenticator(registry)
        except APIError:
            run_failure_hooks()
            raise
        g.principal = principal
        if principal.scope < required:
            raise APIError(
                403,
                "forbidden",
                "This token may read but not sync.",
                headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
            )


def add_failure_hook(app: Flask, hook: FailureHook) -> None:
    """Run ``hook`` on each of ``app``'s requests that fails authentication, before its 401.

    The hook may raise an error of its own (an APIError) to send instead of the 401.
    """
    app.extensions.setdefault(FAILURE_HOOKS, []).append(hook)


def add_authenticator(app: Flask, blueprint: str, authenticator: Authenticator) -> None:
    """Authenticate requests to ``blueprint`` (and its nested ones) with ``authenticator``.

    It returns the principal, or raises: an APIError counts as a failed
    authentication (the failure hooks run); any other error is left to the
    blueprint's error handlers (the console redirects to its sign-in form).
    """
    app.extensions.setdefault(AUTHENTICATORS, {})[blueprint] = authenticator


def token_registry(app: Flask) -> TokenRegistry:
    """The configured tokens of ``app``."""
    registry: TokenRegistry = app.extensions[TOKENS]
    return registry


def run_failure_hooks() -> None:
    """Run the hooks of a failed authentication (they may raise, e.g. a 429)."""
    for hook in current_app.extensions.get(FAILURE_HOOKS, ()):
        hook()


def required_scope() -> Scope | None:
    """The scope the current request needs, or None for an open endpoint."""
    return scope_for(request.blueprint, request.method)


def scope_for(blueprint: str | None, method: str) -> Scope | None:
    """The scope a request to ``blueprint`` with ``method`` needs; None when it is open.

    The one rule behind access control, the rate-limit budgets and the
    security the OpenAPI document declares.
    """
    if blueprint in OPEN_BLUEPRINTS:
        return None
    if blueprint is not None and blueprint.split(".")[0] in READ_ONLY_BLUEPRINTS:
        return Scope.READ
    # Unknown paths (no blueprint) need a token too, so that probing reveals no routes.
    return Scope.READ if method.upper() in READ_METHODS else Scope.WRITE


def bearer_principal(registry: TokenRegistry) -> Principal:
    """The principal behind the request's bearer token; 401 when it is missing or unknown."""
    return principal_of_authorization(registry, request.headers.get("Authorization", ""))


def principal_of_authorization(registry: TokenRegistry, authorization: str) -> Principal:
    """The principal behind an Authorization header's bearer token; 401 when there is none."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(
            401,
            "unauthorized",
            "A bearer token is required: send 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": BEARER_CHALLENGE},
        )
    principal = registry.identify(token.strip())
    if principal is None:
        raise APIError(
            401,
            "unauthorized",
            "The bearer token is not valid.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def token_digest(token: str) -> bytes:
    """The SHA-256 digest a token is known by."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
