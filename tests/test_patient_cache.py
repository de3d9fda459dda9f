"""The patient cache changes nothing but speed: cached answers equal computed ones, and any change in
the data or the day is a different entry."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from support import (
    draft_order, dupilumab_draft_order, hook_request, scenario_names, service_url, unrelated_draft_order,
)


@pytest.mark.parametrize("name", scenario_names())
def test_repeated_calls_answer_exactly_as_without_the_cache(scenario_client, name):
    scenario, cached = scenario_client(name)
    _, uncached = scenario_client(name, CDS_PATIENT_CACHE_RESOURCES=0)
    for hook in ("patient-view", "order-select", "patient-view", "order-sign", "order-select"):
        body = hook_request(scenario, hook)
        assert cached.post(service_url(hook), json=body).get_json() == uncached.post(service_url(hook), json=body).get_json()
    assert cached.application.extensions["cds_service"].engine.patients.hits >= 3


@pytest.mark.parametrize("name", scenario_names())
def test_a_next_line_order_after_the_chart_was_opened_answers_as_without_the_cache(scenario_client, name):
    """patient-view keeps the assessment of a patient with no finding without the patient factors; the
    order that drafts a next-line agent then needs them (its safety screen), so it must not read a partial entry."""
    scenario, cached = scenario_client(name)
    _, uncached = scenario_client(name, CDS_PATIENT_CACHE_RESOURCES=0)
    view = hook_request(scenario, "patient-view")
    cached.post(service_url("patient-view"), json=view)
    order = draft_order(scenario.patient_id, "draft-upa", "upadacitinib 30 mg extended-release tablet")
    for hook in ("order-select", "order-sign"):
        body = {**hook_request(scenario, hook, draft_orders=[order]), "prefetch": view["prefetch"]}
        assert cached.post(service_url(hook), json=body).get_json() == uncached.post(service_url(hook), json=body).get_json()


def without_ids(cards):
    """Cards without what differs per call: their uuids and the suggestions and links that carry uuids."""
    return [{k: v for k, v in c.items() if k not in {"uuid", "suggestions", "links"}} for c in cards]


def test_an_order_session_whose_draft_orders_change_answers_each_call_as_without_the_cache(scenario_client):
    """Cards are rendered once per patient and orders in focus: the orders a call selects and their details
    change the answer; orders added beside them do not."""
    scenario, cached = scenario_client("azathioprine-order-without-tpmt")
    _, uncached = scenario_client("azathioprine-order-without-tpmt", CDS_PATIENT_CACHE_RESOURCES=0)
    patient = scenario.patient_id
    dupilumab, cetirizine = dupilumab_draft_order(patient), unrelated_draft_order(patient)
    azathioprine = draft_order(patient, "draft-aza", "azathioprine 50 mg tablet")
    higher_dose = draft_order(patient, "draft-aza", "azathioprine 150 mg tablet")
    session = [
        ([dupilumab], None),
        ([dupilumab, cetirizine], ["MedicationRequest/draft-cetirizine"]),  # nothing of ours selected
        ([dupilumab, cetirizine], ["MedicationRequest/draft-dupilumab"]),
        ([dupilumab, cetirizine, azathioprine], ["MedicationRequest/draft-aza"]),
        ([dupilumab, cetirizine, higher_dose], ["MedicationRequest/draft-aza"]),
        ([dupilumab, cetirizine, azathioprine], ["MedicationRequest/draft-dupilumab", "MedicationRequest/draft-aza"]),
    ]
    answers = []
    for orders, selections in session:
        body = hook_request(scenario, "order-select", draft_orders=orders, selections=selections)
        answer = cached.post(service_url("order-select"), json=body).get_json()
        assert answer == uncached.post(service_url("order-select"), json=body).get_json()
        answers.append(without_ids(answer["cards"]))
    topics = [[card["source"]["topic"]["code"] for card in cards] for cards in answers]
    assert answers[1] == [] and answers[0] == answers[2] != answers[3]
    assert "baseline-monitoring" in topics[3] and "baseline-monitoring" not in topics[0]
    assert len(answers[5]) > len(answers[3])


def test_a_changed_resource_is_a_new_entry(scenario_client):
    scenario, client = scenario_client("ad-dupilumab-responder")
    body = hook_request(scenario)
    assert client.post(service_url("patient-view"), json=body).get_json() == {"cards": []}
    changed = copy.deepcopy(body)
    for entry in changed["prefetch"]["Observation"]["entry"]:
        entry["resource"]["valueQuantity"]["value"] = 29  # no longer responding
    assert len(client.post(service_url("patient-view"), json=changed).get_json()["cards"]) == 1


def test_a_new_day_is_a_new_entry(scenario_client):
    scenario, client = scenario_client("ad-primary-nonresponse-adult")
    days = iter([scenario.evaluate_at, scenario.evaluate_at.replace(month=10)])
    app = client.application
    app.extensions["cds_service"] = app.extensions["cds_service"].__class__(
        **{**app.extensions["cds_service"].__dict__, "clock": lambda: next(days)})
    body = hook_request(scenario)
    first = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]["summary"]
    second = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]["summary"]
    assert "26 weeks" in first and "30 weeks" in second


@pytest.mark.parametrize("hook", ["patient-view", "order-select"])
def test_each_call_gets_its_own_card_and_suggestion_ids_from_its_hook_instance(scenario_client, hook):
    """Answers are rendered once per patient and orders in focus; the identifiers a clinician's feedback and
    the SMART app's appContext name still come from each call (and are the same for a retried call)."""
    scenario, client = scenario_client("ad-primary-nonresponse-adult")

    def call(instance):
        body = {**hook_request(scenario, hook), "hookInstance": instance}
        return client.post(service_url(hook), json=body).get_json()["cards"]

    def ids(cards):
        return {card["uuid"] for card in cards} | {s["uuid"] for card in cards for s in card.get("suggestions", [])}

    first, second = call(str(uuid.uuid4())), call(str(uuid.uuid4()))
    retried = call(first_instance := str(uuid.uuid4()))
    assert call(first_instance) == retried
    assert first and any(card.get("suggestions") for card in first)
    assert ids(first).isdisjoint(ids(second)) and ids(second).isdisjoint(ids(retried))
    instance = str(uuid.uuid4())
    linked = [link for card in call(instance) for link in card.get("links", []) if "appContext" in link]
    assert linked and all(json.loads(link["appContext"])["hookInstance"] == instance for link in linked)
    # Apart from the identifiers, the same answer.
    assert without_ids(first) == without_ids(second)
