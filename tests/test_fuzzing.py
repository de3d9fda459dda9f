"""Hostile input: generated requests (schemathesis against the service's own OpenAPI document, and
hypothesis on the fields of real requests) never get a 500, and never hang."""

from __future__ import annotations

import copy
import json
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from conftest import DEFAULT_NOW
from support import hook_request, load_scenario, service_url

_APP = None


def _app():
    """One app for the whole module: schemathesis needs it when the tests are collected."""
    global _APP
    if _APP is None:
        import tempfile

        from cds_service.api import create_app
        from cds_service.settings import Settings

        folder = tempfile.mkdtemp()
        _APP = create_app(Settings.from_env({"CDS_DATABASE_URL": f"sqlite:///{folder}/fuzz.sqlite3", "CDS_AUTH": "off",
                                             "CDS_LOG_LEVEL": "ERROR"}), clock=lambda: DEFAULT_NOW)
    return _APP


schema = schemathesis.openapi.from_wsgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_openapi_endpoints_never_answer_500(case):
    started = time.monotonic()
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    assert time.monotonic() - started < 5


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
BASE = hook_request(load_scenario("ad-primary-nonresponse-adult"), "order-select")
PATHS = [
    ("context", "patientId"), ("context", "userId"), ("context", "selections"), ("context", "draftOrders"),
    ("hookInstance",), ("fhirServer",), ("fhirAuthorization",), ("prefetch",), ("prefetch", "Patient"),
    ("prefetch", "Condition"), ("prefetch", "Observation", "entry"), ("prefetch", "MedicationStatement", "entry", 0, "resource"),
    ("context", "draftOrders", "entry", 0, "resource", "medicationCodeableConcept"),
    ("prefetch", "Observation", "entry", 0, "resource", "valueQuantity"),
    ("prefetch", "Condition", "entry", 0, "resource", "onsetDateTime"),
]


@given(path=st.sampled_from(PATHS), value=JSON)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_value_in_any_field_of_a_real_request_never_answers_500(path, value):
    body = copy.deepcopy(BASE)
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    response = _app().test_client().post(service_url("order-select"), json=body)
    assert response.status_code in (200, 400, 412), response.get_data(as_text=True)[:300]


@given(body=JSON)
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_json_body_to_any_endpoint_never_answers_500(body):
    client = _app().test_client()
    for path in (service_url("patient-view"), service_url("patient-view") + "/feedback"):
        # sent as JSON even when it is null (json=None would send no body and no Content-Type: a 415)
        response = client.post(path, data=json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 400)


@pytest.mark.parametrize("raw", [b"\x00" * 100, "é".encode("latin-1") * 10, b'{"hook": "\\ud800"}', b"[" * 2000])
def test_odd_bytes_never_answer_500(raw):
    response = _app().test_client().post(service_url("patient-view"), data=raw, content_type="application/json")
    assert response.status_code == 400


@given(context=st.fixed_dictionaries({}, optional={
    "userId": st.sampled_from(["Practitioner/1", "Device/1", "", 7]), "patientId": st.sampled_from(["p-1", "p 1", "", None]),
    "encounterId": st.sampled_from(["e1", {"x": 1}]), "selections": st.lists(st.sampled_from(["MedicationRequest/a", "bad", 1]), max_size=2),
    "draftOrders": st.sampled_from([{"resourceType": "Bundle"}, {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "X"}}]},
                                    {"resourceType": "Patient"}, [], {"resourceType": "Bundle", "entry": [{}]}]),
}))
@settings(max_examples=300, deadline=None)
def test_the_compiled_and_the_reference_validators_agree(context):
    """Valid requests are only checked by the compiled validators: they must accept exactly what the reference accepts."""
    import fastjsonschema

    from cds_service.hooks.validation import _compiled, _validators

    for name in ("context-patient-view.schema.json", "context-order-select.schema.json", "context-order-sign.schema.json"):
        try:
            _compiled()[name](context)
            fast = True
        except fastjsonschema.JsonSchemaException:
            fast = False
        assert fast == _validators()[name].is_valid(context), (name, context)
