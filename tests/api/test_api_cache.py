"""GET responses are cached per data version: never stale, and cheap when repeated."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.api.cache import CachedResponse, ResponseCache
from app.extensions import db
from app.reads import live
from tests.support.helpers import next_link, patient_record, sync


@pytest.fixture
def list_queries(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records each time the patients list query is built."""
    calls: list[Any] = []
    original = live.live_patients

    def counting(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(live, "live_patients", counting)
    return calls


def test_repeated_list_is_served_from_the_cache(client: FlaskClient, list_queries: list) -> None:
    sync(client, "patients", [patient_record("a")])
    first = client.get("/patients")
    second = client.get("/patients")
    assert first.get_data() == second.get_data()
    assert len(list_queries) == 1


def test_a_sync_makes_the_next_read_fresh(client: FlaskClient, list_queries: list) -> None:
    sync(client, "patients", [patient_record("a")])
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["a"]
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert [p["externalId"] for p in client.get("/patients").get_json()] == ["a", "b"]
    assert len(list_queries) == 2


def test_cached_page_keeps_its_link_header(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    first = client.get("/patients?limit=1")
    second = client.get("/patients?limit=1")
    assert next_link(first) is not None
    assert next_link(second) == next_link(first)
    assert second.content_type == "application/json"


def test_cache_key_includes_the_host_so_links_stay_right(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    client.get("/patients?limit=1")
    other = client.get("/patients?limit=1", base_url="http://replica.example")
    assert (next_link(other) or "").startswith("http://replica.example/patients?")


def test_errors_are_not_cached(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    sync(client, "patients", [patient_record("a")])
    lookups: list[str] = []
    original = live.live_patient

    def counting(session: Any, external_id: str) -> Any:
        lookups.append(external_id)
        return original(session, external_id)

    monkeypatch.setattr(live, "live_patient", counting)
    assert client.get("/patients/b").status_code == 404
    assert client.get("/patients/b").status_code == 404
    # Same data version, same URL: a cached 404 would have skipped the second lookup.
    assert lookups == ["b", "b"]


@pytest.mark.parametrize("app_config", [{"READ_CACHE_SIZE": 0}])
def test_cache_size_zero_turns_the_cache_off(
    client: FlaskClient, list_queries: list, app: Flask
) -> None:
    sync(client, "patients", [patient_record("a")])
    client.get("/patients")
    client.get("/patients")
    assert len(list_queries) == 2


def _entry(body: bytes) -> CachedResponse:
    return CachedResponse(body, ())


def test_response_cache_evicts_the_least_recently_used() -> None:
    cache = ResponseCache(max_entries=2, max_bytes=1 << 20)
    for key in ("a", "b"):
        cache.put((key,), _entry(key.encode()))
    assert cache.get(("a",)) is not None
    cache.put(("c",), _entry(b"c"))
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is not None
    assert cache.get(("c",)) is not None


def test_response_cache_stays_within_its_byte_budget() -> None:
    cache = ResponseCache(max_entries=10_000, max_bytes=100_000)
    for number in range(1000):
        cache.put((number,), _entry(b"x" * 5000))
    assert 0 < cache.bytes <= 100_000
    assert len(cache) < 1000
    assert cache.get((999,)) is not None


def test_response_cache_does_not_store_an_entry_larger_than_its_share() -> None:
    cache = ResponseCache(max_entries=10, max_bytes=80_000)
    cache.put(("small",), _entry(b"s"))
    cache.put(("huge",), _entry(b"h" * 20_000))
    assert cache.get(("huge",)) is None
    assert cache.get(("small",)) is not None


def test_unknown_query_parameters_make_no_new_cache_keys(
    client: FlaskClient, app: Flask, list_queries: list
) -> None:
    sync(client, "patients", [patient_record("a")])
    for number in range(20):
        assert client.get(f"/patients?junk={number}").status_code == 200
    assert len(list_queries) == 1
    assert len(app.extensions["read_cache"]) == 1


def test_next_link_leaves_out_unknown_parameters(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    link = next_link(client.get("/patients?limit=1&junk=secret")) or ""
    assert "junk" not in link
    assert [p["externalId"] for p in client.get(link).get_json()] == ["b"]


def test_a_manual_sql_change_makes_the_next_read_fresh(client: FlaskClient, app: Flask) -> None:
    sync(client, "patients", [patient_record("a")])
    assert client.get("/patients").get_json()[0]["firstName"] == "Ada"
    with app.app_context():
        db.session.execute(sa.text("UPDATE patients SET first_name = 'X'"))
        db.session.commit()
    assert client.get("/patients").get_json()[0]["firstName"] == "X"


def test_a_manual_sql_delete_makes_the_next_read_fresh(client: FlaskClient, app: Flask) -> None:
    sync(client, "patients", [patient_record("a")])
    assert len(client.get("/patients/a").get_json()) > 0
    with app.app_context():
        db.session.execute(sa.text("DELETE FROM patients"))
        db.session.commit()
    assert client.get("/patients/a").status_code == 404


@pytest.mark.postgresql_only
def test_truncate_restart_identity_and_resync_is_never_served_from_the_cache(
    client: FlaskClient, app: Flask
) -> None:
    with app.app_context():
        db.session.execute(
            sa.text("TRUNCATE patients, payments, sync_runs RESTART IDENTITY CASCADE")
        )
        db.session.commit()
    sync(client, "patients", [patient_record("a", firstName="Before")])
    before = client.get("/syncs/1").get_json()
    assert client.get("/patients").get_json()[0]["firstName"] == "Before"
    with app.app_context():
        db.session.execute(
            sa.text("TRUNCATE patients, payments, sync_runs RESTART IDENTITY CASCADE")
        )
        db.session.commit()
    report = sync(client, "patients", [patient_record("a", firstName="After")])
    # The same sync id 1 and patient id 1 now name a different state.
    assert report["syncId"] == 1
    assert client.get("/syncs/1").get_json()["startedAt"] != before["startedAt"]
    assert client.get("/patients").get_json()[0]["firstName"] == "After"


def test_data_version_token_changes_with_every_change_and_is_not_a_counter(
    client: FlaskClient, app: Flask
) -> None:
    tokens = []
    with app.app_context():
        tokens.append(live.data_version(db.session))
    for name in ("a", "b"):
        sync(client, "patients", [patient_record(name)])
        with app.app_context():
            tokens.append(live.data_version(db.session))
    assert len(set(tokens)) == 3
    assert all(len(token or "") >= 32 for token in tokens)


def test_reads_carry_an_etag_and_private_no_cache(client: FlaskClient) -> None:
    sync_id = sync(client, "patients", [patient_record("a")])["syncId"]
    for url in ("/patients", "/patients/a", "/payments", "/syncs", f"/syncs/{sync_id}"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["ETag"].startswith('"')
        assert response.headers["Cache-Control"] == "private, no-cache"


def test_if_none_match_with_the_current_etag_gets_304_without_a_body(
    client: FlaskClient, list_queries: list
) -> None:
    sync(client, "patients", [patient_record("a")])
    etag = client.get("/patients").headers["ETag"]
    revalidated = client.get("/patients", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert revalidated.get_data() == b""
    assert revalidated.headers["ETag"] == etag
    assert len(list_queries) == 1


def test_an_etag_from_before_a_sync_gets_the_new_data(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a")])
    etag = client.get("/patients").headers["ETag"]
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    response = client.get("/patients", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["ETag"] != etag
    assert len(response.get_json()) == 2


def test_different_queries_have_different_etags(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("a"), patient_record("b")])
    assert (
        client.get("/patients").headers["ETag"] != client.get("/patients?limit=1").headers["ETag"]
    )


def test_404_carries_no_etag(client: FlaskClient) -> None:
    assert "ETag" not in client.get("/patients/nobody").headers


@pytest.mark.parametrize("app_config", [{"READ_FAST_PATH": False}])
def test_a_page_whose_pin_a_commit_raced_is_read_again_in_one_snapshot(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(client, "patients", [patient_record(f"p{i}") for i in range(3)])
    real = live.pin_instant
    reads: list[str | None] = []

    def raced(reader: Any) -> tuple[Any, str | None]:
        # The first pin is read after a sync replaced the page's version.
        instant, version = real(reader)
        reads.append(version)
        return (instant, "another state") if len(reads) == 1 else (instant, version)

    monkeypatch.setattr(live, "pin_instant", raced)
    response = client.get("/patients?limit=2")
    assert response.status_code == 200
    assert len(reads) == 2  # pinned again, in the snapshot the page was read again in
    assert [item["externalId"] for item in response.get_json()] == ["p0", "p1"]
    assert next_link(response) is not None
