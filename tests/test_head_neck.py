"""Head-and-neck dermatitis that begins on dupilumab: what counts (knowledge: concepts.toml head_neck_dermatitis)."""

from __future__ import annotations

import pytest

from cds_service.assess.findings import FindingKind, assess_patient
from clinical import AD, KNOWLEDGE, TODAY, condition, dupilumab, easi, record

RESPONDING = (AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 8))
FAILING = (AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 27))


def head_neck(*resources):
    found = assess_patient(record(*resources), TODAY, KNOWLEDGE).finding(FindingKind.HEAD_NECK_DERMATITIS)
    return [c.source for c in found.head_neck] if found else []


@pytest.mark.parametrize("text", ["Dupilumab facial redness", "DFR", "Head and neck dermatitis", "Facial erythema",
                                  "Eczema of face and neck"])
def test_head_and_neck_dermatitis_is_recognised_by_name(text):
    assert head_neck(*RESPONDING, condition("hn", text, onset="2025-04-01")) == ["Condition/hn"]


def test_dermatitis_counts_only_with_the_face_or_neck_as_its_body_site():
    on_face = {**condition("hn", "Dermatitis", onset="2025-04-01"), "bodySite": [{"text": "Face"}]}
    on_hands = {**condition("hn", "Dermatitis", onset="2025-04-01"), "bodySite": [{"text": "Both hands"}]}
    assert head_neck(*RESPONDING, on_face) == ["Condition/hn"]
    assert head_neck(*RESPONDING, on_hands) == []


def test_allergic_contact_dermatitis_of_the_face_is_a_diagnosis_not_head_and_neck_dermatitis():
    assert head_neck(*RESPONDING, condition("acd", "Allergic contact dermatitis of face", onset="2025-04-01")) == []


def test_head_and_neck_dermatitis_that_predates_dupilumab_or_has_ended_gives_no_card():
    before = condition("hn", "Head and neck dermatitis", onset="2019-01-01")
    ended = {**condition("hn2", "Head and neck dermatitis", onset="2025-04-01", status="resolved"), "abatementDateTime": "2025-06-01"}
    assert head_neck(*RESPONDING, before, ended) == []


def test_with_an_inadequate_response_the_failure_card_leads_and_head_and_neck_follows():
    findings = assess_patient(record(*FAILING, condition("hn", "DFR", onset="2025-04-01")), TODAY, KNOWLEDGE).findings
    assert [f.kind for f in findings] == [FindingKind.INADEQUATE_RESPONSE, FindingKind.HEAD_NECK_DERMATITIS]
