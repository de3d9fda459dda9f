"""Every clinical scenario in fhir_fixtures/ gets the answer written beside it, on every hook."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from support import (
    dupilumab_draft_order,
    hook_request,
    load_scenario,
    scenario_names,
    service_url,
    unrelated_draft_order,
)

SCENARIOS = scenario_names()


def created_texts(card: dict) -> list[str]:
    """Lower-case text of every resource a card's suggestions would create, in suggestion order."""
    texts = []
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            if action["type"] == "create":
                resource = action["resource"]
                concept = resource.get("medicationCodeableConcept") or resource.get("code")
                texts.append(concept["text"].lower())
    return texts


def created_instructions(card: dict) -> list[tuple[str, str]]:
    """(lower-case medication text, dosage instruction text) of each MedicationRequest the suggestions create."""
    found = []
    for suggestion in card.get("suggestions", []):
        for action in suggestion["actions"]:
            resource = action.get("resource") or {}
            if action["type"] == "create" and resource.get("resourceType") == "MedicationRequest":
                found.append((resource["medicationCodeableConcept"]["text"].lower(), resource["dosageInstruction"][0]["text"]))
    return found


def check_cards(cards: list[dict], expected: list[dict]) -> None:
    assert [c["source"]["topic"]["code"] for c in cards] == [e["topic"] for e in expected]
    for card, want in zip(cards, expected):
        assert card["indicator"] == want["indicator"], card["summary"]
        for text in want.get("summary_includes", []):
            assert text in card["summary"]
        for text in want.get("detail_includes", []):
            assert text in card["detail"], f"{text!r} missing from the card detail"
        for text in want.get("detail_excludes", []):
            assert text not in card["detail"], f"{text!r} should not be in the card detail"
        if "suggested" in want:
            created = created_texts(card)
            assert len(created) == len(want["suggested"]), f"suggested {created}, expected {want['suggested']}"
            for name, text in zip(want["suggested"], created):
                assert text.startswith(name.lower()) or name.lower() in text, f"suggested {created}, expected {want['suggested']}"
        for drug, text in want.get("draft_instruction_includes", {}).items():
            instructions = [i for name, i in created_instructions(card) if name.startswith(drug.lower())]
            assert instructions and text in instructions[0], f"{drug}: drafted {instructions}, expected {text!r}"
        if card.get("suggestions") and card["selectionBehavior"] == "at-most-one":
            assert card["suggestions"][0].get("isRecommended") is True
        not_offered = next((line for line in card["detail"].splitlines() if line.startswith("Not offered")), "")
        for label in want.get("not_offered", []):
            assert label in not_offered
        for label in want.get("not_excluded", []):
            assert label not in not_offered, f"{label} is on the 'Not offered' line"


