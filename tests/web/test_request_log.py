"""Request ids and structured logs (SPEC §4): JSON lines, and never patient data."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.web.logs import JsonFormatter, RequestIdFilter
from tests.support.helpers import patient_record, payment_record, post_snapshot, sync

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


class LogCapture:
    """Parsed JSON log lines, read after the requests of a test."""

    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(RequestIdFilter())

    @property
    def text(self) -> str:
        """Everything logged so far, raw."""
        return self.stream.getvalue()

    @property
    def text_without_times(self) -> str:
        """Everything logged so far, but each line's time and duration: a duration of
        12.503 ms or a time of 10:00:07.251 must not read as an amount that leaked."""
        times = ("ts", "duration_ms")
        lines = [{k: v for k, v in line.items() if k not in times} for line in self.lines]
        return "\n".join(json.dumps(line) for line in lines)

    @property
    def lines(self) -> list[dict[str, Any]]:
        """Every line so far, parsed (each must be one JSON object)."""
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        """The access lines, one per request."""
        return [line for line in self.lines if line["logger"] == "app.access"]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Capture every log record at DEBUG, formatted exactly as in production."""
    capture = LogCapture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture.handler)
    root.setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture.handler)
    root.setLevel(old_level)


def test_a_client_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/patients", headers={"X-Request-ID": "dash-42.retry/1"})
    assert response.headers["X-Request-ID"] == "dash-42.retry/1"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "caf\u00e9", "tab\t"])
def test_a_missing_or_insane_request_id_is_replaced(client: FlaskClient, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = client.get("/patients", headers=headers)
    assert GENERATED_ID.fullmatch(response.headers["X-Request-ID"])


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("DELETE", "/patients", 405),
        ("GET", "/patients?limit=0", 422),
        ("POST", "/patients", 415),
    ],
)
def test_error_responses_carry_a_request_id(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method, headers={"X-Request-ID": "err-1"})
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == "err-1"


def test_each_request_logs_one_json_line_with_id_method_path_status_duration(
    client: FlaskClient, logs: LogCapture
) -> None:
    client.get("/patients?payment_min=10", headers={"X-Request-ID": "abc"})
    client.get("/nowhere")
    first, second = logs.access()
    assert first["request_id"] == "abc"
    assert (first["method"], first["path"], first["status"]) == ("GET", "/patients", 200)
    assert isinstance(first["duration_ms"], float)
    assert (second["path"], second["status"]) == ("/nowhere", 404)
    assert GENERATED_ID.fullmatch(second["request_id"])


def test_the_query_string_is_not_logged(client: FlaskClient, logs: LogCapture) -> None:
    client.get("/patients?payment_min=4321.09&payment_max=9876.54")
    assert "4321.09" not in logs.text_without_times
    assert "payment_min" not in logs.text


def test_a_sync_logs_its_report_counts(client: FlaskClient, logs: LogCapture) -> None:
    sync(client, "patients", [patient_record("p1"), patient_record("p2", firstName="")])
    (line,) = logs.access()
    assert line["sync"] | {"sync_id": 0} == {
        "entity": "patients",
        "outcome": "applied",
        "sync_id": 0,
        "dry_run": False,
        "received": 2,
        "created": 1,
        "updated": 0,
        "restored": 0,
        "unchanged": 0,
        "rejected": 1,
        "deleted": 0,
    }


def test_lines_logged_while_serving_carry_the_request_id(
    client: FlaskClient, logs: LogCapture
) -> None:
    post_snapshot(client, "patients", [patient_record("p1")], headers={"X-Request-ID": "sync-7"})
    tagged = [line for line in logs.lines if line.get("request_id") == "sync-7"]
    assert {line["logger"] for line in tagged} >= {"app.access", "app.sync.engine"}


# Values that exist only in the synced records: if any shows up, a log leaked patient data.
SECRET_NAMES = ("Quenneville", "Zebediah", "Ptolemaios", "Xanthippe")
SECRET_DATES = ("1911-11-11", "1923-02-28")
SECRET_AMOUNTS = ("12345.67", "76543.21", "31337.42")


def test_logs_never_contain_names_dates_of_birth_or_amounts(
    client: FlaskClient, logs: LogCapture
) -> None:
    """Sync known values, read them back every way, fail and refuse, then search the logs."""
    patients = [
        patient_record(
            "p1",
            firstName="Zebediah",
            lastName="Quenneville",
            middleName="Ptolemaios",
            dateOfBirth="1911-11-11",
        ),
        patient_record("p2", firstName="Xanthippe", dateOfBirth="1923-02-28"),
        # Rejected records: their values appear in the report's errors, not in logs.
        patient_record("p3", firstName="Xanthippe", dateOfBirth="1923-02-30"),
    ]
    payments = [
        payment_record("m1", "p1", Decimal("12345.67")),
        payment_record("m2", "p2", Decimal("76543.21")),
        payment_record("m3", "p1", Decimal("31337.42")),
        payment_record("m4", "nobody", Decimal("31337.42")),
        payment_record("m5", "p1", "31337.421"),
    ]
    sync(client, "patients", patients)
    sync_id = sync(client, "payments", payments)["syncId"]
    sync(client, "payments", payments, query="?dry_run=true")
    post_snapshot(client, "patients", b'[{"firstName": "Zebediah", "lastName": "Quenneville"')
    body = client.get("/patients?sort=-paymentsTotal").get_data(as_text=True)
    assert all(value in body for value in (*SECRET_NAMES[:2], "1911-11-11", "43683.09"))
    for path in (
        "/patients/p1",
        "/payments?external_id=p1",
        "/syncs",
        f"/syncs/{sync_id}",
        "/patients?payment_min=12345.67&payment_max=76543.21",
        "/metrics",
    ):
        assert client.get(path).status_code == 200

    assert len(logs.access()) >= 11
    leaked = [
        value
        for value in (*SECRET_NAMES, *SECRET_DATES, *SECRET_AMOUNTS, "43683.09")
        if value in logs.text_without_times
    ]
    assert leaked == []
