"""What happened with dupilumab for this patient: the findings a card reports.

Pure functions over the PatientRecord; `today` is passed in. Sections are read
in the order the reasoning needs them, so a request that lacks data the
conclusion does not depend on is still answered (no AD diagnosis: no card,
whatever the medication list would have said).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date

from ..knowledge import Knowledge
from ..record.model import ConditionEntry, PatientRecord
from .course import DupilumabCourse, find_dupilumab_course
from .response import InstrumentResponse, ResponseAssessment, assess_response, meets

ATOPIC_DERMATITIS = "atopic_dermatitis"
_ACTIVE = {"active", "recurrence", "relapse", None}
_NOT_TRUE = {"refuted", "entered-in-error"}


class FindingKind(enum.Enum):
    PRIMARY_NON_RESPONSE = "dupilumab-primary-nonresponse"


@dataclass(frozen=True)
class PatientFactors:
    age_years: int | None
    gender: str | None
    source: str | None


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    course: DupilumabCourse
    diagnosis: tuple[ConditionEntry, ...]
    weeks_on_drug: float
    response: ResponseAssessment
    evidence: tuple[InstrumentResponse, ...]  # the instruments that show the failure

    @property
    def completed_weeks(self) -> int:
        return int(self.weeks_on_drug)


@dataclass(frozen=True)
class Assessment:
    primary: Finding | None
    patient: PatientFactors | None = None
    reasoning: tuple[str, ...] = field(default=())

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (self.primary,) if self.primary else ()


def atopic_dermatitis(record: PatientRecord) -> tuple[ConditionEntry, ...]:
    """Active, not refuted AD conditions."""
    return tuple(
        c
        for c in record.conditions
        if c.is_a(ATOPIC_DERMATITIS) and c.clinical_status in _ACTIVE and c.verification_status not in _NOT_TRUE
    )


def patient_factors(record: PatientRecord, today: date) -> PatientFactors:
    demographics = record.demographics
    if demographics is None:
        return PatientFactors(None, None, None)
    age = None
    if demographics.birth_date:
        born = demographics.birth_date
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return PatientFactors(age, demographics.gender, demographics.source)


def assess_patient(record: PatientRecord, today: date, knowledge: Knowledge) -> Assessment:
    reasoning: list[str] = []
    diagnosis = atopic_dermatitis(record)
    if not diagnosis:
        return Assessment(None, reasoning=("no active atopic dermatitis diagnosis",))
    course = find_dupilumab_course(record, today)
    if course is None:
        return Assessment(None, reasoning=("atopic dermatitis, but no dupilumab exposure with a start date",))
    weeks = course.weeks_on_drug(today)
    reasoning.append(f"dupilumab from {course.start.isoformat()}, {weeks:.0f} weeks")
    response = assess_response(course, record, knowledge)
    finding = _primary_non_response(course, diagnosis, weeks, response, knowledge, reasoning)
    if finding is None:
        return Assessment(None, reasoning=tuple(reasoning))
    return Assessment(finding, patient_factors(record, today), tuple(reasoning))


def _primary_non_response(
    course: DupilumabCourse,
    diagnosis: tuple[ConditionEntry, ...],
    weeks: float,
    response: ResponseAssessment,
    knowledge: Knowledge,
    reasoning: list[str],
) -> Finding | None:
    """No adequate response after an adequate trial, shown by a score taken at or after that point."""
    trial_weeks = knowledge.response.adequate_trial_weeks
    if weeks < trial_weeks:
        reasoning.append(f"trial shorter than {trial_weeks} weeks")
        return None
    if response.any_response:
        reasoning.append("a recorded score met its response criterion")
        return None
    evidence = tuple(
        result
        for result in response.instruments
        if result.instrument in knowledge.response.failure_instruments
        and any(
            (score.day - course.start).days >= 7 * trial_weeks and meets(result.criterion, score, result.baseline) is False
            for score in result.on_drug
        )
    )
    if not evidence:
        reasoning.append(f"no clinician-assessed score that can be judged at or after week {trial_weeks}")
        return None
    reasoning.append("no adequate response on " + ", ".join(r.instrument for r in evidence))
    return Finding(FindingKind.PRIMARY_NON_RESPONSE, course, diagnosis, weeks, response, evidence)
