"""fhir_fixtures/README.md indexes every scenario and request; every scenario is well formed."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle

from fixture_index import README, current_readme
from support import load_scenario, scenario_names


def test_the_index_is_current_with_every_scenario_and_request():
    """Regenerate with: .venv/bin/python tests/fixture_index.py"""
    assert README.read_text() == current_readme()


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


def test_there_are_at_least_25_scenarios_covering_every_topic():
    names = scenario_names()
    assert len(names) >= 25
    topics = {
        card["topic"]
        for name in names
        for cards in [load_scenario(name).expected["cards"], *(o["cards"] for o in load_scenario(name).expected.get("orders", []))]
        for card in cards
    }
    assert topics >= {
        "dupilumab-inadequate-response", "dupilumab-loss-of-response", "dupilumab-ocular-surface-disease",
        "dupilumab-trial-too-short", "dupilumab-intolerance", "therapy-safety", "baseline-monitoring",
        "dupilumab-head-neck-dermatitis",
    }
