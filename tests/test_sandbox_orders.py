"""The order-hook walkthrough of the README works with what the public CDS Hooks sandbox's Rx View can order.

The draft orders are built as the sandbox builds them (its source, src/assets/medication-list.js and
createFhirResource, read 2026-12; notes in docs/sandbox-rx-view.md): oral products only, RxNorm-coded, id "request-123",
category as one object, dose in "{pill}", no dosage text, a draftOrders Bundle without a type; and the first
order-select call, sent when Rx View opens, carries no medication at all."""

from __future__ import annotations

import pytest

from support import hook_request, load_scenario, service_url

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def sandbox_order(patient_id: str, rxnorm: str | None = None, name: str | None = None, per_day: int = 1) -> dict:
    resource = {"resourceType": "MedicationRequest", "id": "request-123", "status": "draft",
                "subject": {"reference": f"Patient/{patient_id}"}, "authoredOn": "2025-09-01"}
    if rxnorm is not None:
        resource |= {
            "dosageInstruction": [{"timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                                   "doseAndRate": [{"doseQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "{pill}"}}]}],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}},
            "intent": "order",
            "category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "community"}]},
            "medicationCodeableConcept": {"text": name, "coding": [{"display": name, "system": RXNORM, "code": rxnorm}]},
        }
    return resource


def sandbox_call(scenario, hook: str, order: dict) -> dict:
    body = hook_request(scenario, hook, draft_orders=[order])
    body["context"]["draftOrders"].pop("type")  # the sandbox's Bundle has none
    if hook == "order-sign":
        body["context"].pop("selections", None)
    return body


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("rxnorm, name, agent", [
    ("105585", "Methotrexate 2.5 MG Oral Tablet", "Methotrexate"),
    ("200060", "mycophenolate mofetil 500 MG Oral Tablet", "Mycophenolate"),
])
def test_a_teratogen_from_rx_view_for_a_pregnant_patient_is_stopped_with_safer_options(scenario_client, hook, rxnorm, name, agent):
    scenario, client = scenario_client("pregnancy-ad-failure")
    cards = client.post(service_url(hook), json=sandbox_call(scenario, hook, sandbox_order(scenario.patient_id, rxnorm, name))).get_json()["cards"]
    assert cards[0]["source"]["topic"]["code"] == "therapy-safety" and cards[0]["indicator"] == "critical"
    assert agent in cards[0]["summary"] and "pregnan" in cards[0]["detail"]


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_azathioprine_from_rx_view_without_tpmt_asks_for_the_baseline_tests(scenario_client, hook):
    scenario, client = scenario_client("azathioprine-order-without-tpmt")
    order = sandbox_order(scenario.patient_id, "197388", "Azathioprine 50 MG Oral Tablet", per_day=2)
    cards = client.post(service_url(hook), json=sandbox_call(scenario, hook, order)).get_json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["baseline-monitoring"]
    assert "TPMT" in cards[0]["summary"] and "NUDT15" in cards[0]["summary"]


def test_cyclosporine_from_rx_view_with_hypertension_and_renal_impairment_gets_its_cautions(scenario_client):
    scenario, client = scenario_client("renal-egfr-25-upadacitinib-30")
    order = sandbox_order(scenario.patient_id, "241834", "cyclosporine, modified 100 MG Oral Capsule")
    cards = client.post(service_url("order-select"), json=sandbox_call(scenario, "order-select", order)).get_json()["cards"]
    safety = [c for c in cards if c["source"]["topic"]["code"] == "therapy-safety"]
    assert safety and "nephrotoxic" in safety[0]["detail"]


def test_the_first_rx_view_call_before_a_drug_is_picked_gets_no_card_and_no_error(scenario_client):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    response = client.post(service_url("order-select"), json=sandbox_call(scenario, "order-select", sandbox_order(scenario.patient_id)))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"cards": []}


def test_an_oral_product_unrelated_to_atopic_dermatitis_gets_no_card(scenario_client):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    order = sandbox_order(scenario.patient_id, "312615", "Prednisone 20 MG Oral Tablet")
    assert client.post(service_url("order-select"), json=sandbox_call(scenario, "order-select", order)).get_json() == {"cards": []}


def test_the_sandbox_patient_used_in_the_readme_walkthrough_exists():
    assert load_scenario("pregnancy-ad-failure").patient_id and load_scenario("azathioprine-order-without-tpmt").patient_id
