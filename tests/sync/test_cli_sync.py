"""`flask sync patients|payments FILE`: report on stdout, exit codes 0/1/2 (SPEC §2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask.testing import FlaskClient, FlaskCliRunner

from app.sync import merge
from tests.support.helpers import REPORT_OUTCOMES, patient_record, payment_record, sync, to_json

PATIENTS = [patient_record("p1"), patient_record("p2", firstName="Grace")]
COUNTS = (*REPORT_OUTCOMES, "deleted", "received", "errors", "errorsTruncated", "entity")


RECORD_LIMIT = 1024


@pytest.fixture
def app_config() -> dict[str, Any]:
    """A mass-delete guard that trips on three live rows, and a small record limit."""
    return {"SYNC_GUARD_MIN_ROWS": 2, "SYNC_MAX_RECORD_BYTES": RECORD_LIMIT}


def write_snapshot(tmp_path: Path, content: Any, name: str = "snapshot.json") -> Path:
    """Write records as JSON (or bytes as they are) to a file and return its path."""
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else to_json(content).encode())
    return path


def run(
    runner: FlaskCliRunner,
    entity: str,
    file: str | Path,
    *options: str,
    stdin: str | IO[bytes] | None = None,
) -> Result:
    """Invoke `flask sync ENTITY FILE [options]`."""
    return runner.invoke(args=["sync", entity, str(file), *options], input=stdin)


def stdout_report(result: Result) -> dict[str, Any]:
    """The report the command printed on stdout."""
    report = json.loads(result.stdout)
    assert sum(report[name] for name in REPORT_OUTCOMES) == report["received"]
    return report


def live_state(client: FlaskClient) -> dict[str, Any]:
    """Everything a sync could change, as the read endpoints show it."""
    return {
        "patients": client.get("/patients").get_json(),
        "payments": client.get("/payments").get_json(),
        "syncs": client.get("/syncs").get_json(),
    }


@pytest.fixture
def three_patients(client: FlaskClient) -> dict[str, Any]:
    """Patients p1, p2, p3 synced over HTTP; returns the state after it."""
    sync(client, "patients", [patient_record(f"p{n}") for n in (1, 2, 3)])
    return live_state(client)


def test_cli_sync_exits_0_and_prints_report_when_nothing_rejected(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    result = run(runner, "patients", write_snapshot(tmp_path, PATIENTS))
    assert result.exit_code == 0, result.output
    report = stdout_report(result)
    assert (report["entity"], report["dryRun"]) == ("patients", False)
    assert (report["received"], report["created"], report["rejected"]) == (2, 2, 0)
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["p1", "p2"]


def test_cli_sync_exits_1_when_some_records_rejected(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    records = [patient_record("p1"), patient_record("p2", firstName="")]
    result = run(runner, "patients", write_snapshot(tmp_path, records))
    assert result.exit_code == 1, result.output
    report = stdout_report(result)
    assert (report["created"], report["rejected"]) == (1, 1)
    assert [(e["index"], e["externalId"]) for e in report["errors"]] == [(1, "p2")]
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["p1"]


def test_cli_sync_payments_exits_1_for_unknown_patient(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    sync(client, "patients", [patient_record("p1")])
    records = [payment_record("m1", "p1"), payment_record("m2", "ghost")]
    result = run(runner, "payments", write_snapshot(tmp_path, records))
    assert result.exit_code == 1, result.output
    report = stdout_report(result)
    assert (report["entity"], report["created"], report["rejected"]) == ("payments", 1, 1)
    assert "patientId" in report["errors"][0]["messages"]


@pytest.mark.parametrize("amount", [b"1e1000000", b'"1e1000000"', b"-1E+999999999"])
def test_cli_sync_rejects_an_overflowing_amount_as_one_record(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path, amount: bytes
) -> None:
    sync(client, "patients", [patient_record("p1")])
    body = (
        b'[{"externalId":"m1","patientId":"p1","amount":'
        + amount
        + b'},{"externalId":"m2","patientId":"p1","amount":1}]'
    )
    result = run(runner, "payments", write_snapshot(tmp_path, body))
    assert result.exit_code == 1, result.output
    report = stdout_report(result)
    assert (report["created"], report["rejected"]) == (1, 1)
    assert list(report["errors"][0]["messages"]) == ["amount"]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"[{not json", "invalid_json"),
        ({"patients": []}, "invalid_payload"),
        ([patient_record("p1")], "mass_delete_refused"),
    ],
    ids=["not_json", "object_not_array", "mass_delete_refused"],
)
def test_cli_sync_exits_2_and_changes_nothing_when_refused(
    runner: FlaskCliRunner,
    client: FlaskClient,
    tmp_path: Path,
    three_patients: dict[str, Any],
    content: Any,
    code: str,
) -> None:
    result = run(runner, "patients", write_snapshot(tmp_path, content))
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert code in result.stderr
    assert live_state(client) == three_patients


def test_cli_sync_force_applies_sync_the_guard_refused(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path, three_patients: dict[str, Any]
) -> None:
    result = run(runner, "patients", write_snapshot(tmp_path, [patient_record("p1")]), "--force")
    assert result.exit_code == 0, result.output
    report = stdout_report(result)
    assert (report["unchanged"], report["deleted"]) == (1, 2)
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["p1"]


def test_cli_sync_dry_run_reports_and_changes_nothing(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path, three_patients: dict[str, Any]
) -> None:
    records = [patient_record("p1", lastName="Byron"), patient_record("p4")]
    result = run(runner, "patients", write_snapshot(tmp_path, records), "--dry-run", "--force")
    assert result.exit_code == 0, result.output
    report = stdout_report(result)
    assert report["dryRun"] is True
    assert (report["updated"], report["created"], report["deleted"]) == (1, 1, 2)
    after = live_state(client)
    assert {key: after[key] for key in ("patients", "payments")} == {
        key: three_patients[key] for key in ("patients", "payments")
    }


def test_cli_sync_reads_snapshot_from_stdin(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    # A real file object as stdin, like a shell redirect.
    with write_snapshot(tmp_path, PATIENTS).open("rb") as stdin:
        result = run(runner, "patients", "-", stdin=stdin)
    assert result.exit_code == 0, result.output
    assert stdout_report(result)["created"] == 2
    assert [p["firstName"] for p in client.get("/patients").get_json()] == ["Ada", "Grace"]


def test_cli_sync_reads_snapshot_from_nameless_stdin(
    runner: FlaskCliRunner, client: FlaskClient
) -> None:
    result = run(runner, "patients", "-", stdin=to_json(PATIENTS))
    assert result.exit_code == 0, result.output
    assert stdout_report(result)["created"] == 2
    assert [p["firstName"] for p in client.get("/patients").get_json()] == ["Ada", "Grace"]


def test_cli_sync_writes_progress_to_stderr_and_only_report_to_stdout(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = run(runner, "patients", write_snapshot(tmp_path, PATIENTS))
    assert result.exit_code == 0, result.output
    assert "patients: 2 records read" in result.stderr
    assert "records read" not in result.stdout
    assert stdout_report(result)["created"] == 2


def test_cli_sync_report_is_recorded_like_http_syncs(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    report = stdout_report(run(runner, "patients", write_snapshot(tmp_path, PATIENTS)))
    response = client.get(f"/syncs/{report['syncId']}")
    assert response.status_code == 200
    assert json.loads(response.get_data(as_text=True)) == report


def test_cli_sync_and_http_sync_give_same_counts_for_same_snapshot(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client,
        "payments",
        [
            payment_record("m1", "p1", 1),
            payment_record("m2", "p1", 2),
            payment_record("m3", "p2", 3),
            payment_record("m9", "p2", 9),
        ],
    )
    sync(
        client,
        "payments",
        [
            payment_record("m1", "p1", 1),
            payment_record("m2", "p1", 2),
            payment_record("m3", "p2", 3),
        ],
    )
    snapshot = [
        payment_record("m1", "p1", 1),
        payment_record("m2", "p2", "2.50"),
        payment_record("m9", "p2", 9),
        payment_record("m4", "p1", "4.00"),
        payment_record("m5", "ghost", 5),
        payment_record("m6", "p1", "6.666"),
    ]
    http = sync(client, "payments", snapshot, query="?dry_run=true&force=true")
    result = run(runner, "payments", write_snapshot(tmp_path, snapshot), "--dry-run", "--force")
    assert result.exit_code == 1, result.output
    cli = stdout_report(result)
    assert {key: cli[key] for key in COUNTS} == {key: http[key] for key in COUNTS}
    assert (
        cli["created"],
        cli["updated"],
        cli["restored"],
        cli["unchanged"],
        cli["rejected"],
        cli["deleted"],
    ) == (1, 1, 1, 1, 2, 1)


def test_cli_sync_exits_2_and_changes_nothing_when_the_database_fails(
    runner: FlaskCliRunner,
    client: FlaskClient,
    three_patients: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: Any) -> int:
        raise sa.exc.OperationalError("UPDATE", {}, Exception("connection lost"))

    monkeypatch.setattr(merge, "update_changed", explode)
    records = [patient_record(f"p{n}", lastName="Changed") for n in (1, 2, 3)]
    result = run(runner, "patients", write_snapshot(tmp_path, records))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert live_state(client) == three_patients


def test_cli_sync_rejects_record_over_the_record_limit(
    runner: FlaskCliRunner, client: FlaskClient, tmp_path: Path
) -> None:
    records = [patient_record("p1"), patient_record("p2", notes="x" * RECORD_LIMIT)]
    result = run(runner, "patients", write_snapshot(tmp_path, records))
    assert result.exit_code == 1, result.output
    report = stdout_report(result)
    assert (report["created"], report["rejected"]) == (1, 1)
    assert report["errors"] == [
        {
            "index": 1,
            "externalId": "p2",
            "messages": {"_schema": [f"Record is larger than {RECORD_LIMIT} bytes."]},
        }
    ]


class Zeros(io.RawIOBase):
    """Standard input that gives NUL bytes, as /dev/zero does, failing the test past ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.bytes_read >= self.limit:
            raise AssertionError(f"the sync read more than {self.limit} bytes")
        buffer[:] = bytes(len(buffer))
        self.bytes_read += len(buffer)
        return len(buffer)


def test_cli_sync_exits_2_on_nul_bytes_after_reading_little(
    runner: FlaskCliRunner, client: FlaskClient, three_patients: dict[str, Any]
) -> None:
    stdin = Zeros(limit=256 * 1024 * 1024)
    result = run(runner, "payments", "-", stdin=stdin)
    assert result.exit_code == 2
    assert "error: invalid_json:" in result.stderr
    assert stdin.bytes_read <= 4 * 1024 * 1024
    assert live_state(client) == three_patients
