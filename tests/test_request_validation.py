"""Bad requests get a 400 (or 404/405/413/415) with an OperationOutcome naming what is wrong; never a 500."""

from __future__ import annotations

import copy
import json

import pytest

from support import hook_request, load_scenario, replaced, service_url

PATIENT_VIEW = service_url("patient-view")


@pytest.fixture
def good():
    return hook_request(load_scenario("ad-primary-nonresponse-adult"))


def outcome(response) -> dict:
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["severity"] == "error" for i in body["issue"])
    return body


def expressions(response) -> list[str]:
    return [e for issue in outcome(response)["issue"] for e in issue.get("expression", [])]


def without(body: dict, dotted: str) -> dict:
    body = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    target = body
    for part in parents:
        target = target[part]
    del target[last]
    return body


@pytest.mark.parametrize("field", ["hook", "hookInstance", "context", "context.userId", "context.patientId"])
def test_a_missing_required_field_is_named(client, good, field):
    response = client.post(PATIENT_VIEW, json=without(good, field))
    assert response.status_code == 400
    assert field in expressions(response)


@pytest.mark.parametrize(
    "field, value",
    [
        ("hookInstance", "not-a-uuid"),
        ("hookInstance", 12345),
        ("context.patientId", "pnr-adult/../../Patient"),  # would change the FHIR query it is placed into
        ("context.patientId", "pnr adult"),
        ("context.patientId", ""),
        ("context.userId", "Device/123"),
        ("context.encounterId", {"id": "x"}),
        ("fhirServer", "ftp://fhir.example.org"),
        ("fhirAuthorization", {"access_token": "t", "token_type": "MAC"}),
        ("fhirAuthorization", {"token_type": "Bearer"}),
        ("prefetch", "everything"),
        ("context", []),
    ],
)
def test_a_wrongly_typed_field_is_named(client, good, field, value):
    response = client.post(PATIENT_VIEW, json=replaced(good, field, value))
    assert response.status_code == 400
    named = expressions(response)
    assert any(e == field or e.startswith(field + ".") for e in named), named


def test_error_messages_do_not_echo_submitted_values(client, good):
    secret = "pnr-adult-SECRET-VALUE/x"
    response = client.post(PATIENT_VIEW, json=replaced(good, "context.patientId", secret))
    assert response.status_code == 400
    assert "SECRET" not in response.get_data(as_text=True)


def test_a_request_for_another_hook_is_refused(client, good):
    response = client.post(service_url("order-sign"), json=good)
    assert response.status_code == 400
    assert expressions(response) == ["hook"]


def test_order_select_needs_selections_and_draft_orders(client, good):
    body = replaced(good, "hook", "order-select")
    response = client.post(service_url("order-select"), json=body)
    assert response.status_code == 400
    assert {"context.selections", "context.draftOrders"} <= set(expressions(response))


def test_a_selection_must_name_a_draft_order(client):
    scenario = load_scenario("ad-primary-nonresponse-adult")
    body = hook_request(scenario, "order-select", selections=["MedicationRequest/not-in-the-bundle"])
    response = client.post(service_url("order-select"), json=body)
    assert response.status_code == 400
    assert expressions(response) == ["context.selections[0]"]


def test_a_prefetch_value_must_be_a_fhir_resource(client, good):
    response = client.post(PATIENT_VIEW, json=replaced(good, "prefetch.Condition", {"entry": []}))
    assert response.status_code == 400
    assert expressions(response) == ["prefetch.Condition"]


def test_a_prefetch_bundle_entry_list_must_be_an_array(client, good):
    response = client.post(PATIENT_VIEW, json=replaced(good, "prefetch.Condition", {"resourceType": "Bundle", "entry": {}}))
    assert response.status_code == 400
    assert expressions(response) == ["prefetch.Condition.entry"]


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2", b"null", b"[]", b'"text"', b"42"])
def test_a_body_that_is_not_a_json_object_is_a_400(client, body):
    response = client.post(PATIENT_VIEW, data=body, content_type="application/json")
    assert response.status_code == 400
    outcome(response)


def test_a_non_json_content_type_is_a_415(client, good):
    response = client.post(PATIENT_VIEW, data=json.dumps(good), content_type="text/plain")
    assert response.status_code == 415
    outcome(response)


def test_a_body_without_a_content_type_is_a_415_not_guessed_to_be_json(client, good):
    response = client.post(PATIENT_VIEW, data=json.dumps(good))
    assert response.headers.get("Content-Type", "").startswith("application/fhir+json")
    assert response.status_code == 415
    outcome(response)


@pytest.mark.parametrize("field", ["hookInstance", "fhirServer", "context.patientId", "prefetch.Condition"])
def test_a_rejected_field_nested_a_thousand_levels_is_a_400_naming_it(client, good, field):
    """Within the JSON parser's 1,024 levels; the message about such a value once exhausted recursion (500)."""
    nested = "[" * 1000 + "1" + "]" * 1000
    raw = json.dumps(replaced(good, field, "@@")).replace('"@@"', nested)
    response = client.post(PATIENT_VIEW, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert field in expressions(response)


def test_an_unknown_service_is_a_404(client, good):
    response = client.post("/cds-services/no-such-service", json=good)
    assert response.status_code == 404
    outcome(response)
    assert client.post("/cds-services/no-such-service/feedback", json={"feedback": []}).status_code == 404


def test_a_wrong_method_is_a_405(client):
    response = client.get(PATIENT_VIEW)
    assert response.status_code == 405
    outcome(response)
    assert "POST" in response.headers["Allow"]


def test_a_body_over_the_limit_is_a_413(make_app, good):
    client = make_app(CDS_MAX_BODY_BYTES=2000).test_client()
    response = client.post(PATIENT_VIEW, data=json.dumps(good), content_type="application/json")
    assert response.status_code == 413
    outcome(response)


def test_deeply_nested_json_is_refused_not_crashed(make_app, good):
    body = b'{"a":' * 5000 + b"1" + b"}" * 5000  # beyond the parser's 1024 levels
    assert make_app().test_client().post(PATIENT_VIEW, data=body, content_type="application/json").status_code == 400
    # 400 nested extensions inside a resource the rules read: within the parser's limit. The readers never
    # descend into it; model validation (CDS_VALIDATE_RESOURCES=read) would exhaust recursion, so beyond 64
    # levels it ignores the resource instead.
    extension = '{"url":"http://x","valueString":"v"}'
    for _ in range(400):
        extension = '{"url":"http://x","extension":[' + extension + ']}'
    good["prefetch"]["Condition"]["entry"][0]["resource"]["extension"] = "@@"
    raw = json.dumps(good).replace('"@@"', "[" + extension + "]")
    response = make_app().test_client().post(PATIENT_VIEW, data=raw, content_type="application/json")
    assert response.status_code == 200 and len(response.get_json()["cards"]) == 1
    validating = make_app(CDS_VALIDATE_RESOURCES="read").test_client()
    response = validating.post(PATIENT_VIEW, data=raw, content_type="application/json")
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}  # the AD diagnosis was in the ignored resource


def test_unknown_top_level_members_and_extensions_are_accepted(client, good):
    body = {**good, "extension": {"org.example.trace": {"id": "1"}}, "unexpected": True}
    assert client.post(PATIENT_VIEW, json=body).status_code == 200
