"""GET /openapi.json (SPEC §4): OpenAPI 3 covering every endpoint, its auth and its errors."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

# Served by the app but not API operations: the document itself and the docs page.
NOT_OPERATIONS = {"/openapi.json", "/docs", "/docs/assets/<filename>"}
OPEN_OPERATIONS = {("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get")}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    """The served document."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """{(path, method): operation} for every documented operation."""
    return {
        (path, method): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_the_document_is_openapi_3(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["description"]


def test_every_route_is_documented_with_each_of_its_methods(
    app: Flask, spec: dict[str, Any]
) -> None:
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in NOT_OPERATIONS or rule.endpoint.startswith("console."):
            continue  # the console's HTML pages are not API operations
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routed |= {
            (path, method.lower())
            for method in rule.methods or ()
            if method not in ("HEAD", "OPTIONS")
        }
    assert routed == set(operations(spec))


def test_open_operations_need_no_token_and_the_rest_a_bearer_token(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for key, operation in operations(spec).items():
        if key in OPEN_OPERATIONS:
            assert operation["security"] == [], key
        else:
            assert operation["security"] == [{"bearerAuth": []}], key
            assert {"401", "429"} <= set(operation["responses"]), key


def test_syncs_document_their_body_and_every_error_they_can_give(spec: dict[str, Any]) -> None:
    for entity, record in (("patients", "PatientRecord"), ("payments", "PaymentRecord")):
        operation = spec["paths"][f"/{entity}"]["post"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema == {"type": "array", "items": {"$ref": f"#/components/schemas/{record}"}}
        assert {"200", "400", "401", "403", "409", "413", "415", "422", "429"} <= set(
            operation["responses"]
        )
        assert {p["name"] for p in operation["parameters"]} == {"dry_run", "force"}


def test_reads_document_their_parameters(spec: dict[str, Any]) -> None:
    names = {p["name"] for p in spec["paths"]["/patients"]["get"]["parameters"]}
    assert {"payment_min", "payment_max", "sort", "limit", "cursor"} <= names
    names = {p["name"] for p in spec["paths"]["/payments"]["get"]["parameters"]}
    assert {"external_id", "limit", "cursor"} <= names


def test_error_bodies_are_documented_as_the_envelope(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    rate_limited = spec["components"]["responses"]["RATE_LIMITED"]
    assert "Retry-After" in rate_limited["headers"]
    assert rate_limited["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_records_document_their_fields(spec: dict[str, Any]) -> None:
    patient = spec["components"]["schemas"]["PatientRecord"]
    assert set(patient["required"]) == {"externalId", "firstName", "lastName"}
    assert patient["properties"]["dateOfBirth"]["format"] == "date"
    assert (
        spec["components"]["schemas"]["PaymentRecord"]["properties"]["amount"]["type"] == "number"
    )


def test_reads_document_their_etag_and_304(spec: dict[str, Any]) -> None:
    for path in (
        "/patients",
        "/patients/{external_id}",
        "/payments",
        "/payments/{external_id}",
        "/syncs",
        "/syncs/{sync_id}",
    ):
        responses = spec["paths"][path]["get"]["responses"]
        assert "ETag" in responses["200"]["headers"], path
        assert responses["304"] == {"$ref": "#/components/responses/NOT_MODIFIED"}, path


def test_data_operations_document_the_503_of_a_lost_database(spec: dict[str, Any]) -> None:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method != "parameters" and operation.get("security"):
                assert "503" in operation["responses"], (method, path)
