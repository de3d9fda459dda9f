"""What a prescriber must see beside the next-line options (issue 17, classes 15 and 16): the JAK boxed warning
once per card that offers or screens a JAK inhibitor, the evidence after dupilumab under each option that has
some, and why the options come in this order (the guideline rates them alike; the order is this service's).

The texts are read from the knowledge base, so these tests check where and how often a card says them."""

from __future__ import annotations

import pytest

from cds_service.cards.prescribing import boxed_warning_lines
from clinical import KNOWLEDGE
from support import hook_request, load_scenario, scenario_names, service_url
from test_scenarios import created_texts, draft_from

FAILURE_TOPICS = {"dupilumab-inadequate-response", "dupilumab-loss-of-response", "dupilumab-intolerance"}
JAK_OPTIONS = [o for o in KNOWLEDGE.therapies if o.rank_group in KNOWLEDGE.boxed_on_cards]
BOXED = "Boxed warning"
SPECIAL = "Special warning"  # the EU line: the EMA 2023 measures


def patient_view_cards(scenario_client, name: str) -> list[dict]:
    scenario, client = scenario_client(name)
    return client.post(service_url("patient-view"), json=hook_request(scenario)).get_json()["cards"]


def ranked_items(detail: str) -> list[str]:
    """The lines of the top options: '1. **Upadacitinib (Rinvoq)**, ...'."""
    return [line for line in detail.splitlines() if line[:1].isdigit() and ". **" in line]


def offered_lines(detail: str) -> list[str]:
    """The lines that name options the card offers: the top options and those moved down for this patient."""
    return [line for line in detail.splitlines() if not line.startswith("Not offered")]


def drafted_jak_count(card: dict) -> int:
    names = {o.id for o in JAK_OPTIONS}
    return sum(1 for text in created_texts(card) if any(text.startswith(name) for name in names))


def test_the_knowledge_base_names_the_jak_inhibitors_for_the_boxed_warning_line():
    assert {o.id for o in JAK_OPTIONS} == {"upadacitinib", "abrocitinib", "baricitinib"}
    assert all(any(w.kind.value == "boxed" for w in o.warnings) for o in JAK_OPTIONS)


def test_two_jak_inhibitors_with_the_same_boxed_warning_give_one_line_with_its_source():
    upadacitinib, abrocitinib = KNOWLEDGE.option("upadacitinib"), KNOWLEDGE.option("abrocitinib")
    lines = boxed_warning_lines([upadacitinib, abrocitinib, KNOWLEDGE.option("tralokinumab")], KNOWLEDGE, "US")
    warning = next(w for w in upadacitinib.warnings if w.kind.value == "boxed")
    assert len(lines) == 1
    assert (warning.brief or warning.text) in lines[0] and f"({KNOWLEDGE.evidence(warning.claim)})" in lines[0]
    assert "JAK inhibitors" in lines[0]


def test_no_boxed_warning_line_without_a_jak_inhibitor():
    # azathioprine and mycophenolate carry boxed warnings too, but cards state only those of [boxed_on_cards]
    options = [KNOWLEDGE.option(o) for o in ("tralokinumab", "lebrikizumab", "azathioprine", "mycophenolate")]
    assert boxed_warning_lines(options, KNOWLEDGE, "US") == []


def test_a_failure_card_suggesting_two_jak_inhibitors_states_their_boxed_warning_exactly_once(scenario_client):
    card = patient_view_cards(scenario_client, "ad-primary-nonresponse-adult")[0]
    assert drafted_jak_count(card) == 2  # upadacitinib and abrocitinib, one click away
    assert card["detail"].count(BOXED) == 1
    boxed = next(line for line in card["detail"].splitlines() if BOXED in line)
    assert "serious infections" in boxed and "thrombosis" in boxed and "(FDA label)" in boxed


def test_a_failure_card_offering_no_jak_inhibitor_has_no_boxed_warning_line(scenario_client):
    card = patient_view_cards(scenario_client, "jak-contra-active-tb")[0]
    assert drafted_jak_count(card) == 0
    assert not any(o.label in line for o in JAK_OPTIONS for line in ranked_items(card["detail"]))
    assert BOXED not in card["detail"]


