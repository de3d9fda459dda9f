"""Every card the service returns keeps the CDS Hooks 2.0 card rules (requirement ids from
tests/external/cds-hooks-2.0-requirements.csv are cited per test)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from fhir.resources.R4B.medicationrequest import MedicationRequest
from jsonschema import Draft202012Validator

from cds_service.cards.identity import name_based_uuid
from conftest import app_builder, scenario_clients
from support import EXTERNAL, hook_request, load_json, scenario_names, service_url, walk

RESPONSE_SCHEMA = Draft202012Validator(load_json(Path(__file__).parent / "schemas" / "cds-hooks-response.schema.json"))
HOOKS = ["patient-view", "order-select", "order-sign"]


def all_responses(scenario_client):
    for name in scenario_names():
        scenario, client = scenario_client(name)
        for hook in HOOKS:
            response = client.post(service_url(hook), json=hook_request(scenario, hook))
            assert response.status_code == 200
            yield f"{name}/{hook}", response.get_json()


@pytest.fixture(scope="module")
def responses(tmp_path_factory):
    """Every scenario's answer on every hook, computed once for this module's tests (they only read them)."""
    database = tmp_path_factory.mktemp("contract") / "feedback.sqlite3"
    found = dict(all_responses(scenario_clients(app_builder(f"sqlite:///{database}"))))
    assert sum(len(r["cards"]) for r in found.values()) >= 9, "the scenarios should produce cards to check"
    return found


def test_the_response_schema_accepts_the_inferno_valid_cards():
    """The test schema is checked against cards written by another project."""
    cards = load_json(EXTERNAL / "inferno-crd" / "valid_cards.json")
    errors = list(RESPONSE_SCHEMA.iter_errors({"cards": cards}))
    assert errors == []


def test_responses_match_the_cds_hooks_response_schema(responses):
    """REQ 74, 80, 83, 87, 88, 90, 92, 93, 95, 96, 98, 100, 105, 107, 115, 117, 119, 121, 124, 127, 128, 130-135, 216-219."""
    for where, body in responses.items():
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in RESPONSE_SCHEMA.iter_errors(body)]
        assert errors == [], where


def test_no_attribute_is_null_or_empty(responses):
    """REQ 3: optional attributes with no value are omitted; only the cards array may be empty."""
    for where, body in responses.items():
        for path, value in walk(body):
            if path == "cards":
                continue
            assert value is not None and value != "" and value != [] and value != {}, f"{where}: {path} is empty"


def test_summaries_are_shorter_than_140_characters(responses):
    """REQ 83."""
    for where, body in responses.items():
        for card in body["cards"]:
            assert len(card["summary"]) < 140, where


def test_cards_and_suggestions_have_unique_uuids(responses):
    """REQ 80, 118, 119: feedback names cards and suggestions by uuid."""
    seen = set()
    for where, body in responses.items():
        for card in body["cards"]:
            ids = [card["uuid"], *(s["uuid"] for s in card.get("suggestions", []))]
            assert all(ids), where
            assert seen.isdisjoint(ids), where
            seen.update(ids)


def test_card_and_suggestion_uuids_are_rfc_4122_name_based_uuids(responses):
    """REQ 80: "uuid" is a UUID; ours are version 5, so a retried call names its cards the same."""
    for where, body in responses.items():
        for card in body["cards"]:
            for text in [card["uuid"], *(s["uuid"] for s in card.get("suggestions", []))]:
                parsed = uuid.UUID(text)
                assert (str(parsed), parsed.version, parsed.variant) == (text, 5, uuid.RFC_4122), where


@given(namespace=st.binary(min_size=16, max_size=16), name=st.text(st.characters(blacklist_categories=("Cs",))))
def test_name_based_uuids_are_those_of_the_standard_library(namespace, name):
    assert name_based_uuid(namespace, name) == uuid.uuid5(uuid.UUID(bytes=namespace), name).bytes


def test_suggestions_come_with_a_selection_behavior_and_at_most_one_recommendation(responses):
    """REQ 93, 95, 96, 122."""
    for where, body in responses.items():
        for card in body["cards"]:
            if card.get("suggestions"):
                assert card["selectionBehavior"] in {"at-most-one", "any"}, where
                if card["selectionBehavior"] == "at-most-one":
                    assert sum(bool(s.get("isRecommended")) for s in card["suggestions"]) <= 1
            else:
                assert "selectionBehavior" not in card


def test_override_reasons_have_a_display(responses):
    """REQ 98, 100, 136, 219."""
    for body in responses.values():
        for card in body["cards"]:
            for reason in card.get("overrideReasons", []):
                assert reason["display"] and reason["system"] and reason["code"]


def test_draft_orders_are_valid_r4_medication_requests_for_this_patient(responses):
    """REQ 130, 131: a create action carries a whole new FHIR resource."""
    checked = 0
    for where, body in responses.items():
        for card in body["cards"]:
            for suggestion in card.get("suggestions", []):
                for action in suggestion["actions"]:
                    if action["type"] != "create":
                        continue
                    order = MedicationRequest.model_validate(action["resource"])
                    assert order.status == "draft" and order.intent == "order"
                    assert order.subject.reference.startswith("Patient/")
                    assert order.dosageInstruction[0].text
                    checked += 1
    assert checked >= 4


def test_written_codes_are_verified_ones(responses):
    """codes.md: only V codes go into orders; RxNorm 2196092 (upadacitinib) is unverified and never sent."""
    for body in responses.values():
        text = json.dumps(body)
        assert "2196092" not in text


def test_detail_is_github_flavoured_markdown(responses):
    """REQ 84, 85: the detail renders as GFM: score tables become tables with one row per instrument,
    ranked options an ordered list, and no table syntax is left as plain text."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark").enable("table")  # GFM tables on CommonMark
    for where, body in responses.items():
        for card in body["cards"]:
            detail = card["detail"]
            html = renderer.render(detail)
            table_lines = [line for line in detail.splitlines() if line.startswith("|")]
            assert "|---" not in html, where
            if table_lines:
                assert html.count("<table>") == 1, where
                assert html.count("<tr>") == len(table_lines) - 1, where  # the delimiter row is not a row
            if "Next line, ranked" in detail:
                assert "<ol>" in html, where


def test_links_keep_app_context_to_smart_links():
    """REQ 142, 144-147: appContext only on smart links."""
    from cds_service.cards.model import Link

    assert Link("Course", "https://app.example.org/launch", "smart", '{"card":"x"}').to_json()["appContext"] == '{"card":"x"}'
    assert "appContext" not in Link("Label", "https://example.org/info").to_json()
    with pytest.raises(ValueError):
        Link("Label", "https://example.org/info", "absolute", "{}").to_json()


def test_every_finding_card_links_to_the_smart_app_with_its_context(responses):
    """Each assessment card carries a `smart` link to the course timeline; appContext says what it was about."""
    for where, body in responses.items():
        for card in body["cards"]:
            if not card["source"]["topic"]["code"].startswith("dupilumab-"):
                continue
            (link,) = card["links"]
            assert link["type"] == "smart" and link["url"].endswith("/smart/launch"), where
            assert json.loads(link["appContext"])["topic"] == card["source"]["topic"]["code"]
