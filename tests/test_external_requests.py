"""Requests written by other projects (Inferno CRD test kit, AHRQ CDS Connect) get spec-conformant
answers: a valid response or the right 4xx, never a 500."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from support import EXTERNAL, load_json, service_url

RESPONSE_SCHEMA = Draft202012Validator(load_json(Path(__file__).parent / "schemas" / "cds-hooks-response.schema.json"))
AHRQ = EXTERNAL / "ahrq-cql-services"
INFERNO = EXTERNAL / "inferno-crd"

# file -> (status, what the answer must say)
EXPECTED = {
    "inferno-crd/order_select_hook_request.json": 200,  # no dupilumab among the orders: nothing to advise
    "inferno-crd/order_sign_hook_request.json": 200,
    "ahrq-cql-services/active_person_invocation.json": 200,  # empty Condition searchset: no AD, no card
    "ahrq-cql-services/null_prefetch_values_invocation.json": 200,  # Condition null: no AD, no card
    "ahrq-cql-services/missing_prefetch_keys_invocation.json": 412,  # Condition absent and not fetchable yet
    "ahrq-cql-services/synthea_Adolfo777_Braun514.json": 200,
    "ahrq-cql-services/synthea_Adrian111_Wunsch504.json": 200,
    "ahrq-cql-services/synthea_Cher186_Crooks415.json": 200,
    "ahrq-cql-services/synthea_Debora709_Mayer370.json": 200,
    "ahrq-cql-services/synthea_unhealthy_patient.json": 200,
}


def test_every_external_request_is_covered():
    files = {str(p.relative_to(EXTERNAL)) for p in EXTERNAL.glob("*/*.json")}
    requests = {f for f in files if "hook" in load_json(EXTERNAL / f)}
    assert requests == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_external_request_gets_a_conformant_answer(client, name):
    body = load_json(EXTERNAL / name)
    response = client.post(service_url(body["hook"]), data=json.dumps(body), content_type="application/json")
    assert response.status_code == EXPECTED[name], response.get_data(as_text=True)
    if response.status_code == 200:
        assert list(RESPONSE_SCHEMA.iter_errors(response.get_json())) == []
        assert response.get_json() == {"cards": []}, "none of these patients has dupilumab"
    else:
        outcome = response.get_json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == ["prefetch.Condition"]


def test_the_inferno_order_select_context_is_accepted_as_a_request_context(client):
    context = load_json(INFERNO / "order_select_context.json")
    body = {"hook": "order-select", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2eb", "context": context}
    response = client.post(service_url("order-select"), json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_synthetic_patients_with_dupilumab_added_and_no_ad_still_get_no_card(client):
    """A Synthea patient given dupilumab without an AD diagnosis is not an AD failure case."""
    body = load_json(AHRQ / "synthea_Adrian111_Wunsch504.json")
    patient = body["context"]["patientId"]
    body["prefetch"]["MedicationRequest"]["entry"].append(
        {"resource": {"resourceType": "MedicationRequest", "id": "dupi", "status": "active", "intent": "order",
                      "medicationCodeableConcept": {"text": "Dupixent"}, "subject": {"reference": f"Patient/{patient}"},
                      "authoredOn": "2019-01-01"}}
    )
    response = client.post(service_url("patient-view"), json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}
