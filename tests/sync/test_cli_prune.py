"""flask history prune --before: the instant is read as strictly as as_of (SPEC §5)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from tests.support.helpers import patient_record, sync


def prune(runner: FlaskCliRunner, before: str) -> Any:
    """Run `flask history prune --before BEFORE`."""
    return runner.invoke(args=["history", "prune", "--before", before])


@pytest.mark.parametrize(
    ("before", "horizon"),
    [
        ("2000-01-01+01:00", "1999-12-31T23:00:00+00:00"),
        ("2000-01-01-01:30", "2000-01-01T01:30:00+00:00"),
    ],
    ids=["ahead_of_utc", "behind_utc"],
)
def test_prune_reads_a_date_with_an_offset_as_its_local_midnight(
    client: FlaskClient, runner: FlaskCliRunner, before: str, horizon: str
) -> None:
    sync(client, "patients", [patient_record("a")])
    result = prune(runner, before)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prunedBefore"] == horizon


def test_prune_reads_lowercase_t_and_z_and_a_fraction(
    client: FlaskClient, runner: FlaskCliRunner
) -> None:
    sync(client, "patients", [patient_record("a")])
    result = prune(runner, "2000-01-01t10:00:00.5z")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prunedBefore"] == "2000-01-01T10:00:00.500000+00:00"


@pytest.mark.parametrize(
    "before",
    [
        "2000-01-01T23.5Z",
        "2000-01-01T23:00Z",
        "2000-01-01T23:00:00Z\x00",
        "2000-01-01T23:00:00Z ",
        "2000-01-01T24:00:00Z",
        "2000-01-01T23:00:00+24:00",
        "2000-01-01T23:00:00",
    ],
    ids=[
        "fraction_of_the_hour",
        "no_seconds",
        "trailing_nul",
        "trailing_space",
        "hour_24",
        "offset_of_a_day",
        "no_offset",
    ],
)
def test_prune_refuses_what_as_of_refuses_with_exit_2_and_keeps_everything(
    client: FlaskClient, runner: FlaskCliRunner, before: str
) -> None:
    sync(client, "patients", [patient_record("a")])
    result = prune(runner, before)
    assert result.exit_code == 2, result.output
    assert "invalid --before" in result.stderr
    assert len(client.get("/syncs").get_json()) == 1


@pytest.mark.parametrize(
    "before",
    ["9999-12-31T23:59:59.999999-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01+01:00"],
    ids=["after_9999", "before_1", "date_before_1"],
)
def test_prune_refuses_an_instant_outside_years_1_to_9999_in_utc_with_exit_2(
    client: FlaskClient, runner: FlaskCliRunner, before: str
) -> None:
    sync(client, "patients", [patient_record("a")])
    result = prune(runner, before)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "invalid --before" in result.stderr
    assert "years 1-9999" in result.stderr