def draft_from(spec: dict, patient_id: str, index: int) -> dict:
    """The draft MedicationRequest of an expected order: a text and a dose in mg, or the elements of the
    order as an EHR writes it (`as_written`: medication, contained Medication, dosageInstruction)."""
    order = {
        "resourceType": "MedicationRequest",
        "id": f"draft-{index}",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": spec["text"]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if "as_written" in spec:
        if "medicationReference" in spec["as_written"]:
            del order["medicationCodeableConcept"]
        order.update(spec["as_written"])
    if "dose_mg" in spec:
        order["dosageInstruction"] = [{
            "text": f"{spec['dose_mg']:g} mg by mouth once daily",
            "doseAndRate": [{"doseQuantity": {"value": spec["dose_mg"], "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}],
        }]
    return order


ORDER_CASES = [
    (name, index)
    for name in SCENARIOS
    for index, _ in enumerate(load_scenario(name).expected.get("orders", []))
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_patient_view_answers_as_the_scenario_expects(scenario_client, name):
    scenario, client = scenario_client(name)
    response = client.post(service_url("patient-view"), json=hook_request(scenario))
    assert response.status_code == 200, response.get_json()
    check_cards(response.get_json()["cards"], scenario.expected["cards"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_tells_the_same_story_told_as_of_today(make_app, name):
    """Fixture dates are relative: moved so that the scenario's evaluate_at falls on today, the patient gets the
    expected cards, with the expected texts' dates moved alike, on every hook the scenario describes."""
    today = datetime.now(UTC).date()
    scenario = load_scenario(name, as_of=today)
    assert scenario.evaluate_at.date() == today
    settings = {"CDS_REGION": scenario.expected["region"]} if "region" in scenario.expected else {}
    client = make_app(scenario.evaluate_at, **settings).test_client()
    response = client.post(service_url("patient-view"), json=hook_request(scenario))
    check_cards(response.get_json()["cards"], scenario.expected["cards"])
    for index, case in enumerate(scenario.expected.get("orders", [])):
        draft = draft_from(case["draft"], scenario.patient_id, index)
        response = client.post(service_url("order-select"), json=hook_request(scenario, "order-select", draft_orders=[draft]))
        check_cards(response.get_json()["cards"], case["cards"])


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("name", SCENARIOS)
def test_order_hooks_give_the_same_finding_when_dupilumab_is_ordered(scenario_client, name, hook):
    scenario, client = scenario_client(name)
    response = client.post(service_url(hook), json=hook_request(scenario, hook))
    assert response.status_code == 200, response.get_json()
    cards = response.get_json()["cards"]
    check_cards(cards, scenario.expected["cards"])
    for card in cards:
        for suggestion in card.get("suggestions", []):
            first = suggestion["actions"][0]
            assert suggestion["label"].startswith("Replace Dupixent")
            assert first == {
                "type": "delete",
                "description": "Remove the draft order MedicationRequest/draft-dupilumab",
                "resourceId": "MedicationRequest/draft-dupilumab",
            }


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
@pytest.mark.parametrize("name, index", ORDER_CASES)
def test_a_drafted_next_line_agent_gets_the_expected_safety_and_monitoring_cards(scenario_client, name, index, hook):
    scenario, client = scenario_client(name)
    case = scenario.expected["orders"][index]
    draft = draft_from(case["draft"], scenario.patient_id, index)
    response = client.post(service_url(hook), json=hook_request(scenario, hook, draft_orders=[draft]))
    assert response.status_code == 200, response.get_json()
    check_cards(response.get_json()["cards"], case["cards"])


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_order_hooks_stay_silent_for_unrelated_orders(scenario_client, hook):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    body = hook_request(scenario, hook, draft_orders=[unrelated_draft_order(scenario.patient_id)])
    response = client.post(service_url(hook), json=body)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_order_select_advises_only_on_the_selected_order(scenario_client):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    orders = [unrelated_draft_order(scenario.patient_id), dupilumab_draft_order(scenario.patient_id)]
    picked_other = hook_request(scenario, "order-select", draft_orders=orders, selections=["MedicationRequest/draft-cetirizine"])
    assert client.post(service_url("order-select"), json=picked_other).get_json() == {"cards": []}
    picked_dupilumab = hook_request(scenario, "order-select", draft_orders=orders, selections=["MedicationRequest/draft-dupilumab"])
    assert len(client.post(service_url("order-select"), json=picked_dupilumab).get_json()["cards"]) == 1
    # order-sign: every draft order is about to be signed, so the dupilumab one counts.
    signing = hook_request(scenario, "order-sign", draft_orders=orders)
    assert len(client.post(service_url("order-sign"), json=signing).get_json()["cards"]) == 1


def test_the_card_follows_the_clock_it_is_given(make_app):
    """Weeks on drug are counted to the day of the call for an ongoing course."""
    scenario = load_scenario("ad-primary-nonresponse-adult")
    later = scenario.evaluate_at.replace(year=2026)  # 2026-09-01: 78 weeks after 2025-03-03
    client = make_app(now=later).test_client()
    card = client.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"][0]
    assert "after 78 weeks" in card["summary"]


def test_the_same_hook_call_gives_the_same_card_ids_and_a_new_call_new_ones(scenario_client):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    body = hook_request(scenario)
    first = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]
    again = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]
    other = client.post(service_url("patient-view"), json={**body, "hookInstance": "3f1b2c4d-0000-4000-8000-000000000001"}).get_json()["cards"][0]
    assert first["uuid"] == again["uuid"]
    assert first["uuid"] != other["uuid"]
    assert {s["uuid"] for s in first["suggestions"]}.isdisjoint({s["uuid"] for s in other["suggestions"]})
