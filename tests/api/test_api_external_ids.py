"""Every externalId the sync accepts is reachable byte-exact, never through a redirect (SPEC §3)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.helpers import error_code, patient_record, payment_record, sync

# Any text the sync stores: no NUL, no lone surrogates, 1 to 255 characters.
STORABLE_IDS = st.text(
    alphabet=st.one_of(
        st.sampled_from("/%?#& +.;=\\\t\n"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    ),
    min_size=1,
    max_size=255,
)
TRICKY_IDS = [
    "\n",
    "a\nb",
    "/",
    "//",
    "/lead",
    "lead/",
    "a/b",
    "a//b",
    "%",
    "%2F",
    "%00",
    "?",
    "?x=1",
    "#",
    "#top",
    " ",
    " padded ",
    "..",
    ".",
    "é/ü",
    "患者",
    "x" * 255,
]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def app_config() -> dict[str, Any]:
    """No sync budget: the generated cases sync far more than 60 times a minute."""
    return {"RATELIMIT_ENABLED": False}


def url(resource: str, external_id: str) -> str:
    """The path of one record, its id percent-encoded as one segment."""
    return f"/{resource}/{quote(external_id, safe='')}"


@pytest.mark.parametrize("external_id", TRICKY_IDS)
def test_get_patient_reaches_tricky_ids_byte_exact(client: FlaskClient, external_id: str) -> None:
    sync(client, "patients", [patient_record(external_id), patient_record("lead", firstName="L")])
    response = client.get(url("patients", external_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["externalId"] == external_id


@pytest.mark.parametrize("external_id", TRICKY_IDS)
def test_get_payment_reaches_tricky_ids_byte_exact(client: FlaskClient, external_id: str) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(
        client,
        "payments",
        [payment_record(external_id, "p1", "1.00"), payment_record("lead", "p1", "2.00")],
    )
    response = client.get(url("payments", external_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["externalId"] == external_id


@FUZZ
@given(external_id=STORABLE_IDS)
@example(external_id="/")
@example(external_id="//")
def test_get_patient_reaches_every_storable_id(client: FlaskClient, external_id: str) -> None:
    sync(client, "patients", [patient_record(external_id)])
    response = client.get(url("patients", external_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["externalId"] == external_id


@FUZZ
@given(external_id=STORABLE_IDS)
def test_get_payment_reaches_every_storable_id(client: FlaskClient, external_id: str) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record(external_id, "p1", "1.00")])
    response = client.get(url("payments", external_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["externalId"] == external_id


def test_slash_prefixed_id_is_not_redirected_to_another_patient(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("lead", firstName="Other")])
    response = client.get("/patients/%2Flead")
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/patients//lead",
        "/patients/lead/",
        "/payments//m1",
        "//patients/lead",
        "/patients/%2F%2Flead",
    ],
)
def test_no_read_answers_with_a_redirect(client: FlaskClient, path: str) -> None:
    sync(client, "patients", [patient_record("lead")])
    response = client.get(path)
    assert response.status_code not in range(300, 400)
    assert response.content_type == "application/json"


@pytest.mark.parametrize(
    "path",
    [
        "/patients/%00",
        "/payments/%00",
        "/patients/a%00b",
        "/patients/" + "x" * 256,
        "/payments/" + "y" * 256,
    ],
)
def test_ids_the_sync_could_never_store_are_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_payment_has_the_list_shape(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "12.34")])
    listed = client.get("/payments").get_json()
    assert client.get("/payments/m1").get_json() == listed[0]


def test_get_payment_of_a_deleted_payment_is_404(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "1.00")])
    sync(client, "payments", [])
    response = client.get("/payments/m1")
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_get_payment_is_by_the_payments_own_id_not_the_patients(client: FlaskClient) -> None:
    sync(client, "patients", [patient_record("p1")])
    sync(client, "payments", [payment_record("m1", "p1", "1.00")])
    assert client.get("/payments/p1").status_code == 404
