"""The first page of GET /patients answered in front of Flask (app/api/fast_pages.py).

Its answers must be Flask's, byte for byte, and it must leave every other
request to Flask untouched. Flask's own answer is had by calling
``Flask.wsgi_app`` directly, below every middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client, TestResponse

from app.extensions import db
from app.models import DataVersion
from tests.support.databases import QueryRecorder
from tests.support.helpers import get_all, patient_record, payment_record, sync

pytestmark = pytest.mark.postgresql_only

READ_TOKEN = "fast-path-reader-0123456789"
WRITE_TOKEN = "fast-path-writer-0123456789"
READER = {"Authorization": f"Bearer {READ_TOKEN}", "X-Request-ID": "req-1"}

FIRST_PAGES = [
    "/patients",
    "/patients?payment_min=10&payment_max=40",
    "/patients?payment_min=10.005&payment_max=40.5&limit=3",
    "/patients?payments_min=20&limit=2",
    "/patients?payment_max=25&sort=-paymentsTotal&limit=4",
    "/patients?sort=paymentsTotal&limit=5",
    "/patients?payment_min=1000000",
    "/patients?limit=1000",
]


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Access control and rate limits on, as in production; the cache off (misses only)."""
    return {
        "API_READ_TOKENS": (READ_TOKEN,),
        "API_WRITE_TOKENS": (WRITE_TOKEN,),
        "RATELIMIT_READ": "1000 per minute",
        "READ_CACHE_SIZE": 0,
    }


@pytest.fixture
def seeded(client: FlaskClient) -> None:
    """Twelve patients whose totals differ, three payments each."""
    writer = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    client.environ_base["HTTP_AUTHORIZATION"] = writer["Authorization"]
    sync(client, "patients", [patient_record(f"p{i}") for i in range(12)])
    sync(
        client,
        "payments",
        [payment_record(f"m{i}", f"p{i % 12}", Decimal(i) + Decimal("0.5")) for i in range(36)],
    )
    del client.environ_base["HTTP_AUTHORIZATION"]


@pytest.fixture
def flask_only(app: Flask) -> Client:
    """A client of Flask itself, without the fast path in front of it."""
    return Client(lambda environ, start: Flask.wsgi_app(app, environ, start), TestResponse)


@pytest.fixture
def flask_dispatches(app: Flask) -> Iterator[mock.MagicMock]:
    """Counts the requests Flask dispatches (none for a page the fast path answered)."""
    with mock.patch.object(
        app, "full_dispatch_request", wraps=app.full_dispatch_request
    ) as dispatched:
        yield dispatched


def answer(response: TestResponse) -> tuple[str, list[tuple[str, str]], bytes]:
    return response.status, response.headers.to_wsgi_list(), response.get_data()


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "application/json, text/plain, */*", "text/html"]
)
def test_a_first_page_asked_for_as_json_is_flasks_answer(
    client: FlaskClient,
    flask_only: Client,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    accept: str,
) -> None:
    headers = READER | {"Accept": accept}
    fast = client.get("/patients?limit=3", headers=headers)
    assert flask_dispatches.call_count == 0
    assert answer(fast) == answer(flask_only.get("/patients?limit=3", headers=headers))


@pytest.mark.parametrize("url", FIRST_PAGES)
def test_a_first_page_is_flasks_answer_byte_for_byte(
    client: FlaskClient,
    flask_only: Client,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    url: str,
) -> None:
    fast = client.get(url, headers=READER)
    assert flask_dispatches.call_count == 0, "the fast path left it to Flask"
    assert answer(fast) == answer(flask_only.get(url, headers=READER))
    assert fast.status_code == 200


@pytest.mark.parametrize("sort", ["paymentsTotal", "-paymentsTotal"])
def test_totals_past_a_floats_precision_give_flasks_cursors(
    app: Flask, client: FlaskClient, flask_only: Client, seeded: None, sort: str
) -> None:
    # Values pass through their types' result processors for this dialect, as in
    # SQLAlchemy: the next page's cursor holds each total exactly, in whole cents.
    with app.app_context():
        db.session.execute(
            sa.text(
                "UPDATE patients SET payments_total = CASE external_id "
                "WHEN 'p3' THEN 10000000000000000 WHEN 'p4' THEN 12345678901234567.89 "
                "ELSE payments_total END"
            )
        )
        db.session.commit()
    url = f"/patients?sort={sort}&limit=1&payment_min=1"
    fast = client.get(url, headers=READER)
    assert answer(fast) == answer(flask_only.get(url, headers=READER))
    client.environ_base["HTTP_AUTHORIZATION"] = READER["Authorization"]
    listed = [item["externalId"] for item in get_all(client, url)]
    assert sorted(listed) == sorted(f"p{i}" for i in range(12))  # each once


