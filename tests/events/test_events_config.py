"""The EVENTS_* settings (SPEC §6): defaults, and values refused at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_config, validate_config


def config_from(env: dict[str, str], tmp_path: Path) -> dict[str, object]:
    """The validated config the app would get from ``env``."""
    config = load_config(str(tmp_path), env)
    validate_config(config)
    return config


def test_events_settings_default_to_no_broker_and_the_documented_values(tmp_path: Path) -> None:
    config = config_from({}, tmp_path)
    assert {name: value for name, value in config.items() if name.startswith("EVENTS_")} == {
        "EVENTS_BROKER_URL": None,
        "EVENTS_EXCHANGE": "patient-payments",
        "EVENTS_BATCH_SIZE": 1000,
        "EVENTS_POLL_SECONDS": 1.0,
        "EVENTS_CONFIRM_TIMEOUT": 30.0,
    }


def test_events_settings_are_read_from_the_environment(tmp_path: Path) -> None:
    config = config_from(
        {
            "EVENTS_BROKER_URL": " amqps://u:p@mq:5671/prod ",
            "EVENTS_EXCHANGE": "changes",
            "EVENTS_BATCH_SIZE": "250",
            "EVENTS_POLL_SECONDS": "0.2",
            "EVENTS_CONFIRM_TIMEOUT": "5",
        },
        tmp_path,
    )
    assert (
        config["EVENTS_BROKER_URL"],
        config["EVENTS_EXCHANGE"],
        config["EVENTS_BATCH_SIZE"],
        config["EVENTS_POLL_SECONDS"],
        config["EVENTS_CONFIRM_TIMEOUT"],
    ) == ("amqps://u:p@mq:5671/prod", "changes", 250, 0.2, 5.0)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("EVENTS_BROKER_URL", "redis://u:secret@mq/0"),
        ("EVENTS_BATCH_SIZE", "0"),
        ("EVENTS_BATCH_SIZE", "many"),
        ("EVENTS_POLL_SECONDS", "0"),
        ("EVENTS_CONFIRM_TIMEOUT", "-1"),
    ],
)
def test_unusable_events_settings_are_refused_at_startup(
    tmp_path: Path, name: str, raw: str
) -> None:
    with pytest.raises(ConfigError, match=name) as refused:
        config_from({name: raw}, tmp_path)
    assert "secret" not in str(refused.value)
