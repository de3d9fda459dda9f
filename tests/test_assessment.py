"""The clinical core as pure functions: FHIR resources in, findings out, `today` passed in."""

from __future__ import annotations

import pytest

from cds_service.assess.findings import FindingKind, assess_patient
from cds_service.record.model import DataUnavailable
from clinical import KNOWLEDGE, TODAY, record

AD = {"resourceType": "Condition", "id": "ad", "clinicalStatus": {"coding": [{"code": "active"}]},
      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "24079001"}]}, "subject": {"reference": "Patient/p"}}


def dupilumab(start="2025-01-06", status="active", end=None, **extra):
    period = {"start": start, **({"end": end} if end else {})}
    return {"resourceType": "MedicationStatement", "id": f"dupi-{start}", "status": status,
            "medicationCodeableConcept": {"text": "dupilumab"}, "subject": {"reference": "Patient/p"},
            "effectivePeriod": period, **extra}


def easi(day, value, **extra):
    return {"resourceType": "Observation", "id": f"easi-{day}", "status": extra.pop("status", "final"),
            "code": {"text": "EASI"}, "subject": {"reference": "Patient/p"}, "effectiveDateTime": day,
            "valueQuantity": {"value": value}, **extra}


def finding(*resources, today=TODAY):
    return assess_patient(record(*resources, gender=None), today, KNOWLEDGE).primary


def test_no_response_after_16_weeks_is_primary_non_response():
    found = finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 25))
    assert found.kind is FindingKind.INADEQUATE_RESPONSE
    assert [r.instrument for r in found.evidence] == ["EASI"]
    assert found.evidence[0].baseline.value == 30


def test_exactly_50_percent_better_is_a_response():
    """EASI-50 means a reduction of at least 50%: 30 -> 15 meets it."""
    assert finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 15)) is None


def test_a_response_reached_and_then_lost_is_loss_of_response_not_inadequate_response():
    found = finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-03-03", 10), easi("2025-07-07", 28))
    assert found.kind is FindingKind.LOSS_OF_RESPONSE
    assert found.evidence[0].meeting[0].value == 10 and found.evidence[0].latest.value == 28


def test_the_baseline_is_the_last_score_on_or_before_the_start():
    found = finding(AD, dupilumab(), easi("2024-06-01", 12), easi("2025-01-02", 40), easi("2025-05-05", 25))
    assert found.evidence[0].baseline.value == 40  # 25 is a 37% reduction from 40: not EASI-50


def test_scores_before_week_16_alone_cannot_establish_failure():
    assert finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-03-03", 29)) is None


def test_without_a_baseline_a_relative_criterion_cannot_be_judged():
    assert finding(AD, dupilumab(), easi("2025-05-05", 25)) is None


def test_patient_reported_scores_alone_do_not_establish_failure():
    nrs = lambda day, v: {"resourceType": "Observation", "id": f"nrs-{day}", "status": "final", "code": {"text": "Peak Pruritus NRS"},
                          "subject": {"reference": "Patient/p"}, "effectiveDateTime": day, "valueInteger": v}
    assert finding(AD, dupilumab(), nrs("2025-01-06", 8), nrs("2025-05-05", 7)) is None


def test_a_patient_reported_response_vetoes_a_failure_call():
    nrs = lambda day, v: {"resourceType": "Observation", "id": f"nrs-{day}", "status": "final", "code": {"text": "PP-NRS"},
                          "subject": {"reference": "Patient/p"}, "effectiveDateTime": day, "valueInteger": v}
    assert finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 25), nrs("2025-01-06", 9), nrs("2025-05-05", 3)) is None


@pytest.mark.parametrize("status", ["preliminary", "cancelled", "entered-in-error", "registered"])
def test_scores_that_are_not_final_results_are_not_used(status):
    assert finding(AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 25, status=status)) is None


@pytest.mark.parametrize("status", ["not-taken", "intended", "entered-in-error"])
def test_dupilumab_that_was_not_taken_is_no_course(status):
    assert finding(AD, dupilumab(status=status), easi("2025-01-06", 30), easi("2025-05-05", 25)) is None


@pytest.mark.parametrize("clinical, verification", [("resolved", None), ("inactive", None), ("active", "refuted"), ("active", "entered-in-error")])
def test_ad_that_is_not_active_or_not_true_is_no_indication(clinical, verification):
    condition = {**AD, "clinicalStatus": {"coding": [{"code": clinical}]}}
    if verification:
        condition["verificationStatus"] = {"coding": [{"code": verification}]}
    assert finding(condition, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 25)) is None


def test_a_stopped_course_counts_its_weeks_to_the_stop_date():
    found = finding(AD, dupilumab(status="completed", end="2025-06-02"), easi("2025-01-06", 30), easi("2025-05-26", 24))
    assert found.weeks_on_drug == pytest.approx(21.0)
    assert not found.course.ongoing


def test_scores_after_the_course_ended_are_not_on_drug():
    found = finding(AD, dupilumab(status="stopped", end="2025-05-05"), easi("2025-01-06", 30), easi("2025-04-28", 25), easi("2025-08-01", 10))
    assert found is not None and found.evidence[0].latest.value == 25


def test_dupilumab_through_a_referenced_medication_is_recognised():
    statement = dupilumab()
    del statement["medicationCodeableConcept"]
    statement["medicationReference"] = {"reference": "#med"}
    statement["contained"] = [{"resourceType": "Medication", "id": "med", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0024-5915-00"}, {"system": "http://hl7.org/fhir/sid/ndc", "code": "00024591901"}]}}]
    found = finding(AD, statement, easi("2025-01-06", 30), easi("2025-05-05", 25))
    assert found is not None
    assert "NDC 00024591901" in found.course.records[0].match_for("dupilumab").how


def test_without_an_ad_diagnosis_no_other_data_is_read():
    """The indication gate comes first: missing medication or score data does not matter then."""
    no_ad = record(gender=None, unavailable={"MedicationStatement": "not sent", "MedicationRequest": "not sent", "Observation": "not sent"})
    assert assess_patient(no_ad, TODAY, KNOWLEDGE).primary is None


def test_with_ad_missing_medication_data_is_reported_not_guessed():
    with_ad = record(AD, gender=None, unavailable={"MedicationStatement": "not sent"})
    with pytest.raises(DataUnavailable) as raised:
        assess_patient(with_ad, TODAY, KNOWLEDGE)
    assert raised.value.sections == {"MedicationStatement"}