@pytest.mark.parametrize("app_config", [{"TRUSTED_PROXIES": 1}])
def test_behind_a_trusted_proxy_a_first_page_links_where_flasks_does(
    app: Flask, client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    forwarded = READER | {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example.org",
        "X-Forwarded-Prefix": "/pp",
    }
    flask_behind_proxy = Client(
        ProxyFix(
            lambda environ, start: Flask.wsgi_app(app, environ, start),
            x_for=1,
            x_proto=1,
            x_host=1,
            x_prefix=1,
        ),
        TestResponse,
    )
    fast = client.get("/patients?limit=2", headers=forwarded)
    assert flask_dispatches.call_count == 0
    assert fast.headers["Link"].startswith("<https://api.example.org/pp/patients?")
    assert answer(fast) == answer(flask_behind_proxy.get("/patients?limit=2", headers=forwarded))


def test_each_host_and_root_gets_links_to_itself(
    client: FlaskClient, flask_only: Client, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    for base_url in [
        "http://a.example",
        "http://b.example:8080",
        "http://a.example/pp",
        "https://a.example",
        "http://a.example",
    ]:
        dispatched = flask_dispatches.call_count
        fast = client.get("/patients?limit=2", headers=READER, base_url=base_url)
        assert flask_dispatches.call_count == dispatched  # the fast path answered it
        assert fast.headers["Link"].startswith(f"<{base_url}/patients?")
        flask = flask_only.get("/patients?limit=2", headers=READER, base_url=base_url)
        assert answer(fast) == answer(flask)


@pytest.mark.parametrize("app_config", [{"READ_CACHE_SIZE": 256}])
def test_the_fast_path_and_flask_share_the_read_cache(
    client: FlaskClient, flask_only: Client, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    url = "/patients?payment_min=10&payment_max=40&limit=2"
    stored_by_fast_path = client.get(url, headers=READER)
    replayed_by_flask = flask_only.get(url, headers=READER)
    assert answer(replayed_by_flask) == answer(stored_by_fast_path)
    other = "/patients?payment_min=11&limit=2"
    stored_by_flask = flask_only.get(other, headers=READER)
    assert answer(client.get(other, headers=READER)) == answer(stored_by_flask)
    assert flask_dispatches.call_count == 2  # the two flask_only requests


def test_a_first_page_says_the_link_to_the_next_page(client: FlaskClient, seeded: None) -> None:
    first = client.get("/patients?limit=5", headers=READER)
    assert [item["externalId"] for item in first.get_json()] == [f"p{i}" for i in range(5)]
    link = first.headers["Link"]
    assert link.startswith("<http://localhost/patients?sort=id&limit=5&cursor=")
    second = client.get(link[1 : link.index(">")], headers=READER)
    assert [item["externalId"] for item in second.get_json()] == [f"p{i}" for i in range(5, 10)]


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/patients?payment_min=10", {"If-None-Match": '"1.abc"'}),
        ("/patients?payment_min=10", {"Accept": "text/csv"}),
        ("/patients?payment_min=10", {"Accept": "application/json;q=0.5, text/csv"}),
        ("/patients?payment_min=10&payment_min=11", {}),
        ("/patients?payment_min=10&color=red", {}),
        ("/patients?payment_min=ten", {}),
        ("/patients?sort=lastName", {}),
        ("/patients?as_of=2026-01-01T00:00:00Z", {}),
        ("/patients?cursor=abc", {}),
        ("/patients/p1", {}),
        ("/patients/", {}),
    ],
)
def test_anything_but_a_plain_first_page_is_left_to_flask(
    client: FlaskClient,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    url: str,
    headers: dict[str, str],
) -> None:
    response = client.get(url, headers=READER | headers)
    response.close()
    assert flask_dispatches.call_count == 1
    assert response.status_code < 500


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", f"Basic {READ_TOKEN}"], ids=str
)
def test_a_request_without_a_known_token_gets_flasks_401(
    client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/patients", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert flask_dispatches.call_count == 1


@pytest.mark.parametrize("app_config", [{"RATELIMIT_READ": "3 per minute"}])
def test_the_fast_path_spends_the_read_budget_and_flask_refuses_once_it_is_spent(
    app: Flask, client: FlaskClient, seeded: None
) -> None:
    statuses = [client.get("/patients", headers=READER).status_code for _ in range(3)]
    refused = client.get("/patients?payment_min=1", headers=READER)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("app_config", [{"RATELIMIT_READ": "2 per minute"}])
def test_a_read_the_fast_path_charged_and_left_to_flask_is_charged_once(
    app: Flask, client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    # Without its data version row (removed by hand) the fast path charges the read,
    # then leaves it to Flask, which must not charge it again.
    with app.app_context():
        db.session.query(DataVersion).delete()
        db.session.commit()
    statuses = [client.get("/patients", headers=READER).status_code for _ in range(3)]
    assert flask_dispatches.call_count == 3  # Flask answered each, the third with its 429
    assert statuses == [200, 200, 429]


CACHED = {
    "API_READ_TOKENS": (READ_TOKEN,),
    "API_WRITE_TOKENS": (WRITE_TOKEN,),
    "RATELIMIT_READ": "1000 per minute",
}


@pytest.mark.parametrize("app_config", [CACHED])
def test_a_cached_first_page_is_answered_after_one_statement_confirms_its_version(
    client: FlaskClient,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    query_recorder: QueryRecorder,
) -> None:
    first = client.get("/patients?limit=2", headers=READER)
    with query_recorder:
        again = client.get("/patients?limit=2", headers=READER)
    assert flask_dispatches.call_count == 0
    assert answer(again) == answer(first)
    assert len(query_recorder.statements) == 1
    assert "data_version" in query_recorder.statements[0]


@pytest.mark.parametrize("app_config", [CACHED])
def test_a_cached_first_page_a_sync_replaced_is_read_again(
    client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    before = client.get("/patients?limit=2", headers=READER)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {WRITE_TOKEN}"
    sync(client, "patients", [patient_record("p0", firstName="Zed")])
    del client.environ_base["HTTP_AUTHORIZATION"]
    dispatched = flask_dispatches.call_count
    after = client.get("/patients?limit=2", headers=READER)
    assert flask_dispatches.call_count == dispatched  # the fast path answered it
    assert [item["firstName"] for item in after.get_json()] == ["Zed"]
    assert after.headers["ETag"] != before.headers["ETag"]


@pytest.mark.parametrize("app_config", [CACHED])
def test_after_a_sync_a_page_flask_cached_under_the_new_version_is_answered_from_the_cache(
    client: FlaskClient,
    flask_only: Client,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    query_recorder: QueryRecorder,
) -> None:
    client.get("/patients?limit=2", headers=READER)  # kept under the version before the sync
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {WRITE_TOKEN}"
    sync(client, "patients", [patient_record("p0", firstName="Zed")])
    del client.environ_base["HTTP_AUTHORIZATION"]
    flask = flask_only.get("/patients?limit=2", headers=READER)  # kept under the new one
    dispatched = flask_dispatches.call_count
    with query_recorder:
        fast = client.get("/patients?limit=2", headers=READER)
    assert flask_dispatches.call_count == dispatched
    assert answer(fast) == answer(flask)
    # The version, found changed; the page then came from the cache, not a statement.
    assert len(query_recorder.statements) == 1
    assert "data_version" in query_recorder.statements[0]


def test_a_sync_committed_before_the_pin_was_read_leaves_the_page_to_flask(
    client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    from app.reads import live

    real = live.pin_instant
    reads: list[object] = []

    def raced(reader: Any) -> tuple[Any, str | None]:
        # The fast path's pin is read in another state than its page: a sync
        # committed in between. Flask's read that follows sees the real one.
        reads.append(reader)
        instant, version = real(reader)
        return (instant, "another state") if len(reads) == 1 else (instant, version)

    with mock.patch.object(live, "pin_instant", side_effect=raced):
        response = client.get("/patients?limit=2", headers=READER)
    assert len(reads) == 2  # the fast path's, then Flask's
    assert response.status_code == 200
    assert flask_dispatches.call_count == 1  # Flask read it again
    assert [item["externalId"] for item in response.get_json()] == ["p0", "p1"]
    assert "Link" in response.headers


def test_an_unexpected_error_in_the_fast_path_is_logged_and_flask_answers(
    client: FlaskClient,
    flask_only: Client,
    seeded: None,
    flask_dispatches: mock.MagicMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from app.api import fast_pages

    with mock.patch.object(fast_pages, "_first_page", side_effect=RuntimeError("a bug")):
        response = client.get("/patients?limit=2", headers=READER)
    assert flask_dispatches.call_count == 1
    assert answer(response) == answer(flask_only.get("/patients?limit=2", headers=READER))
    assert any(record.name == "app.api.fast_pages" and record.exc_info for record in caplog.records)


@pytest.mark.parametrize("app_config", [{"TRUSTED_HOSTS": ["localhost"]}])
def test_with_trusted_hosts_flask_checks_the_host(
    client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    assert client.get("/patients", headers=READER).status_code == 200
    evil = client.get("/patients", headers=READER | {"Host": "evil.example"})
    assert evil.status_code == 400
    assert flask_dispatches.call_count == 2  # both were left to Flask


def test_a_fast_page_is_logged_and_timed_as_flasks_are(
    client: FlaskClient, seeded: None, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.web.test_metrics import sample

    labels = {"endpoint": "/patients", "method": "GET", "status": "200"}
    before = sample("http_request_duration_seconds_count", **labels)
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = client.get("/patients?payment_min=10", headers=READER)
    assert response.status_code == 200
    assert sample("http_request_duration_seconds_count", **labels) == before + 1
    (line,) = [record for record in caplog.records if record.name == "app.access"]
    assert line.request_id == "req-1"  # type: ignore[attr-defined]
    assert line.fields["path"] == "/patients"  # type: ignore[attr-defined]
    assert line.fields["status"] == 200  # type: ignore[attr-defined]
    assert line.fields["principal"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("app_config", [{"READ_FAST_PATH": False}])
def test_read_fast_path_false_leaves_every_page_to_flask(
    client: FlaskClient, seeded: None, flask_dispatches: mock.MagicMock
) -> None:
    assert client.get("/patients", headers=READER).status_code == 200
    assert flask_dispatches.call_count == 1
