"""Configuration read from the environment, parsed and checked once at startup."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from limits import parse_many

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
APP_ENVS = ("development", "production")


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


def as_number(
    name: str,
    default: float,
    env: Mapping[str, str],
    *,
    kind: type = float,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
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
        url = "postgresql://" + url[len("postgres://") :]
    return url


def replica_urls(env: Mapping[str, str]) -> tuple[str, ...]:
    """DATABASE_REPLICA_URLS: comma-separated URLs of the primary's hot standbys (SPEC §8)."""
    urls = (url.strip() for url in env.get("DATABASE_REPLICA_URLS", "").split(","))
    return tuple(
        "postgresql://" + url[len("postgres://") :] if url.startswith("postgres://") else url
        for url in urls
        if url
    )


def as_tokens(name: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """Read a comma-separated token list; empty entries (and an empty list) mean none."""
    tokens = tuple(token.strip() for token in env.get(name, "").split(","))
    tokens = tuple(token for token in tokens if token)
    for token in tokens:
        if not _TOKEN_CHARS.fullmatch(token):
            raise ConfigError(
                f"{name} holds a token with spaces or non-printable characters; "
                "tokens are sent in an HTTP header and must be printable ASCII"
            )
    return tokens


def _default_parse_processes() -> int:
    """Two processes to decode uploads where this process may use two cores or more; else none."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return 2 if (cores or 1) >= 2 else 0


def load_config(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping from the environment."""
    env = os.environ if env is None else env
    return {
        "APP_ENV": env.get("APP_ENV", "development").strip() or "development",
        "SQLALCHEMY_DATABASE_URI": database_url(env, instance_path),
        # hide_parameters: SQL errors would otherwise log names and amounts.
        "SQLALCHEMY_ENGINE_OPTIONS": {"hide_parameters": True},
        # Reads on streaming replicas (SPEC §8, app/db/replicas.py): how long a read that
        # presents a position waits for a replica to replay it, and how far behind the
        # primary a replica may be and still answer reads; both in seconds.
        "DATABASE_REPLICA_URLS": replica_urls(env),
        "REPLICA_WAIT": as_number("REPLICA_WAIT", 2.0, env, minimum=0, maximum=60),
        "REPLICA_MAX_LAG": as_number("REPLICA_MAX_LAG", 10.0, env, minimum=0),
        # How often each process checks its databases' health and lag.
        "REPLICA_CHECK_SECONDS": as_number(
            "REPLICA_CHECK_SECONDS", 1.0, env, minimum=0.05, maximum=60
        ),
        "API_READ_TOKENS": as_tokens("API_READ_TOKENS", env),
        "API_WRITE_TOKENS": as_tokens("API_WRITE_TOKENS", env),
        "RATELIMIT_SYNC": env.get("RATELIMIT_SYNC", "60 per minute"),
        "RATELIMIT_READ": env.get("RATELIMIT_READ", "6000 per minute"),
        "RATELIMIT_AUTH_FAILURES": env.get("RATELIMIT_AUTH_FAILURES", "60 per minute"),
        "RATELIMIT_ENABLED": as_bool("RATELIMIT_ENABLED", True, env),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "").strip() or "memory://",
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "patient-payments"),
        "TRUSTED_PROXIES": as_number("TRUSTED_PROXIES", 0, env, kind=int, minimum=0),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        "MAX_CONTENT_LENGTH": as_number(
            "MAX_CONTENT_LENGTH", 256 * 1024 * 1024, env, kind=int, minimum=1
        ),
        "SYNC_LOCK_TIMEOUT": as_number("SYNC_LOCK_TIMEOUT", 30.0, env, minimum=0),
        "SYNC_MAX_DELETE_RATIO": as_number("SYNC_MAX_DELETE_RATIO", 0.5, env, minimum=0, maximum=1),
        "SYNC_GUARD_MIN_ROWS": as_number("SYNC_GUARD_MIN_ROWS", 100, env, kind=int, minimum=0),
        "READ_CACHE_SIZE": as_number("READ_CACHE_SIZE", 256, env, kind=int, minimum=0),
        "READ_FAST_PATH": as_bool("READ_FAST_PATH", True, env),
        "READ_CACHE_BYTES": as_number(
            "READ_CACHE_BYTES", 32 * 1024 * 1024, env, kind=int, minimum=0
        ),
        "SYNC_MAX_RECORD_BYTES": as_number(
            "SYNC_MAX_RECORD_BYTES", 1024 * 1024, env, kind=int, minimum=1024
        ),
        "SYNC_WORK_MEM": env.get("SYNC_WORK_MEM", "").strip() or "128MB",
        "SYNC_MAX_ERRORS": as_number("SYNC_MAX_ERRORS", 1000, env, kind=int, minimum=0),
        # A sync creating at least this many rows, more than its table holds (an initial
        # load), builds the table's indexes and keys once instead of row by row; 0: never.
        "SYNC_BULK_LOAD_MIN_ROWS": as_number(
            "SYNC_BULK_LOAD_MIN_ROWS", 10000, env, kind=int, minimum=0
        ),
        # Processes that decode and validate a large upload while the sync's own process
        # reads it and feeds the stage's COPY (PostgreSQL); 0: none, all in one process.
        "SYNC_PARSE_PROCESSES": as_number(
            "SYNC_PARSE_PROCESSES", _default_parse_processes(), env, kind=int, minimum=0
        ),
        # `flask syncs worker` (SPEC §2, asynchronous syncs): how often an idle worker, or
        # one waiting for the worker lock, looks again.
        "SYNC_WORKER_POLL_SECONDS": as_number(
            "SYNC_WORKER_POLL_SECONDS", 1.0, env, minimum=0.01, maximum=3600
        ),
        # The change-event relay (`flask events relay`, SPEC §6). Of these the API reads only
        # EVENTS_BROKER_URL: when it is set, /metrics shows the lag before the relay first ran.
        "EVENTS_BROKER_URL": env.get("EVENTS_BROKER_URL", "").strip() or None,
        "EVENTS_EXCHANGE": env.get("EVENTS_EXCHANGE", "").strip() or "patient-payments",
        "EVENTS_BATCH_SIZE": as_number(
            "EVENTS_BATCH_SIZE", 1000, env, kind=int, minimum=1, maximum=100_000
        ),
        "EVENTS_POLL_SECONDS": as_number(
            "EVENTS_POLL_SECONDS", 1.0, env, minimum=0.01, maximum=3600
        ),
        "EVENTS_CONFIRM_TIMEOUT": as_number("EVENTS_CONFIRM_TIMEOUT", 30.0, env, minimum=0.1),
        # The console (/console, app/console): its sign-in cookie is signed with SECRET_KEY
        # (in development a generated one is kept under instance/ when it is unset).
        "SECRET_KEY": env.get("SECRET_KEY", "").strip() or None,
        "SESSION_COOKIE_NAME": "console_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Strict",
        "SESSION_COOKIE_SECURE": env.get("APP_ENV", "").strip() == "production",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "CONSOLE_STALE_AFTER_HOURS": as_number("CONSOLE_STALE_AFTER_HOURS", 26.0, env, minimum=0),
        # flask-smorest: serve /openapi.json at the root.
        "API_TITLE": "Patient Payments",
        "API_VERSION": "1.0.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Swagger UI at /docs, every asset served by this app (app/api/docs.py):
        # these hosts have no CDN access. The asset prefix is relative on purpose:
        # the page is always at <root>/docs (no trailing slash), so "docs/assets/"
        # resolves to <root>/docs/assets/ whether the app is at / or mounted under
        # a path prefix (SCRIPT_NAME), just as the spec URL does (flask-smorest
        # builds that with url_for). "/docs/assets/" would break under a prefix.
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "docs/assets/",
        "OPENAPI_SWAGGER_UI_CONFIG": {
            # Otherwise Swagger UI sends the spec to validator.swagger.io.
            "validatorUrl": None,
            # Already Swagger UI 4's default; pinned so ?url=/?configUrl= can
            # never make the page load a spec or config from elsewhere.
            "queryConfigEnabled": False,
        },
    }


