"""Configuration read from the environment, parsed and checked once at startup."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration value cannot be used; raised at startup, never per request."""


def as_bool(name: str, default: bool, env: Mapping[str, str]) -> bool:
    """Read a boolean variable, accepting the usual spellings."""
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean, got {raw!r}")


def as_number(name: str, default: float, env: Mapping[str, str], *, kind: type = float,
              minimum: float | None = None, maximum: float | None = None) -> Any:
    """Read a numeric variable of type ``kind`` within optional bounds."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return kind(default)
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a {kind.__name__}, got {raw!r}") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def database_url(env: Mapping[str, str], instance_path: str) -> str:
    """DATABASE_URL, or an embedded SQLite file under the instance folder."""
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return "sqlite:///" + os.path.join(instance_path, "app.db")
    # Heroku-style URLs use a scheme SQLAlchemy no longer accepts.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return url


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from the environment."""
    env = os.environ if env is None else env
    return {
        "APP_ENV": env.get("APP_ENV", "development").strip() or "development",
        "SQLALCHEMY_DATABASE_URI": database_url(env, instance_path),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "MAX_CONTENT_LENGTH": as_number(
            "MAX_CONTENT_LENGTH", 256 * 1024 * 1024, env, kind=int, minimum=1),
        "SYNC_LOCK_TIMEOUT": as_number("SYNC_LOCK_TIMEOUT", 30.0, env, minimum=0),
        "SYNC_MAX_DELETE_RATIO": as_number(
            "SYNC_MAX_DELETE_RATIO", 0.5, env, minimum=0, maximum=1),
        "SYNC_GUARD_MIN_ROWS": as_number("SYNC_GUARD_MIN_ROWS", 100, env, kind=int, minimum=0),
        "READ_CACHE_SIZE": as_number("READ_CACHE_SIZE", 256, env, kind=int, minimum=0),
        "SYNC_MAX_ERRORS": as_number("SYNC_MAX_ERRORS", 1000, env, kind=int, minimum=0),
        # flask-smorest: serve /openapi.json at the root.
        "API_TITLE": "Patient Payments",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }
