"""Response judged as the scales are built (issue 17, class 11): baselines, mild disease now, partial response
and a stretched dosing interval, as pure functions."""

from __future__ import annotations

from cds_service.assess.findings import FindingKind, assess_patient
from clinical import AD, KNOWLEDGE, TODAY, dupilumab, easi, record


def assess(*resources, birth="1980-01-01"):
    return assess_patient(record(*resources, birth=birth), TODAY, KNOWLEDGE)


def test_a_baseline_older_than_the_window_is_not_used_and_no_failure_is_called():
    window = KNOWLEDGE.response.baseline_window.value
    assert window == 90  # the design value the scenario response-old-baseline is written for
    result = assess(AD, dupilumab("2025-01-06"), easi("2024-09-30", 30), easi("2025-06-02", 25))  # 98 days before
    assert result.primary is None
    within = assess(AD, dupilumab("2025-01-06"), easi("2024-10-14", 30), easi("2025-06-02", 25))  # 84 days before
    assert within.primary is not None and within.primary.kind is FindingKind.INADEQUATE_RESPONSE


def test_no_failure_while_the_latest_score_reads_mild():
    """EASI 12 -> 7 is only -42%, but EASI 7 is mild disease (Leshem 2015): not a failure to switch for."""
    result = assess(AD, dupilumab("2025-01-06"), easi("2025-01-06", 12), easi("2025-06-02", 7))
    assert result.primary is None
    assert any("mild or better" in line for line in result.reasoning)


def test_an_improvement_short_of_the_criterion_is_a_partial_response_and_a_small_one_is_not():
    partial = assess(AD, dupilumab("2025-01-06"), easi("2025-01-06", 30), easi("2025-06-02", 20)).primary  # -33%
    assert partial.kind is FindingKind.INADEQUATE_RESPONSE and partial.partial_response
    plain = assess(AD, dupilumab("2025-01-06"), easi("2025-01-06", 30), easi("2025-06-02", 25)).primary  # -17%
    assert plain.kind is FindingKind.INADEQUATE_RESPONSE and not plain.partial_response


def test_every_4_weeks_in_dosage_text_is_a_stretched_interval_in_an_adult_only():
    q4w = {**dupilumab("2025-01-06"), "dosage": [{"text": "300 mg SC q4w"}]}
    scores = (easi("2025-01-06", 30), easi("2025-06-02", 20))
    adult = assess(AD, q4w, *scores).primary
    assert adult.stretched is not None and adult.stretched.interval_days == 28
    child = assess(AD, q4w, *scores, birth="2016-01-01").primary  # may be labelled every 4 weeks by weight
    assert child.partial_response and child.stretched is None
