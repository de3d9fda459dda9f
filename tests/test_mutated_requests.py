"""Untrusted input: any field of a real request replaced by a value of the wrong shape gets a 200, 400 or
412, never a 500 (the trust/security work adds property-based fuzzing on top)."""

from __future__ import annotations

import copy

import pytest

from support import hook_request, service_url

REPLACEMENTS = [None, "", [], {"unexpected": None}, -1, "2025-13-45"]


def paths(value, prefix=()):
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):  # later entries have the same shapes as the first two
            yield from paths(item, (*prefix, index))


def replace_at(document, path, value):
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    "scenario, hook",
    [("ad-primary-nonresponse-adult", "patient-view"), ("ad-primary-nonresponse-names-only", "order-select")],
)
def test_no_mutation_of_a_real_request_causes_a_server_error(scenario_client, scenario, hook):
    loaded, client = scenario_client(scenario)
    base = hook_request(loaded, hook)
    statuses = {}
    for path in paths(base):
        for value in REPLACEMENTS:
            response = client.post(service_url(hook), json=replace_at(base, path, value))
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 400, 412), (path, value, response.get_data(as_text=True)[:300])
    assert statuses.get(400) and statuses.get(200), statuses  # both kinds of answer were exercised
