"""fhir_fixtures/README.md indexes every scenario and request; every scenario is well formed."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from support import REQUESTS, ROOT, load_scenario, scenario_names

INDEX = (ROOT / "fhir_fixtures" / "README.md").read_text()


def test_the_index_lists_every_scenario_and_request():
    for name in scenario_names():
        assert f"| `{name}` |" in INDEX
    for path in REQUESTS.glob("*.json"):
        assert f"`requests/{path.name}`" in INDEX


@pytest.mark.parametrize("name", scenario_names())
def test_each_scenario_is_a_valid_r4_bundle_for_one_patient(name):
    scenario = load_scenario(name)
    if "malformed_on_purpose" not in scenario.expected:
        Bundle.model_validate(scenario.bundle)
    patients = scenario.of_type("Patient")
    assert len(patients) == 1
    for resource in scenario.resources:
        subject = resource.get("subject", {}).get("reference")
        assert subject in (None, f"Patient/{scenario.patient_id}")
    assert {"description", "evaluate_at", "cards"} <= set(scenario.expected)
