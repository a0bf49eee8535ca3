"""GET responses are cached per data version: never stale, and cheap when repeated."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import queries
from app.api.cache import ResponseCache
from tests.helpers import next_link, patient_record, sync


@pytest.fixture
def list_queries(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records each time the patients list query is built."""
    calls: list[Any] = []
    original = queries.live_patients

    def counting(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(queries, "live_patients", counting)
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
    original = queries.live_patient

    def counting(session: Any, external_id: str) -> Any:
        lookups.append(external_id)
        return original(session, external_id)

    monkeypatch.setattr(queries, "live_patient", counting)
    assert client.get("/patients/b").status_code == 404
    assert client.get("/patients/b").status_code == 404
    # Same data version, same URL: a cached 404 would have skipped the second lookup.
    assert lookups == ["b", "b"]


@pytest.mark.parametrize("app_config", [{"READ_CACHE_SIZE": 0}])
def test_cache_size_zero_turns_the_cache_off(client: FlaskClient, list_queries: list,
                                             app: Flask) -> None:
    sync(client, "patients", [patient_record("a")])
    client.get("/patients")
    client.get("/patients")
    assert len(list_queries) == 2


def test_response_cache_evicts_the_least_recently_used() -> None:
    cache = ResponseCache(size=2)
    for key in ("a", "b"):
        cache.put((key,), (200, key.encode(), {}))
    assert cache.get(("a",)) is not None
    cache.put(("c",), (200, b"c", {}))
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is not None
    assert cache.get(("c",)) is not None
