"""No 5xx from any string a client can put in a path segment or a query value (SPEC §4).

Hypothesis builds URLs for every route of the app (read from its URL map, so
a new route is covered the day it is added), with raw bytes percent-encoded
into each path variable and each query parameter: NUL bytes, invalid UTF-8,
numbers of any magnitude, nested brackets, very long values.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.helpers import patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only

QUERY_NAMES = (
    "payment_min",
    "payment_max",
    "payments_min",
    "payments_max",
    "sort",
    "limit",
    "cursor",
    "external_id",
    "dry_run",
    "force",
    "junk",
    "id",
    "as_of",
)
HOSTILE = [
    b"\x00",
    b"%00",
    b"1e1000000",
    b"-1e999999999",
    b"1E+2147483647",
    b"NaN",
    b"Infinity",
    b"-0",
    b"0.000000000000000000000000000001",
    b"9" * 5000,
    b"[" * 1000,
    base64.urlsafe_b64encode(b"[" * 1000),
    base64.urlsafe_b64encode(b'["paymentsTotal","1e1000000",1]'),
    b"\xff\xfe",
    b"\xed\xa0\x80",
    b"..",
    b"/",
    b"//",
    b"%",
    b"true",
    b"false",
    b"",
    b" ",
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.binary(max_size=64),
    st.text(max_size=64).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Limits off: the generated requests far exceed any budget."""
    return {"RATELIMIT_ENABLED": False}


@pytest.fixture
def seeded(client: FlaskClient) -> FlaskClient:
    """A few rows, so that reads run their queries rather than stop at empty tables."""
    sync(client, "patients", [patient_record("p1"), patient_record("p2")])
    sync(
        client, "payments", [payment_record("m1", "p1", "1.00"), payment_record("m2", "p2", "2.50")]
    )
    return client


def routes(app: Flask) -> list[tuple[str, str]]:
    """(method, rule) for every route and method the app serves."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or ())
        if method not in ("HEAD", "OPTIONS")
    )


def fill(rule: str, values: list[bytes]) -> str:
    """The rule's path with each variable replaced by a percent-encoded value."""
    remaining = iter(values)
    return _VARIABLE.sub(lambda _: quote_from_bytes(next(remaining, b"x") or b"x", safe=""), rule)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_path_or_query_string_gives_a_5xx(
    seeded: FlaskClient, app: Flask, data: st.DataObject
) -> None:
    method, rule = data.draw(st.sampled_from(routes(app)), label="route")
    path = fill(rule, data.draw(st.lists(VALUES, min_size=2, max_size=2), label="segments"))
    params = data.draw(
        st.dictionaries(st.sampled_from(QUERY_NAMES), VALUES, max_size=4), label="query"
    )
    query = "&".join(f"{name}={quote_from_bytes(value, safe='')}" for name, value in params.items())
    response = seeded.open(
        f"{path}?{query}", method=method, data=b"[]", content_type="application/json"
    )
    assert response.status_code < 500, (method, path, query, response.get_data(as_text=True))
    if response.status_code >= 400 and rule.startswith("/console"):
        # The console answers people: its errors are HTML pages, not the JSON envelope.
        assert response.mimetype == "text/html", (method, path, query)
    elif response.status_code >= 400:
        assert response.get_json()["error"]["code"], (method, path, query)


def test_every_route_is_fuzzed(app: Flask) -> None:
    served = {rule for _, rule in routes(app)}
    assert {
        "/patients",
        "/patients/<external_id:external_id>",
        "/payments",
        "/payments/<external_id:external_id>",
        "/syncs",
        "/syncs/<int(max=2147483647):sync_id>",
        "/syncs/<int(max=2147483647):sync_id>/changes",
    } <= served
