"""The knowledge's regions: CDS_REGION picks whose approvals, doses, draft-order codes and label rules apply, and an
agent the region's knowledge does not cover is named as not assessed, never ranked or drafted (issue 18). The
clinical answers per region are the fixtures' (fhir_fixtures/scenarios/eu-*); these tests hold the mechanics."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cds_service.assess.findings import assess_patient
from cds_service.knowledge import Knowledge
from cds_service.recommend.ranking import rank_next_line_options
from clinical import KNOWLEDGE, NON_RESPONSE, TODAY, record
from support import hook_request, load_scenario, service_url
from test_scenarios import created_instructions, created_texts

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"


def created_codings(card: dict) -> list[list[dict]]:
    return [action["resource"]["medicationCodeableConcept"].get("coding", [])
            for suggestion in card.get("suggestions", []) for action in suggestion["actions"] if action["type"] == "create"]


def without_region(knowledge: Knowledge, agent: str, region: str) -> Knowledge:
    """The knowledge as if `agent` had no entry for `region` (a region added with one agent not yet reviewed)."""
    options = tuple(
        replace(o, approvals={r: a for r, a in o.approvals.items() if r != region}) if o.id == agent else o
        for o in knowledge.therapies
    )
    return replace(knowledge, therapies=options)


@pytest.mark.parametrize("region", ["US", "EU"])
def test_every_draft_order_is_coded_only_in_the_systems_of_its_region(scenario_client, region):
    scenario, client = scenario_client("ad-primary-nonresponse-adult", CDS_REGION=region)
    card = client.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"][0]
    systems = {coding["system"] for codings in created_codings(card) for coding in codings}
    assert ATC in systems
    assert (RXNORM in systems) is (region == "US")  # RxNorm is a US terminology


def test_the_same_patient_gets_the_eu_doses_and_products_in_the_eu(scenario_client):
    scenario, us = scenario_client("pop-adolescent-15-38kg")
    _, eu = scenario_client("pop-adolescent-15-38kg", CDS_REGION="EU")
    us_card = us.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"][0]
    eu_card = eu.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"][0]
    assert not any(t.startswith("upadacitinib") for t in created_texts(us_card))  # US: 40 kg at 12-17
    assert any(t.startswith("upadacitinib") for t in created_texts(eu_card))  # EU: 30 kg at 12-17
    us_tralokinumab = next(i for name, i in created_instructions(us_card) if name.startswith("tralokinumab"))
    eu_tralokinumab = next(i for name, i in created_instructions(eu_card) if name.startswith("tralokinumab"))
    assert "then 150 mg every other week" in us_tralokinumab and "then 300 mg every other week" in eu_tralokinumab


def test_an_agent_without_an_entry_for_the_region_is_listed_as_not_assessed_never_ranked_or_drafted():
    knowledge = without_region(KNOWLEDGE, "upadacitinib", "EU")
    plan = rank_next_line_options(assess_patient(record(*NON_RESPONSE), TODAY, knowledge), knowledge, "EU")
    assert [o.id for o in plan.not_assessed] == ["upadacitinib"]
    assert "upadacitinib" not in {o.option.id for o in plan.offered} | {e.option.id for e in plan.excluded}
    assert plan.offered[0].option.id == "abrocitinib" and plan.suggested()[0].option.id == "abrocitinib"


def test_a_card_names_the_agents_not_assessed_for_the_region_in_plain_words(make_app, monkeypatch):
    scenario = load_scenario("ad-primary-nonresponse-adult")
    app = make_app(scenario.evaluate_at, CDS_REGION="EU")
    state = app.extensions["cds_service"]
    engine = replace(state.engine, knowledge=without_region(state.engine.knowledge, "upadacitinib", "EU"))
    monkeypatch.setitem(app.extensions, "cds_service", replace(state, engine=engine))
    card = app.test_client().post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"][0]
    line = next(line for line in card["detail"].splitlines() if line.startswith("Not assessed"))
    assert line == "Not assessed for the European Union (no EMA approval, dose or safety check held): Upadacitinib (Rinvoq)."
    assert "not recorded" not in card["detail"]
    assert not any(t.startswith("upadacitinib") for t in created_texts(card))


def test_age_and_weight_limits_of_the_region_apply_to_off_label_agents_too():
    knowledge = KNOWLEDGE
    child = assess_patient(record(*NON_RESPONSE, birth="2015-05-20"), TODAY, knowledge)
    excluded = {e.option.id: e.reason for e in rank_next_line_options(child, knowledge, "EU").excluded}
    assert excluded["cyclosporine"] == "approved from 18 years; patient is 10"