def validate_config(config: Mapping[str, Any]) -> None:
    """Check the rules that span several values; raise ConfigError on the first broken one."""
    if config["APP_ENV"] not in APP_ENVS:
        raise ConfigError(
            f"APP_ENV must be one of {', '.join(APP_ENVS)}, got {config['APP_ENV']!r}"
        )
    if config["APP_ENV"] == "production" and not (
        config["API_READ_TOKENS"] or config["API_WRITE_TOKENS"]
    ):
        raise ConfigError(
            "APP_ENV=production needs API_READ_TOKENS and/or API_WRITE_TOKENS: "
            "refusing to serve patient data without access control"
        )
    if config["APP_ENV"] == "production" and len(config.get("SECRET_KEY") or "") < 32:
        raise ConfigError(
            "APP_ENV=production needs SECRET_KEY (at least 32 characters, e.g. "
            "from `python3 -c 'import secrets; print(secrets.token_hex(32))'`): "
            "it signs the console's sign-in cookie"
        )
    if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB)", config["SYNC_WORK_MEM"]):
        raise ConfigError(
            f"SYNC_WORK_MEM={config['SYNC_WORK_MEM']!r} is not a PostgreSQL "
            "memory size such as 128MB or 1GB"
        )
    for name in ("RATELIMIT_SYNC", "RATELIMIT_READ", "RATELIMIT_AUTH_FAILURES"):
        try:
            usable = all(limit.amount >= 1 for limit in parse_many(config[name]))
        except ValueError:
            usable = False
        if not usable:
            raise ConfigError(
                f"{name} must be a rate limit such as '60 per minute' or "
                f"'10/second;1000/hour', got {config[name]!r}"
            )
    if not isinstance(logging.getLevelName(config["LOG_LEVEL"]), int):
        raise ConfigError(f"LOG_LEVEL must be a logging level name, got {config['LOG_LEVEL']!r}")
    _validate_replicas(config)
    broker = config.get("EVENTS_BROKER_URL")
    if broker is not None and not broker.startswith(("amqp://", "amqps://")):
        # The URL may hold a password: name the scheme only.
        raise ConfigError(
            "EVENTS_BROKER_URL must be an amqp:// or amqps:// URL, got one "
            f"starting {broker.split(':', 1)[0]!r}"
        )


def _validate_replicas(config: Mapping[str, Any]) -> None:
    """Replicas are PostgreSQL hot standbys of a PostgreSQL primary."""
    replicas = config.get("DATABASE_REPLICA_URLS") or ()
    if replicas and not all(
        str(url).startswith("postgresql") for url in (config["SQLALCHEMY_DATABASE_URI"], *replicas)
    ):
        raise ConfigError(
            "DATABASE_REPLICA_URLS names PostgreSQL hot standbys: DATABASE_URL and every "
            "replica URL must be postgresql:// URLs"
        )


def check_environment(env: Mapping[str, str] | None = None) -> None:
    """Exit with a one-line reason when the environment cannot configure the app.

    For process managers (gunicorn.conf.py) that should refuse to start at all
    rather than boot workers that fail one after another.
    """
    try:
        validate_config(load_config(os.devnull, env))
    except ConfigError as error:
        raise refusal(error) from None


def refusal(error: ConfigError) -> SystemExit:
    """The exit that reports ``error`` in one line, with status 1 and no traceback."""
    return SystemExit(f"Configuration error: {error}")
