"""CSV exports (SPEC §3 "CSV"): Accept: text/csv streams the whole listing, equal to the JSON."""

from __future__ import annotations

import csv
import io
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.reads.serializers import PATIENT_KEYS, PAYMENT_KEYS, SYNC_CHANGE_KEYS
from app.web.rate_limits import ExportMeter
from tests.support.helpers import error_code, get_all, patient_record, payment_record, sync

CSV = {"Accept": "text/csv"}
MONEY = ("amount", "paymentsTotal")
NESTED = ("before", "after", "changedFields")

# Names a spreadsheet or a naive writer gets wrong.
AWKWARD_NAMES = [
    ("Zoë", "Ångström"),
    ('Say "hi"', "O'Brien, Jr."),
    ("Line\nbreak", "Carriage\r\nreturn"),
    ("=1+2", "  padded  "),
    ("日本", "😀,;\t"),
]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No read budget in the way (the budget tests set their own)."""
    return {"RATELIMIT_ENABLED": False}


def seed(client: FlaskClient) -> dict[str, Any]:
    """Patients with awkward names, a null and a set middle name; negative and large amounts."""
    patients = [
        patient_record(f"p{n}", firstName=first, lastName=last, middleName=None)
        for n, (first, last) in enumerate(AWKWARD_NAMES)
    ]
    patients.append(patient_record('p,"quoted"\nid', middleName="Middle", dateOfBirth=None))
    patients.append(patient_record("nobody-pays"))
    sync(client, "patients", patients)
    amounts = ["-12.50", "9999999999.99", "0.01", "12.30", "-0.05", "100", "7.5"]
    payments = [payment_record(f"m{n}", f"p{n % 5}", amount) for n, amount in enumerate(amounts)]
    payments.append(payment_record("m-last", 'p,"quoted"\nid', "-9999999999.99"))
    return sync(client, "payments", payments)


def read_csv(response: TestResponse) -> list[dict[str, str]]:
    """The response's rows as dictionaries, after checking the header is what was asked."""
    text = response.get_data().decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def as_json_cells(item: dict[str, Any]) -> dict[str, str]:
    """A JSON listing item as the CSV should write it: the expectation, written independently."""
    cells = {}
    for key, value in item.items():
        if key in NESTED:
            cells[key] = value  # compared parsed, in assert_same_rows
        elif value is None:
            cells[key] = ""
        elif key in MONEY:
            cells[key] = str(Decimal(value).quantize(Decimal("0.01")))
        else:
            cells[key] = str(value)
    return cells


def assert_same_rows(rows: list[dict[str, str]], items: list[dict[str, Any]]) -> None:
    """The CSV rows equal the JSON items, row for row and cell for cell."""
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        expected = as_json_cells(item)
        for key in NESTED:
            if key in row:
                parsed = None if row[key] == "" else json.loads(row[key], parse_float=Decimal)
                assert parsed == expected.pop(key)
                row = {k: v for k, v in row.items() if k != key}
        assert row == expected


