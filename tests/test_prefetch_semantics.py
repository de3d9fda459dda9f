"""Prefetch as the spec defines it: an absent key, null, an empty searchset and an
OperationOutcome are four different things (REQ 28, 29, 52, 54)."""

from __future__ import annotations

import pytest

from support import full_prefetch, hook_request, load_scenario, searchset, service_url

PATIENT_VIEW = service_url("patient-view")
OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "timeout", "diagnostics": "upstream FHIR server timed out"}],
}


@pytest.fixture
def scenario():
    return load_scenario("ad-primary-nonresponse-adult")


@pytest.fixture
def post(scenario_client, scenario):
    _, client = scenario_client(scenario.name)

    def send(prefetch):
        return client.post(PATIENT_VIEW, json=hook_request(scenario, prefetch=prefetch))

    return send


def problems(response) -> dict[str, str]:
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return {issue["expression"][0]: issue["diagnostics"] for issue in body["issue"]}


@pytest.mark.parametrize("key", ["MedicationStatement", "MedicationRequest", "Observation", "Patient"])
def test_an_absent_key_the_conclusion_needs_is_a_412_naming_it(post, scenario, key):
    """REQ 54: the data cannot be read from the FHIR server yet, so the answer is 412."""
    prefetch = full_prefetch(scenario)
    del prefetch[key]
    response = post(prefetch)
    assert response.status_code == 412
    assert list(problems(response)) == [f"prefetch.{key}"]
    assert "was not sent" in problems(response)[f"prefetch.{key}"]


def test_an_operation_outcome_in_place_of_data_is_treated_as_missing(post, scenario):
    """REQ 52: the client's fetch failed; its diagnostics are passed on."""
    prefetch = full_prefetch(scenario)
    prefetch["Observation"] = OUTCOME
    response = post(prefetch)
    assert response.status_code == 412
    assert "upstream FHIR server timed out" in problems(response)["prefetch.Observation"]


def test_null_means_no_data_not_missing_data(post, scenario):
    """REQ 53 (client side): null = nothing to send. No scores means no evidence of failure: no card, no 412."""
    prefetch = full_prefetch(scenario)
    prefetch["Observation"] = None
    response = post(prefetch)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_an_empty_searchset_means_no_data(post, scenario):
    prefetch = full_prefetch(scenario)
    prefetch["MedicationStatement"] = searchset([])
    response = post(prefetch)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_missing_data_the_conclusion_does_not_need_is_not_asked_for(post, scenario):
    """Without an atopic dermatitis diagnosis no card can fire, so absent medication and score keys do not matter."""
    prefetch = {"Patient": full_prefetch(scenario)["Patient"], "Condition": searchset([])}
    response = post(prefetch)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_all_keys_absent_is_a_412_for_the_first_section_needed(post):
    response = post({})
    assert response.status_code == 412
    assert list(problems(response)) == ["prefetch.Condition"]


def test_a_paged_searchset_is_not_mistaken_for_complete_data(post, scenario):
    """[3.0] A searchset with a next link holds only part of the data; until paging is followed it counts as missing."""
    prefetch = full_prefetch(scenario)
    prefetch["Observation"]["link"] = [{"relation": "next", "url": "https://fhir.example.org/r4/Observation?page=2"}]
    response = post(prefetch)
    assert response.status_code == 412
    assert "next" in problems(response)["prefetch.Observation"]


def test_a_single_resource_or_patient_bundle_is_accepted_where_a_searchset_or_read_is_expected(post, scenario):
    prefetch = full_prefetch(scenario)
    prefetch["Patient"] = searchset([prefetch["Patient"]])
    prefetch["MedicationStatement"] = scenario.of_type("MedicationStatement")[0]
    response = post(prefetch)
    assert response.status_code == 200
    assert len(response.get_json()["cards"]) == 1


def test_a_prefetched_patient_that_is_not_the_context_patient_is_not_used(post, scenario):
    """Another patient's data must never fire a card for this one."""
    prefetch = full_prefetch(scenario)
    prefetch["Patient"] = {**prefetch["Patient"], "id": "someone-else"}
    response = post(prefetch)
    assert response.status_code == 412
    assert "Patient/pnr-adult" in problems(response)["prefetch.Patient"]


@pytest.mark.parametrize("subject", [
    {"reference": "other"}, {"reference": "Group/pnr-adult"}, {"reference": ""}, {"reference": "patient/pnr-adult"},
    {"reference": "urn:uuid:7d5bd0f4-4b43-4d43-9a0e-0e0a3c6f1a11"}, {"reference": "Patient/pnr-adult/extra"},
    {"identifier": {"value": "pnr-adult"}}, {"display": "the patient"}, "Patient/pnr-adult", None,
])
def test_a_resource_whose_subject_is_not_a_patient_reference_to_this_patient_is_not_counted(post, scenario, subject):
    """One form only (docs/security.md): the dupilumab course named with any other subject fires no card."""
    prefetch = full_prefetch(scenario)
    for entry in prefetch["MedicationStatement"]["entry"]:
        entry["resource"] = {**entry["resource"], "subject": subject}
    response = post(prefetch)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


@pytest.mark.parametrize("reference", [
    "Patient/pnr-adult", "https://ehr.example.org/fhir/Patient/pnr-adult", "http://127.0.0.1:8080/fhir/Patient/pnr-adult/_history/3",
])
def test_a_subject_of_the_one_form_relative_or_absolute_is_this_patients(post, scenario, reference):
    prefetch = full_prefetch(scenario)
    for entry in prefetch["MedicationStatement"]["entry"]:
        entry["resource"] = {**entry["resource"], "subject": {"reference": reference}}
    response = post(prefetch)
    assert [c["source"]["topic"]["code"] for c in response.get_json()["cards"]] == ["dupilumab-inadequate-response"]


def test_resources_of_another_patient_in_a_searchset_are_ignored(post, scenario):
    prefetch = full_prefetch(scenario)
    for entry in prefetch["MedicationStatement"]["entry"]:
        entry["resource"] = {**entry["resource"], "subject": {"reference": "Patient/someone-else"}}
    response = post(prefetch)
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_absolute_subject_references_to_this_patient_are_accepted(post, scenario):
    prefetch = full_prefetch(scenario)
    for key in ("Condition", "MedicationStatement", "Observation"):
        for entry in prefetch[key]["entry"]:
            entry["resource"] = {**entry["resource"], "subject": {"reference": "https://fhir.example.org/r4/Patient/pnr-adult/_history/3"}}
    response = post(prefetch)
    assert len(response.get_json()["cards"]) == 1
