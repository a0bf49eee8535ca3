"""Time is the database's (SPEC §5, §8): a host whose clock is wrong writes no history
backwards, and no answer depends on a host's clock."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
from flask import Flask

from tests.support.helpers import patient_record, sync

ROOT = Path(__file__).resolve().parents[2]
TEN_MINUTES_BEHIND = "-600s"


def python_with_clock(
    offset: str, database_url: str, *arguments: str
) -> subprocess.CompletedProcess[str]:
    """This project's Python with ``arguments``, on ``database_url``, its clock shifted by
    ``offset`` (libfaketime: "-600s", "+3d"): another host whose clock is wrong."""
    return subprocess.run(
        ["faketime", "-f", offset, sys.executable, *arguments],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": database_url,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def flask_sync_from_a_host_behind(
    database_url: str, records: list[dict[str, str]], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """``flask sync patients`` in a process whose clock is ten minutes slow."""
    snapshot = tmp_path / "patients.json"
    snapshot.write_text(json.dumps(records))
    return python_with_clock(
        TEN_MINUTES_BEHIND,
        database_url,
        "-m",
        "flask",
        "--app",
        "wsgi",
        "sync",
        "patients",
        str(snapshot),
    )


def test_a_host_whose_clock_is_behind_still_writes_history_forwards(
    committed_app: Flask, committed_database_url: str, tmp_path: Path
) -> None:
    client = committed_app.test_client()
    first = sync(client, "patients", [patient_record("1", firstName="Ann")])
    slow_process_clock = python_with_clock(
        TEN_MINUTES_BEHIND,
        committed_database_url,
        "-c",
        "import datetime; print(datetime.datetime.now(datetime.UTC).isoformat())",
    ).stdout
    assert datetime.fromisoformat(slow_process_clock.strip()) < datetime.fromisoformat(
        first["startedAt"]
    ) - timedelta(minutes=5)

    done = flask_sync_from_a_host_behind(
        committed_database_url, [patient_record("1", firstName="Bob")], tmp_path
    )
    assert done.returncode == 0, done.stderr
    second = json.loads(done.stdout)
    assert second["updated"] == 1
    assert second["startedAt"] > first["startedAt"]
    assert second["finishedAt"] >= second["startedAt"]

    versions = client.get("/patients/1/history").get_json()
    assert [version["firstName"] for version in versions] == ["Bob", "Ann"]
    bob, ann = versions
    assert ann["validTo"] == bob["validFrom"] == second["startedAt"]
    assert ann["validFrom"] == first["startedAt"] < ann["validTo"]

    just_before = datetime.fromisoformat(bob["validFrom"]) - timedelta(microseconds=1)
    at = client.get(f"/patients/1?as_of={quote(just_before.isoformat())}").get_json()
    assert at["firstName"] == "Ann"
    at = client.get(f"/patients/1?as_of={quote(bob['validFrom'])}").get_json()
    assert at["firstName"] == "Bob"


def test_a_later_sync_never_has_an_earlier_time_than_the_one_before(committed_app: Flask) -> None:
    client = committed_app.test_client()
    reports = [
        sync(client, "patients", [patient_record("1", firstName=name)])
        for name in ("Ann", "Bob", "Cy", "Di")
    ]
    starts = [report["startedAt"] for report in reports]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


STORE_A_WINDOW = """
from app import create_app
from app.events import position
from app.extensions import db
app = create_app()
with app.app_context():
    connection = db.session.connection()
    position.ensure(connection)
    moved = position.Position(1, 0, sync_complete=False, sync_events=1)
    assert position.store(connection, position.START, moved, 1, rate=8500.0)
    db.session.commit()
"""


@pytest.mark.postgresql_only  # SQLite serves one host: its clock is the process's
def test_a_relay_on_a_host_whose_clock_is_behind_still_shows_a_fresh_rate(
    committed_app: Flask, committed_database_url: str
) -> None:
    """/metrics judges the relay's rate fresh or stale on the one clock both hosts share."""
    client = committed_app.test_client()
    sync(client, "patients", [patient_record("1"), patient_record("2")])
    stored = python_with_clock(TEN_MINUTES_BEHIND, committed_database_url, "-c", STORE_A_WINDOW)
    assert stored.returncode == 0, stored.stderr
    rate = [
        line
        for line in client.get("/metrics").get_data(as_text=True).splitlines()
        if line.startswith("events_relay_publish_rate")
    ]
    assert rate == ["events_relay_publish_rate 8500.0"]


RENDER_THE_OVERVIEW = """
from app import create_app
app = create_app()
response = app.test_client().get("/console/")
print(response.status_code)
print(response.get_data(as_text=True))
"""


@pytest.mark.postgresql_only  # SQLite serves one host: its clock is the process's
def test_a_node_whose_clock_is_ahead_does_not_call_a_fresh_sync_stale(
    committed_app: Flask, committed_database_url: str
) -> None:
    client = committed_app.test_client()
    sync(client, "patients", [patient_record("1")])
    sync(client, "payments", [])
    rendered = python_with_clock("+3d", committed_database_url, "-c", RENDER_THE_OVERVIEW)
    assert rendered.returncode == 0, rendered.stderr
    status, page = rendered.stdout.split("\n", 1)
    assert status == "200"
    assert "The last payments sync" not in page and "sync is expected at least every" not in page