def test_patients_csv_equals_the_json_listing_row_for_row(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/patients?limit=2", headers=CSV)
    assert response.status_code == 200
    assert_same_rows(read_csv(response), get_all(client, "/patients?limit=3"))


def test_payments_csv_equals_the_json_listing_row_for_row(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/payments", headers=CSV)
    assert_same_rows(read_csv(response), get_all(client, "/payments?limit=3"))


def test_sync_changes_csv_equals_the_json_listing_row_for_row(client: FlaskClient) -> None:
    seed(client)
    sync(client, "payments", [payment_record("m1", "p2", "5.00"), payment_record("m9", "p0", "1")])
    report = sync(client, "payments", [payment_record("m1", "p3", "-5.00")])
    response = client.get(f"/syncs/{report['syncId']}/changes?limit=1", headers=CSV)
    rows = read_csv(response)
    assert {row["op"] for row in rows} == {"updated", "deleted"}
    assert_same_rows(rows, get_all(client, f"/syncs/{report['syncId']}/changes?limit=2"))


def test_csv_honours_filters_sort_and_ignores_limit_and_cursor(client: FlaskClient) -> None:
    seed(client)
    query = "payment_min=-13&payments_max=100&sort=-paymentsTotal"
    response = client.get(f"/patients?{query}&limit=1&cursor=junk&unknown=1", headers=CSV)
    assert response.status_code == 200
    assert_same_rows(read_csv(response), get_all(client, f"/patients?{query}&limit=2"))


def test_csv_of_one_patients_payments(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/payments?external_id=p1", headers=CSV)
    rows = read_csv(response)
    assert [row["patientId"] for row in rows] == ["p1", "p1"]
    assert_same_rows(rows, get_all(client, "/payments?external_id=p1"))


def test_csv_as_of_lists_the_replica_as_it_stood(client: FlaskClient) -> None:
    seed(client)
    before = quote(client.get("/syncs?limit=1").get_json()[0]["finishedAt"])
    sync(client, "payments", [payment_record("m1", "p1", "3.00")])
    for listing in ("/patients?sort=paymentsTotal", "/payments"):
        url = f"{listing}{'&' if '?' in listing else '?'}as_of={before}"
        rows = read_csv(client.get(url, headers=CSV))
        assert_same_rows(rows, get_all(client, url))
    now = read_csv(client.get("/payments", headers=CSV))
    assert [row["externalId"] for row in now] == ["m1"]


def test_csv_header_row_is_the_json_keys_in_order(client: FlaskClient) -> None:
    report = seed(client)
    for url, keys in (
        ("/patients", PATIENT_KEYS),
        ("/payments", PAYMENT_KEYS),
        (f"/syncs/{report['syncId']}/changes", SYNC_CHANGE_KEYS),
    ):
        first_line = client.get(url, headers=CSV).get_data().split(b"\r\n")[0]
        json_keys = list(client.get(url).get_json()[0])
        assert first_line.decode().split(",") == json_keys == list(keys)


def test_csv_of_an_empty_listing_is_its_header_row(client: FlaskClient) -> None:
    response = client.get("/payments", headers=CSV)
    assert response.get_data() == b"id,externalId,patientId,amount,created,updated\r\n"


def test_csv_is_utf8_text_without_a_byte_order_mark(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/patients", headers=CSV)
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body = response.get_data()
    assert not body.startswith(b"\xef\xbb\xbf")
    assert "Ångström".encode() in body


def test_csv_quotes_fields_as_rfc_4180_says(client: FlaskClient) -> None:
    seed(client)
    body = client.get("/patients", headers=CSV).get_data().decode()
    assert '"Say ""hi""","O\'Brien, Jr."' in body
    assert '"Line\nbreak","Carriage\r\nreturn"' in body
    assert body.endswith("\r\n")


def test_csv_writes_null_as_an_empty_cell(client: FlaskClient) -> None:
    seed(client)
    rows = read_csv(client.get("/patients", headers=CSV))
    assert rows[0]["middleName"] == ""
    assert [row["middleName"] for row in rows if row["externalId"].startswith("p,")] == ["Middle"]


def test_csv_writes_amounts_with_exactly_two_decimals(client: FlaskClient) -> None:
    seed(client)
    amounts = [row["amount"] for row in read_csv(client.get("/payments", headers=CSV))]
    assert amounts == [
        "-12.50",
        "9999999999.99",
        "0.01",
        "12.30",
        "-0.05",
        "100.00",
        "7.50",
        "-9999999999.99",
    ]
    totals = {
        r["externalId"]: r["paymentsTotal"] for r in read_csv(client.get("/patients", headers=CSV))
    }
    assert totals["nobody-pays"] == "0.00"
    assert totals["p0"] == "87.50"


def test_json_stays_the_default(client: FlaskClient) -> None:
    seed(client)
    for accept in (None, "*/*", "application/json", "text/csv;q=0.5, application/json"):
        response = client.get("/patients", headers={"Accept": accept} if accept else {})
        assert response.mimetype == "application/json", accept
        assert "Accept" in response.headers["Vary"]


def test_accept_prefers_csv_by_its_quality(client: FlaskClient) -> None:
    seed(client)
    for accept in ("text/csv", "text/*", "application/json;q=0.2, text/csv;q=0.9"):
        response = client.get("/patients", headers={"Accept": accept})
        assert response.mimetype == "text/csv", accept
        response.close()


def test_bad_filter_values_are_422_json_even_asking_for_csv(client: FlaskClient) -> None:
    for url, parameter in (
        ("/patients?payment_min=abc", "payment_min"),
        ("/patients?sort=name", "sort"),
        ("/patients?as_of=yesterday", "as_of"),
        ("/payments?external_id=%00", "external_id"),
    ):
        response = client.get(url, headers=CSV)
        assert response.status_code == 422, url
        assert response.mimetype == "application/json"
        assert error_code(response) == "invalid_parameter"
        assert parameter in json.dumps(response.get_json()["error"]["details"])


def test_csv_of_an_unknown_sync_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/syncs/999/changes", headers=CSV)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_csv_has_an_etag_of_its_own_and_304s(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/payments", headers=CSV)
    response.get_data()
    etag = response.headers["ETag"]
    assert etag != client.get("/payments").headers["ETag"]
    again = client.get("/payments", headers={**CSV, "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    sync(client, "payments", [payment_record("m1", "p1", "1.00")])
    changed = client.get("/payments", headers={**CSV, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.get_data().count(b"\r\n") == 2


def test_csv_is_offered_as_an_attachment(client: FlaskClient) -> None:
    response = client.get("/patients", headers=CSV)
    response.close()  # the body is not needed: the export ends here
    assert response.headers["Content-Disposition"] == 'attachment; filename="patients.csv"'
    assert "X-Request-ID" in response.headers


def test_csv_is_streamed(client: FlaskClient) -> None:
    seed(client)
    response = client.get("/payments", headers=CSV)
    assert response.is_streamed
    assert response.get_data().count(b"\r\n") == 9


@pytest.mark.parametrize(
    "app_config", [{"API_READ_TOKENS": ("reader-token",), "RATELIMIT_ENABLED": False}]
)
def test_csv_needs_a_read_token(client: FlaskClient) -> None:
    assert client.get("/patients", headers=CSV).status_code == 401
    allowed = client.get("/patients", headers={**CSV, "Authorization": "Bearer reader-token"})
    assert allowed.status_code == 200 and allowed.mimetype == "text/csv"
    assert allowed.get_data().startswith(b"id,externalId,")


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "RATELIMIT_READ": "4 per minute"}]
)
def test_an_export_spends_one_read_per_thousand_rows(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record(f"p{n:04}") for n in range(2500)])
    rows = read_csv(client.get("/patients", headers=CSV))
    # The request paid for rows 1-1000, rows 1001-2000 and 2001-2500 one read each.
    assert len(rows) == 2500
    assert client.get("/patients?limit=1").status_code == 200
    refused = client.get("/patients?limit=1")
    assert refused.status_code == 429 and error_code(refused) == "rate_limited"


def test_export_meter_charges_each_thousand_rows_begun_after_the_first() -> None:
    charged: list[int] = []
    meter = ExportMeter(lambda: charged.append(1) or None)
    for rows in (999, 1, 1, 1999, 2000):
        meter.count(rows)
    # 999, 1000, 1001 (a second thousand begun), 3000, 5000 rows.
    assert (meter.rows, meter.reads, len(charged)) == (5000, 5, 4)


def test_export_meter_waits_for_the_budget_to_refill() -> None:
    answers = iter([time.time() + 0.5, time.time() + 0.5, None])
    slept: list[float] = []
    meter = ExportMeter(lambda: next(answers), sleep=slept.append)
    meter.count(1500)
    assert meter.reads == 2 and len(slept) == 2 and all(0 < s <= 0.5 for s in slept)
