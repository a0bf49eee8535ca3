"""Configuration from the environment (SPEC §4): parsed once, refused at startup when unsafe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from config import ConfigError, as_tokens, load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def config_from(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    """The validated config the app would get from ``env``."""
    config = load_config(str(tmp_path), env)
    validate_config(config)
    return config


@pytest.mark.parametrize(
    ("raw", "tokens"),
    [
        ("", ()),
        (",", ()),
        (" , ,, ", ()),
        ("a", ("a",)),
        (" a , b ,", ("a", "b")),
    ],
)
def test_token_lists_are_comma_separated_and_ignore_empty_entries(
    raw: str, tokens: tuple[str, ...]
) -> None:
    assert as_tokens("API_READ_TOKENS", {"API_READ_TOKENS": raw}) == tokens


@pytest.mark.parametrize("raw", ["has space", "tab\there", "caf\u00e9"])
def test_a_token_that_cannot_travel_in_a_header_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="API_WRITE_TOKENS"):
        as_tokens("API_WRITE_TOKENS", {"API_WRITE_TOKENS": raw})


@pytest.mark.parametrize(
    "tokens",
    [
        {},
        {"API_READ_TOKENS": ""},
        {"API_WRITE_TOKENS": " , "},
        {"API_READ_TOKENS": ",", "API_WRITE_TOKENS": ",,"},
    ],
)
def test_production_without_tokens_is_refused(tokens: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_ENV=production needs API_READ_TOKENS"):
        config_from({"APP_ENV": "production", **tokens}, tmp_path)


SECRET = {"SECRET_KEY": "s" * 32}


@pytest.mark.parametrize("tokens", [{"API_READ_TOKENS": "r"}, {"API_WRITE_TOKENS": "w"}])
def test_production_with_tokens_is_accepted(tokens: dict[str, str], tmp_path: Path) -> None:
    config = config_from({"APP_ENV": "production", **tokens, **SECRET}, tmp_path)
    assert config["APP_ENV"] == "production"


@pytest.mark.parametrize("secret", [{}, {"SECRET_KEY": ""}, {"SECRET_KEY": "short"}])
def test_production_without_a_secret_key_is_refused(secret: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="APP_ENV=production needs SECRET_KEY"):
        config_from({"APP_ENV": "production", "API_READ_TOKENS": "r", **secret}, tmp_path)


def test_production_console_cookie_is_secure(tmp_path: Path) -> None:
    config = config_from({"APP_ENV": "production", "API_READ_TOKENS": "r", **SECRET}, tmp_path)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_SAMESITE"] == "Strict"


def test_console_stale_age_defaults_to_26_hours(tmp_path: Path) -> None:
    assert config_from({}, tmp_path)["CONSOLE_STALE_AFTER_HOURS"] == 26


def test_development_without_tokens_is_accepted(tmp_path: Path) -> None:
    assert config_from({}, tmp_path)["API_READ_TOKENS"] == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RATELIMIT_READ", "lots"),
        ("RATELIMIT_SYNC", "60 per fortnight"),
        ("RATELIMIT_SYNC", "0 per minute"),
        ("RATELIMIT_READ", ""),
        ("APP_ENV", "staging"),
        ("LOG_LEVEL", "LOUD"),
        ("TRUSTED_PROXIES", "-1"),
        ("RATELIMIT_ENABLED", "maybe"),
        ("SYNC_WORK_MEM", "lots"),
        ("SYNC_WORK_MEM", "1GB'; DROP TABLE payments; --"),
        ("SYNC_WORK_MEM", "0MB"),
        ("SYNC_PARSE_PROCESSES", "-1"),
        ("SYNC_PARSE_PROCESSES", "two"),
    ],
)
def test_bad_values_are_refused_at_startup(name: str, value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=name):
        config_from({name: value}, tmp_path)


@pytest.mark.parametrize("value", ["lots", "0 per minute", "60 per fortnight", ""])
def test_a_bad_auth_failure_budget_is_refused_at_startup(value: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RATELIMIT_AUTH_FAILURES"):
        config_from({"RATELIMIT_AUTH_FAILURES": value}, tmp_path)


def test_rate_limits_default_to_the_spec_budgets(tmp_path: Path) -> None:
    config = config_from({}, tmp_path)
    assert (config["RATELIMIT_SYNC"], config["RATELIMIT_READ"]) == (
        "60 per minute",
        "6000 per minute",
    )
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_create_app_checks_overrides_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/a.db",
                "APP_ENV": "production",
                "API_READ_TOKENS": (),
                "API_WRITE_TOKENS": (),
            }
        )


def _refusing_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "APP_"))}
    return env | {
        "APP_ENV": "production",
        "API_READ_TOKENS": " , ",
        "DATABASE_URL": f"sqlite:///{tmp_path}/app.db",
    }


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import wsgi"],
        [str(GUNICORN), "--config", "gunicorn.conf.py", "--bind", "127.0.0.1:0", "wsgi:app"],
    ],
    ids=["flask-entry-point", "gunicorn"],
)
def test_production_without_tokens_exits_with_one_clear_line(
    command: list[str], tmp_path: Path
) -> None:
    """What an operator sees: exit status 1 and the reason, no traceback, no worker restarts."""
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=_refusing_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Configuration error: APP_ENV=production needs API_READ_TOKENS and/or API_WRITE_TOKENS: "
        "refusing to serve patient data without access control"
    )


def test_production_without_a_secret_key_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = _refusing_env(tmp_path) | {"API_READ_TOKENS": "r"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("Configuration error: APP_ENV=production needs SECRET_KEY")
    )


def test_sync_work_mem_defaults_to_128mb_and_takes_larger_sizes(tmp_path: Path) -> None:
    assert config_from({}, tmp_path)["SYNC_WORK_MEM"] == "128MB"
    assert config_from({"SYNC_WORK_MEM": "1GB"}, tmp_path)["SYNC_WORK_MEM"] == "1GB"


@pytest.mark.parametrize(("cores", "processes"), [(1, 0), (2, 2), (16, 2)])
def test_sync_parse_processes_default_to_two_where_there_are_two_cores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cores: int, processes: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert config_from({}, tmp_path)["SYNC_PARSE_PROCESSES"] == processes
    assert config_from({"SYNC_PARSE_PROCESSES": "0"}, tmp_path)["SYNC_PARSE_PROCESSES"] == 0


def test_replica_urls_are_comma_separated_postgresql_urls(tmp_path: Path) -> None:
    config = config_from(
        {
            "DATABASE_URL": "postgresql://primary/pp",
            "DATABASE_REPLICA_URLS": " postgres://one/pp, ,postgresql://two/pp ",
        },
        tmp_path,
    )
    assert config["DATABASE_REPLICA_URLS"] == ("postgresql://one/pp", "postgresql://two/pp")
    assert (config["REPLICA_WAIT"], config["REPLICA_MAX_LAG"]) == (2.0, 10.0)


def test_replicas_of_the_embedded_database_are_refused_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATABASE_REPLICA_URLS"):
        config_from({"DATABASE_REPLICA_URLS": "postgresql://one/pp"}, tmp_path)
