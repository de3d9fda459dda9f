"""Dupilumab-related ocular surface disease: what counts, and the grade."""

from __future__ import annotations

import pytest

from cds_service.assess.findings import FindingKind, assess_patient
from clinical import AD, KNOWLEDGE, TODAY, condition, dupilumab, easi, medication, record

RESPONDING = (AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 8))


def ocular(*resources):
    assessment = assess_patient(record(*resources), TODAY, KNOWLEDGE)
    found = assessment.finding(FindingKind.OCULAR_SURFACE_DISEASE)
    return found.ocular if found else None


def test_conjunctivitis_after_the_start_is_mild_drosd():
    result = ocular(*RESPONDING, condition("conj", "Allergic conjunctivitis", onset="2025-02-20", icd="H10.13"))
    assert result.grade == "mild" and not result.needs_switch


def test_eye_disease_that_predates_dupilumab_is_not_drosd():
    assert ocular(*RESPONDING, condition("conj", "Chronic allergic conjunctivitis", onset="2019-04-01", icd="H10.45")) is None


def test_keratitis_is_at_least_moderate():
    assert ocular(*RESPONDING, condition("ker", "Punctate keratitis", onset="2025-03-10", icd="H16.149")).grade == "moderate"


def test_steroid_drops_for_more_than_8_weeks_make_it_severe_and_persistent():
    result = ocular(
        *RESPONDING,
        condition("conj", "Conjunctivitis", onset="2025-02-20", icd="H10.9"),
        medication("lote", "loteprednol etabonate 0.5% ophthalmic suspension", "2025-03-01", "2025-05-20", status="completed"),
    )
    assert result.grade == "severe-persistent" and result.needs_switch
    assert round(result.steroid_weeks) == 11


def test_a_short_steroid_course_is_moderate():
    result = ocular(
        *RESPONDING,
        condition("conj", "Conjunctivitis", onset="2025-02-20", icd="H10.9"),
        medication("pred", "prednisolone acetate 1% eye drops", "2025-03-01", "2025-03-15", status="completed"),
    )
    assert result.grade == "moderate"


def test_oral_prednisolone_is_not_an_eye_steroid():
    result = ocular(
        *RESPONDING,
        condition("conj", "Conjunctivitis", onset="2025-02-20", icd="H10.9"),
        medication("pred", "prednisolone 20 mg tablet", "2025-03-01", "2025-06-15", status="completed"),
    )
    assert result.grade == "mild"


def test_severe_and_lasting_more_than_8_weeks_is_severe_and_persistent():
    result = ocular(*RESPONDING, condition("conj", "Conjunctivitis", onset="2025-03-01", icd="H10.9", severity="Severe"))
    assert result.grade == "severe-persistent"


def test_a_corneal_ulcer_is_sight_threatening_and_calls_for_a_switch():
    """Corneal ulcer, scarring and loss of vision are sight-threatening (BAD/RCOphth 2024): never a mild or moderate grade."""
    result = ocular(*RESPONDING, condition("ulc", "Corneal ulcer", onset="2025-08-20", icd="H16.009"))
    assert result.grade == "sight-threatening" and result.urgent and result.needs_switch
    assert [c.source for c in result.sight_threats] == ["Condition/ulc"]


def test_eye_pain_is_a_red_flag_that_keeps_the_grade_but_is_urgent():
    result = ocular(*RESPONDING, condition("pain", "Eye pain", onset="2025-08-20"), condition("conj", "Conjunctivitis", onset="2025-08-01"))
    assert result.red_flags and result.urgent and result.grade == "moderate" and not result.needs_switch


@pytest.mark.parametrize("text, icd", [("Symblepharon, bilateral", "H11.233"), ("Scarring of conjunctiva", "H11.241"),
                                       ("Perforated corneal ulcer", "H16.071"), ("Conj. adhesions", "H11.211"), ("x", "H53.131")])
def test_sight_threatening_disease_is_recognised_by_icd_10_cm_block(text, icd):
    result = ocular(*RESPONDING, condition("eye", text, onset="2025-08-20", icd=icd))
    assert result.grade == "sight-threatening"


def test_ocular_pain_coded_h57_1_is_a_red_flag_not_sight_threatening():
    result = ocular(*RESPONDING, condition("pain", "x", onset="2025-08-20", icd="H57.11"), condition("conj", "Conjunctivitis", onset="2025-08-01"))
    assert result.red_flags and not result.sight_threats and result.grade == "moderate"


def test_a_sight_threatening_condition_that_has_resolved_is_not_urgent():
    resolved = {**condition("sym", "Symblepharon", onset="2025-05-01", status="resolved"), "abatementDateTime": "2025-06-01"}
    result = ocular(*RESPONDING, resolved)
    assert result is None or not result.urgent


def test_stopping_for_conjunctivitis_without_a_recorded_condition_is_still_drosd():
    # Stopped 13 weeks ago: within the restart window (drosd.toml [restart.window]).
    result = ocular(AD, dupilumab(status="stopped", end="2025-06-02", reason="conjunctivitis"), easi("2025-01-06", 30))
    assert result is not None and result.stopped_for_eyes and result.grade == "mild" and result.restart_candidate


def test_a_stop_for_conjunctivitis_long_ago_is_history():
    stopped = dupilumab(start="2022-06-06", status="stopped", end="2023-09-04", reason="conjunctivitis")
    episode = {**condition("conj", "Conjunctivitis", onset="2023-06-05", status="resolved"), "abatementDateTime": "2023-10-02"}
    assert ocular(AD, stopped, easi("2022-06-01", 30), episode) is None


def test_conjunctivitis_that_has_resolved_on_dupilumab_gives_no_card():
    resolved = {**condition("conj", "Conjunctivitis", onset="2025-02-20", status="resolved"), "abatementDateTime": "2025-03-20"}
    assert ocular(*RESPONDING, resolved) is None


def test_a_recent_stop_for_conjunctivitis_keeps_the_episode_that_settled_after_it():
    stopped = dupilumab(status="stopped", end="2025-07-07", reason="conjunctivitis")
    settled = {**condition("conj", "Conjunctivitis", onset="2025-06-02", status="resolved"), "abatementDateTime": "2025-07-28"}
    result = ocular(AD, stopped, easi("2025-01-06", 30), easi("2025-05-05", 8), settled)
    assert result is not None and result.restart_candidate and [c.source for c in result.conditions] == ["Condition/conj"]


def test_a_recent_stop_for_keratitis_with_an_ulcer_is_not_a_restart():
    stopped = dupilumab(status="stopped", end="2025-07-07", reason="keratitis")
    ulcer = condition("ulcer", "Corneal ulcer", onset="2025-06-30", icd="H16.001")
    result = ocular(AD, stopped, easi("2025-01-06", 30), easi("2025-05-05", 8), ulcer)
    assert result is not None and result.urgent and not result.restart_candidate


def test_a_systemic_agent_started_after_a_stop_for_the_eyes_ends_the_restart_question():
    stopped = dupilumab(status="stopped", end="2025-06-02", reason="conjunctivitis")
    methotrexate = medication("mtx", "methotrexate 15 mg weekly", start="2025-07-07")
    assessment = assess_patient(record(AD, stopped, easi("2025-01-06", 30), easi("2025-05-05", 8), methotrexate), TODAY, KNOWLEDGE)
    assert assessment.finding(FindingKind.OCULAR_SURFACE_DISEASE) is None
