"""Access control (SPEC §4): bearer tokens, read vs write, open probes and docs."""

from __future__ import annotations

import hmac
import logging
import re
from typing import Any
from unittest import mock

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from app.errors import APIError
from app.web.auth import TokenRegistry, add_failure_hook
from tests.support.helpers import error_code, patient_record, post_snapshot

READ_TOKEN = "read-token-0123456789"
WRITE_TOKEN = "write-token-0123456789"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
WRITE = {"Authorization": f"Bearer {WRITE_TOKEN}"}

DATA_READS = ["/patients", "/patients/p1", "/payments?external_id=p1", "/syncs", "/syncs/1"]
OPEN_PATHS = [
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/metrics",
    "/docs/assets/swagger-ui.css",
]
# Every route a client may call without a token; adding one must be deliberate.
OPEN_RULES = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/metrics",
    "/docs/assets/<filename>",
    # The console's sign-in and sign-out forms and its stylesheet (no patient data).
    "/console/sign-in",
    "/console/sign-out",
    "/console/static/<path:filename>",
}


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Auth on: one read token, one write token."""
    return {"API_READ_TOKENS": (READ_TOKEN,), "API_WRITE_TOKENS": (WRITE_TOKEN,)}


@pytest.mark.parametrize("path", DATA_READS)
def test_reading_patient_data_without_a_token_is_401(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nope",
        "Bearer",
        "Bearer   ",
        f"Basic {READ_TOKEN}",
        READ_TOKEN,
        f"Bearer {READ_TOKEN}x",
        f"Bearer {READ_TOKEN[:-1]}",
    ],
)
def test_unknown_or_malformed_token_is_401(client: FlaskClient, header: str) -> None:
    response = client.get("/patients", headers={"Authorization": header})
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [READ, WRITE, {"Authorization": f"bearer {READ_TOKEN}"}],
    ids=["read-token", "write-token", "lowercase-scheme"],
)
def test_read_and_write_tokens_can_read(client: FlaskClient, headers: dict[str, str]) -> None:
    for path in ("/patients", "/syncs", "/payments?external_id=p1"):
        assert client.get(path, headers=headers).status_code == 200


@pytest.mark.parametrize("entity", ["patients", "payments"])
def test_sync_without_a_token_is_401_and_changes_nothing(client: FlaskClient, entity: str) -> None:
    response = post_snapshot(client, entity, [])
    assert response.status_code == 401
    assert client.get("/syncs", headers=READ).get_json() == []


def test_read_token_on_a_sync_is_403_and_changes_nothing(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [patient_record("p1")], headers=READ)
    assert response.status_code == 403
    assert error_code(response) == "forbidden"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert client.get("/patients", headers=READ).get_json() == []


def test_write_token_can_sync(client: FlaskClient) -> None:
    response = post_snapshot(client, "patients", [patient_record("p1")], headers=WRITE)
    assert response.status_code == 200
    assert response.get_json()["created"] == 1
    assert [p["externalId"] for p in client.get("/patients", headers=READ).get_json()] == ["p1"]


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_probes_docs_and_metrics_need_no_token(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        assert response.status_code == 200, response.get_data(as_text=True)[:200]


def test_unknown_path_needs_a_token_before_it_is_a_404(client: FlaskClient) -> None:
    assert client.get("/no-such-thing").status_code == 401
    assert client.get("/no-such-thing", headers=READ).status_code == 404


def test_every_route_but_the_open_ones_needs_a_token(app: Flask, client: FlaskClient) -> None:
    open_rules = set()
    for rule in app.url_map.iter_rules():
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x1", rule.rule).replace("/x1", "/1")
        for method in sorted((rule.methods or set()) - {"OPTIONS"}):
            with client.open(url, method=method) as response:
                if response.status_code != 401:
                    open_rules.add(rule.rule)
    assert open_rules == OPEN_RULES


def test_a_token_in_both_lists_can_write() -> None:
    registry = TokenRegistry(read_tokens=("both",), write_tokens=("both",))
    principal = registry.identify("both")
    assert principal is not None
    assert principal.scope.name == "WRITE"


def test_every_configured_token_is_compared_even_after_a_match() -> None:
    """No early exit: the time to answer does not reveal which token matched."""
    registry = TokenRegistry(read_tokens=("a", "b"), write_tokens=("c",))
    with mock.patch("app.web.auth.hmac.compare_digest", wraps=hmac.compare_digest) as compare:
        assert registry.identify("a") is not None
    assert compare.call_count == 3
    assert all(len(args[0]) == len(args[1]) == 32 for args, _ in compare.call_args_list)


def test_principal_names_do_not_reveal_the_token() -> None:
    principal = TokenRegistry((READ_TOKEN,), ()).identify(READ_TOKEN)
    assert principal is not None
    assert READ_TOKEN not in principal.name
    assert re.fullmatch(r"[0-9a-f]{12}", principal.name)


def test_failure_hooks_run_only_when_authentication_fails(app: Flask, client: FlaskClient) -> None:
    failed: list[str] = []
    add_failure_hook(app, lambda: failed.append(request.full_path))
    client.get("/patients?valid", headers=READ)
    post_snapshot(client, "patients", [], query="?forbidden", headers=READ)
    client.get("/patients?missing")
    client.get("/patients?unknown", headers={"Authorization": "Bearer nope"})
    assert failed == ["/patients?missing", "/patients?unknown"]


def test_a_failure_hook_can_answer_instead_of_the_401(app: Flask, client: FlaskClient) -> None:
    def refuse() -> None:
        raise APIError(429, "rate_limited", "Slow down.")

    add_failure_hook(app, refuse)
    response = client.get("/patients", headers={"Authorization": "Bearer nope"})
    assert (response.status_code, error_code(response)) == (429, "rate_limited")


class TestWithoutTokens:
    """Development with no tokens configured: auth is off, with a warning."""

    @pytest.fixture
    def app_config(self) -> dict[str, Any]:
        return {"API_READ_TOKENS": (), "API_WRITE_TOKENS": ()}

    def test_everything_is_open(self, client: FlaskClient) -> None:
        assert client.get("/patients").status_code == 200
        assert post_snapshot(client, "patients", [patient_record("p1")]).status_code == 200

    def test_a_warning_is_logged_when_the_app_starts(
        self, database_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        from app import create_app
        from tests.support.databases import base_config

        with caplog.at_level(logging.WARNING, logger="app.web.auth"):
            create_app(base_config(database_url))
        assert any("access control is OFF" in record.getMessage() for record in caplog.records)