@pytest.mark.parametrize("name", scenario_names())
def test_every_card_with_a_ranked_list_states_the_jak_warning_of_its_region_once_if_it_offers_one_and_never_otherwise(scenario_client, name):
    eu = load_scenario(name).expected.get("region") == "EU"
    stated, other = (SPECIAL, BOXED) if eu else (BOXED, SPECIAL)
    for card in patient_view_cards(scenario_client, name):
        offers_jak = any(o.label in line for o in JAK_OPTIONS for line in offered_lines(card["detail"]))
        assert card["detail"].count(stated) == (1 if offers_jak else 0), card["summary"]
        assert other not in card["detail"]  # a US card never states the EU measure as its warning, nor the reverse


@pytest.mark.parametrize("name", scenario_names())
def test_failure_cards_with_suggestions_say_the_guideline_rates_the_agents_alike(scenario_client, name):
    """Class 16: the order is this service's; AAD 2023 gives the biologics and JAK inhibitors the same strength."""
    line = KNOWLEDGE.cards.text("brief", "next_heading")
    assert "alike" in line and "this service's choice" in line
    for card in patient_view_cards(scenario_client, name):
        if card["source"]["topic"]["code"] in FAILURE_TOPICS and card.get("suggestions"):
            assert card["detail"].count(line) == 1, card["summary"]


def test_the_evidence_after_dupilumab_is_the_one_reason_on_its_own_option_s_line(scenario_client):
    card = patient_view_cards(scenario_client, "ad-primary-nonresponse-adult")[0]
    lines = card["detail"].splitlines()
    for option in (KNOWLEDGE.option(o) for o in ("upadacitinib", "abrocitinib", "tralokinumab")):
        assert option.evidence is not None and option.evidence_brief
        item = next(line for line in lines if line[:1].isdigit() and f"**{option.label}**" in line)
        assert f"{option.evidence_brief} ({KNOWLEDGE.evidence(option.evidence.claim)})" in item
        assert sum(option.evidence_brief in line for line in lines) == 1


def test_the_tralokinumab_figure_is_not_worded_as_an_easi_75_rate():
    """The seed's 51% is improvement by objective scores or patient report, not comparable with EASI-75 rates."""
    evidence = KNOWLEDGE.option("tralokinumab").evidence
    assert evidence is not None
    assert "51%" in evidence.text and "not EASI-75" in evidence.text and "patient-reported" in evidence.text
    assert evidence.claim.status.value == "S"


@pytest.mark.parametrize("name, index", [("jak-contra-neutropenia", 0), ("jak-caution-vte-history", 0), ("elderly-70-cv-risk", 0)])
def test_a_therapy_safety_card_about_a_jak_inhibitor_states_the_boxed_warning_once(scenario_client, name, index):
    scenario, client = scenario_client(name)
    draft = draft_from(scenario.expected["orders"][index]["draft"], scenario.patient_id, index)
    cards = client.post(service_url("order-select"), json=hook_request(scenario, "order-select", draft_orders=[draft])).get_json()["cards"]
    safety = [c for c in cards if c["source"]["topic"]["code"] == "therapy-safety"]
    assert len(safety) == 1
    assert safety[0]["detail"].count(BOXED) == 1


def test_a_therapy_safety_card_about_another_agent_with_no_jak_alternative_has_no_boxed_warning_line(scenario_client):
    # pregnancy: methotrexate is contraindicated, and so are the JAK inhibitors, so none is among the alternatives
    scenario, client = scenario_client("pregnancy-ad-failure")
    draft = draft_from({"text": "methotrexate 15 mg tablet", "dose_mg": 15}, scenario.patient_id, 0)
    cards = client.post(service_url("order-select"), json=hook_request(scenario, "order-select", draft_orders=[draft])).get_json()["cards"]
    safety = [c for c in cards if c["source"]["topic"]["code"] == "therapy-safety"]
    assert len(safety) == 1 and safety[0]["indicator"] == "critical"
    assert drafted_jak_count(safety[0]) == 0
    assert BOXED not in safety[0]["detail"]
