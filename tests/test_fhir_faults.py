"""A FHIR server that is slow, failing, huge, paged, or hostile gives a clear 412 or the right answer:
never a 500, never a hang, never the token sent anywhere else."""

from __future__ import annotations

import time

import pytest

from fault_server import FaultServer
from support import full_prefetch, hook_request, load_scenario, searchset, service_url

SCENARIO = "ad-primary-nonresponse-adult"


@pytest.fixture(scope="module")
def faults():
    server = FaultServer().start()
    server.resources = load_scenario(SCENARIO).resources
    yield server
    server.stop()


@pytest.fixture
def client(scenario_client):
    _, client = scenario_client(
        SCENARIO,
        CDS_FHIR_ALLOWLIST="http://127.0.0.1:*/*/fhir",
        CDS_FHIR_ALLOW_HTTP="true",
        CDS_FHIR_TIME_BUDGET_MS=600,
        CDS_FHIR_MAX_PAGES=5,
        CDS_FHIR_MAX_RESPONSE_BYTES=1_000_000,
    )
    return client


def without_prefetch(base: str) -> dict:
    body = hook_request(load_scenario(SCENARIO))
    body["fhirServer"] = base
    body["fhirAuthorization"] = {"access_token": "secret-token", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.read", "subject": "x"}
    del body["prefetch"]
    return body


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("slow", "timed out"),
        ("error", "HTTP 500"),
        ("garbage", "not JSON"),
        ("notfhir", "not a FHIR resource"),
        ("outcome", "OperationOutcome"),
        ("huge", "larger than 1000000 bytes"),
        ("redirect", "redirects are not followed"),
        ("unauthorised", "refused the access token"),
        ("offsite", "points to another server"),
        ("endless", "more than 5 pages"),
        ("short", "without a next page"),
        ("hangup", "could not connect"),
    ],
)
def test_a_misbehaving_server_gives_a_412_with_the_reason(client, faults, mode, reason):
    started = time.monotonic()
    response = client.post(service_url("patient-view"), json=without_prefetch(faults.base(mode)))
    elapsed = time.monotonic() - started
    assert response.status_code == 412
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert reason in response.get_data(as_text=True)
    assert "secret-token" not in response.get_data(as_text=True)
    assert elapsed < 5, "the call must not wait for a slow server beyond its budget"


def full_prefetch_and_server_answers(client, faults, mode: str):
    """The answer with full prefetch, and the response to the same call with no prefetch, read from the server in
    `mode` (whose requests are recorded afresh)."""
    full = hook_request(load_scenario(SCENARIO))
    expected = client.post(service_url("patient-view"), json=full).get_json()
    body = {**without_prefetch(faults.base(mode)), "hookInstance": full["hookInstance"]}
    faults.requests.clear()
    return expected, client.post(service_url("patient-view"), json=body)


def test_a_server_that_hangs_up_once_on_each_search_is_asked_again_and_gives_the_same_answer(client, faults):
    expected, response = full_prefetch_and_server_answers(client, faults, "hangup-once")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == expected
    searches = [r for r in faults.requests if r.startswith("/hangup-once/")]
    assert searches and all(searches.count(r) == 2 for r in searches)


def test_searchset_pages_are_followed_to_the_same_answer(client, faults):
    expected, response = full_prefetch_and_server_answers(client, faults, "paged")
    assert response.status_code == 200
    assert response.get_json() == expected
    assert any("page=2" in r for r in faults.requests)  # the 7 observations came in pages of 2


def test_a_paged_prefetch_value_is_completed_from_its_next_link(client, faults):
    scenario = load_scenario(SCENARIO)
    full = hook_request(scenario)
    expected = client.post(service_url("patient-view"), json=full).get_json()
    body = {**full, "fhirServer": faults.base("paged")}
    observations = scenario.of_type("Observation")
    first_page = searchset(observations[:2])
    first_page["link"] = [{"relation": "next", "url": f"{faults.base('paged')}/Observation?page=1"}]
    body["prefetch"] = {**full_prefetch(scenario), "Observation": first_page}
    faults.requests.clear()
    response = client.post(service_url("patient-view"), json=body)
    assert response.get_json() == expected
    assert faults.requests and all(r.startswith("/paged/fhir/Observation?page=") for r in faults.requests)


def test_a_next_link_in_prefetch_to_another_server_is_not_followed(client, faults):
    scenario = load_scenario(SCENARIO)
    body = {**hook_request(scenario), "fhirServer": faults.base("paged")}
    first_page = searchset(scenario.of_type("Observation")[:2])
    first_page["link"] = [{"relation": "next", "url": "http://other.example.org/fhir/Observation?page=1"}]
    body["prefetch"]["Observation"] = first_page
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 412
    assert "points to another server" in response.get_data(as_text=True)
