"""The patient cache changes nothing but speed: cached answers equal computed ones, and any change in
the data or the day is a different entry."""

from __future__ import annotations

import copy

import pytest

from support import hook_request, load_scenario, scenario_names, service_url


@pytest.mark.parametrize("name", scenario_names())
def test_repeated_calls_answer_exactly_as_without_the_cache(make_app, name):
    scenario = load_scenario(name)
    cached = make_app(now=scenario.evaluate_at)
    uncached = make_app(now=scenario.evaluate_at, CDS_PATIENT_CACHE_RESOURCES=0).test_client()
    for hook in ("patient-view", "order-select", "patient-view", "order-sign", "order-select"):
        body = hook_request(scenario, hook)
        assert cached.test_client().post(service_url(hook), json=body).get_json() == uncached.post(service_url(hook), json=body).get_json()
    assert cached.extensions["cds_service"].engine.patients.hits >= 3


def test_a_changed_resource_is_a_new_entry(make_app):
    scenario = load_scenario("ad-dupilumab-responder")
    client = make_app(now=scenario.evaluate_at).test_client()
    body = hook_request(scenario)
    assert client.post(service_url("patient-view"), json=body).get_json() == {"cards": []}
    changed = copy.deepcopy(body)
    for entry in changed["prefetch"]["Observation"]["entry"]:
        entry["resource"]["valueQuantity"]["value"] = 29  # no longer responding
    assert len(client.post(service_url("patient-view"), json=changed).get_json()["cards"]) == 1


def test_a_new_day_is_a_new_entry(make_app):
    scenario = load_scenario("ad-primary-nonresponse-adult")
    days = iter([scenario.evaluate_at, scenario.evaluate_at.replace(month=10)])
    app = make_app(now=scenario.evaluate_at)
    app.extensions["cds_service"] = app.extensions["cds_service"].__class__(
        **{**app.extensions["cds_service"].__dict__, "clock": lambda: next(days)})
    client = app.test_client()
    body = hook_request(scenario)
    first = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]["summary"]
    second = client.post(service_url("patient-view"), json=body).get_json()["cards"][0]["summary"]
    assert "26 weeks" in first and "30 weeks" in second
