"""Prefetch missing or partial: the service reads the rest from a real FHIR server (Medplum's engine,
loaded with every fixture scenario) and gives exactly the answer it gives with full prefetch."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from conftest import ANSWER_TEST_FHIR_BUDGET_MS, FHIR_TOKEN
from support import hook_request, load_scenario, scenario_names, service_url

SCENARIOS = scenario_names()
PARTIAL = {
    "none": set(),
    "patient only": {"Patient"},
    "no observations": {"Patient", "Condition", "MedicationStatement", "MedicationRequest", "MedicationDispense", "MedicationAdministration"},
    "conditions and orders": {"Condition", "MedicationRequest"},
}


def authorised(body: dict, base: str, token: str = FHIR_TOKEN) -> dict:
    body["fhirServer"] = base
    body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                 "scope": "patient/*.read", "subject": "cds-service"}
    return body


def requests_seen(base: str) -> list[dict]:
    return requests.get(base.replace("/fhir", "/__requests"), timeout=5).json()


def reset(base: str) -> None:
    requests.post(base.replace("/fhir", "/__reset"), timeout=5)


@pytest.mark.parametrize("hook", ["patient-view", "order-sign"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_cards_are_the_same_with_full_partial_and_no_prefetch(fhir_scenario_client, fhir_server, name, hook):
    scenario, client = fhir_scenario_client(name)
    full = hook_request(scenario, hook)
    expected = client.post(service_url(hook), json=full)
    assert expected.status_code == 200
    for label, keep in PARTIAL.items():
        body = authorised(hook_request(scenario, hook), fhir_server)
        body["hookInstance"] = full["hookInstance"]  # same call, so the same card ids
        body["prefetch"] = {k: v for k, v in body["prefetch"].items() if k in keep}
        if not body["prefetch"]:
            del body["prefetch"]
        response = client.post(service_url(hook), json=body)
        assert response.status_code == 200, (label, response.get_json())
        assert response.get_json() == expected.get_json(), f"{label}: the cards differ from full prefetch"


def test_present_keys_including_null_and_empty_are_not_fetched_again(fhir_scenario_client, fhir_server):
    scenario, client = fhir_scenario_client("ad-primary-nonresponse-adult")
    body = authorised(hook_request(scenario), fhir_server)
    body["prefetch"]["MedicationDispense"] = None
    body["prefetch"]["MedicationAdministration"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    del body["prefetch"]["Observation"]
    reset(fhir_server)
    assert client.post(service_url("patient-view"), json=body).status_code == 200
    paths = [r["path"] for r in requests_seen(fhir_server)]
    assert paths == ["/Observation?patient=pnr-adult"]


def test_the_access_token_goes_with_every_read_and_is_never_logged(fhir_scenario_client, fhir_server, caplog):
    scenario, client = fhir_scenario_client("drosd-severe-persistent")
    body = authorised(hook_request(scenario), fhir_server)
    del body["prefetch"]
    reset(fhir_server)
    with caplog.at_level(logging.DEBUG):
        assert client.post(service_url("patient-view"), json=body).status_code == 200
    seen = requests_seen(fhir_server)
    assert len(seen) == 7 and {r["token"] for r in seen} == {FHIR_TOKEN}
    assert FHIR_TOKEN not in caplog.text


def test_a_refused_token_is_a_412_naming_the_reason(fhir_scenario_client, fhir_server):
    scenario, client = fhir_scenario_client("ad-primary-nonresponse-adult")
    body = authorised(hook_request(scenario), fhir_server, token="wrong-token")
    del body["prefetch"]
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 412
    text = response.get_data(as_text=True)
    assert "refused the access token (HTTP 401)" in text and "wrong-token" not in text


def test_a_server_off_the_allowlist_is_never_called(scenario_client, fhir_server):
    scenario, client = scenario_client("ad-primary-nonresponse-adult", CDS_FHIR_ALLOW_HTTP="true", CDS_FHIR_ALLOWLIST="https://ehr.example.org/fhir")
    body = authorised(hook_request(scenario), fhir_server)
    del body["prefetch"]
    reset(fhir_server)
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 412
    assert "not on this service's allowlist" in response.get_data(as_text=True)
    assert requests_seen(fhir_server) == []


def test_plain_http_is_refused_unless_allowed(scenario_client, fhir_server):
    scenario, client = scenario_client("ad-primary-nonresponse-adult", CDS_FHIR_ALLOWLIST="http://127.0.0.1:*/fhir")
    body = authorised(hook_request(scenario), fhir_server)
    del body["prefetch"]
    reset(fhir_server)
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 412
    assert "only https is allowed" in response.get_data(as_text=True)
    assert requests_seen(fhir_server) == []


def test_an_order_hook_with_nothing_to_advise_reads_nothing(fhir_scenario_client, fhir_server):
    scenario, client = fhir_scenario_client("ad-primary-nonresponse-adult")
    body = authorised(hook_request(scenario, "order-select", draft_orders=[{
        "resourceType": "MedicationRequest", "id": "rx", "status": "draft", "intent": "order",
        "medicationCodeableConcept": {"text": "amoxicillin 500 mg"}, "subject": {"reference": "Patient/pnr-adult"}}]), fhir_server)
    del body["prefetch"]
    reset(fhir_server)
    assert client.post(service_url("order-select"), json=body).get_json() == {"cards": []}
    assert requests_seen(fhir_server) == []


def test_fixtures_load_is_idempotent_prints_the_patients_and_tells_their_stories_as_of_today(tmp_path):
    """On a server of its own: the shared one holds the scenarios as written, which other tests compare with."""
    import subprocess
    import sys
    from cds_service.fixture_dates import service_today
    from cds_service.fixtures import start_fhir_server
    from support import ROOT, child_env, load_scenario

    process, base = start_fhir_server(0)
    try:
        runs = [
            subprocess.run([sys.executable, "-m", "cds_service", "fixtures", "load", "--fhir-server", base],
                           cwd=ROOT, capture_output=True, text=True, timeout=120, env=child_env(tmp_path))
            for _ in range(2)
        ]
        assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
        assert runs[0].stdout == runs[1].stdout
        lines = runs[0].stdout.splitlines()
        assert len(lines) == len(SCENARIOS)
        assert "pnr-adult\tad-primary-nonresponse-adult" in lines
        found = requests.get(f"{base}/Patient", timeout=10).json()
        assert len(found["entry"]) == len(SCENARIOS)  # loading twice did not duplicate anyone
        course = requests.get(f"{base}/MedicationStatement/pnr-adult-dupi", timeout=10).json()
        today = load_scenario("ad-primary-nonresponse-adult", as_of=service_today()).of_type("MedicationStatement")[0]
        assert course["effectivePeriod"]["start"] == today["effectivePeriod"]["start"]  # 26 weeks before today
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.server
@pytest.mark.node
def test_cds_service_dev_serves_the_fixtures_and_prints_sandbox_links(tmp_path):
    """The developer path of the README: one command, a FHIR server with the fixtures, the service reading it
    (its database in tmp_path, not the developer's instance/)."""
    import re
    import signal
    import subprocess
    import sys
    from urllib.parse import parse_qs, urlsplit

    from support import ROOT, child_env, free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "cds_service", "dev", "--port", str(port), "--fhir-port", "0"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=child_env(tmp_path, CDS_FHIR_TIME_BUDGET_MS=ANSWER_TEST_FHIR_BUDGET_MS))
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Stop with"):
                break
        output = "".join(lines)
        link = re.search(r"^  pnr-adult .*?(https://sandbox\.cds-hooks\.org/\S+)", output, re.M).group(1)
        query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
        assert query["patientId"] == "pnr-adult"
        assert query["serviceDiscoveryURL"] == f"http://127.0.0.1:{port}/cds-services"
        body = load_scenario("ad-primary-nonresponse-adult")
        request = hook_request(body)
        request["fhirServer"] = query["fhirServiceUrl"]
        del request["prefetch"]
        for _ in range(50):
            try:
                requests.get(query["serviceDiscoveryURL"], timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        response = requests.post(f"http://127.0.0.1:{port}/cds-services/dupilumab-next-line-patient-view", json=request, timeout=10)
        assert response.status_code == 200
        assert response.json()["cards"][0]["source"]["topic"]["code"] == "dupilumab-inadequate-response"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
