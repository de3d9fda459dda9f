"""What happened with dupilumab for this patient: one primary finding and the secondary ones.

Pure functions over the PatientRecord; `today` is passed in. Sections are read
in the order the reasoning needs them, so a request that lacks data the
conclusion does not depend on is still answered (no AD diagnosis: no card,
whatever the medication list would have said).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import date

from ..knowledge import Knowledge, vocabulary
from ..record.model import ConditionEntry, PatientRecord
from .course import (
    DispensingGap,
    DupilumabCourse,
    StopReason,
    StopReasonKind,
    StretchedInterval,
    dispensing_gaps,
    find_dupilumab_course,
    stretched_interval,
)
from .drosd import OcularSurfaceDisease, assess_ocular_surface, prior_eye_disease
from .history import AgentUse, TreatmentHistory, treatment_history
from .patient import PatientFactors, age_on, conditions_in_group, patient_factors
from .response import InstrumentResponse, ResponseAssessment, SeverityScore, assess_response

ADVERSE, OCULAR = StopReasonKind.ADVERSE, StopReasonKind.OCULAR


class FindingKind(enum.Enum):
    INADEQUATE_RESPONSE = "dupilumab-inadequate-response"
    LOSS_OF_RESPONSE = "dupilumab-loss-of-response"
    OCULAR_SURFACE_DISEASE = "dupilumab-ocular-surface-disease"
    INTOLERANCE = "dupilumab-intolerance"
    TRIAL_TOO_SHORT = "dupilumab-trial-too-short"
    HEAD_NECK_DERMATITIS = "dupilumab-head-neck-dermatitis"


# Which finding is primary when several apply (the first present), as the cards are ordered.
_PRIORITY = (
    FindingKind.INADEQUATE_RESPONSE,
    FindingKind.LOSS_OF_RESPONSE,
    FindingKind.OCULAR_SURFACE_DISEASE,  # when severe and persistent; mild/moderate ranks below intolerance
    FindingKind.INTOLERANCE,
    FindingKind.TRIAL_TOO_SHORT,
    FindingKind.HEAD_NECK_DERMATITIS,  # an adverse effect to work up, not a reason to switch by itself
)


# Adverse effects that stand while dupilumab is taken, even after a switch has been started.
_ADVERSE_ON_DRUG = {FindingKind.OCULAR_SURFACE_DISEASE, FindingKind.HEAD_NECK_DERMATITIS}


@dataclass(frozen=True)
class Confounder:
    """Something to rule out before calling a failure (Dr.Oracle overview, S)."""

    what: str
    source: str
    day: date | None


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    course: DupilumabCourse
    diagnosis: tuple[ConditionEntry, ...]
    weeks_on_drug: float
    response: ResponseAssessment
    evidence: tuple[InstrumentResponse, ...] = ()  # instruments that show the failure
    ocular: OcularSurfaceDisease | None = None
    stop_reasons: tuple[StopReason, ...] = ()
    confounders: tuple[Confounder, ...] = ()
    gaps: tuple[DispensingGap, ...] = ()
    partial: tuple[InstrumentResponse, ...] = ()  # evidence instruments improved, yet short of their criterion
    stretched: StretchedInterval | None = None  # dupilumab at a longer interval than labelled
    head_neck: tuple[ConditionEntry, ...] = ()  # head-and-neck dermatitis that began on dupilumab

    @property
    def partial_response(self) -> bool:
        """An inadequate response that is partial: the card leads with the steps before a switch."""
        return self.kind is FindingKind.INADEQUATE_RESPONSE and bool(self.partial)

    @property
    def completed_weeks(self) -> int:
        return int(self.weeks_on_drug)

    @property
    def leads_to_switch(self) -> bool:
        if self.kind is FindingKind.OCULAR_SURFACE_DISEASE:
            return bool(self.ocular and self.ocular.needs_switch)
        return self.kind in {FindingKind.INADEQUATE_RESPONSE, FindingKind.LOSS_OF_RESPONSE, FindingKind.INTOLERANCE}

    @property
    def urgent(self) -> bool:
        """Sight-threatening eye disease or eye red flags: this card comes first."""
        return bool(self.kind is FindingKind.OCULAR_SURFACE_DISEASE and self.ocular and self.ocular.urgent)

    def _rank(self) -> int:
        if self.urgent:
            return -1
        if self.kind is FindingKind.OCULAR_SURFACE_DISEASE and not self.leads_to_switch:
            return _PRIORITY.index(FindingKind.INTOLERANCE) + 1
        return _PRIORITY.index(self.kind) + (1 if self.kind in {FindingKind.TRIAL_TOO_SHORT, FindingKind.HEAD_NECK_DERMATITIS} else 0)


@dataclass(frozen=True)
class Assessment:
    findings: tuple[Finding, ...] = ()  # primary first
    patient: PatientFactors | None = None
    diagnosis: tuple[ConditionEntry, ...] = ()
    course: DupilumabCourse | None = None
    prior_eye_disease: tuple[ConditionEntry, ...] = ()
    reasoning: tuple[str, ...] = field(default=())
    history: TreatmentHistory = field(default_factory=TreatmentHistory)

    @property
    def primary(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    def finding(self, kind: FindingKind) -> Finding | None:
        return next((f for f in self.findings if f.kind is kind), None)

    @property
    def has_drosd(self) -> bool:
        return self.finding(FindingKind.OCULAR_SURFACE_DISEASE) is not None


def atopic_dermatitis(record: PatientRecord) -> tuple[ConditionEntry, ...]:
    """Active, not refuted AD conditions."""
    return tuple(c for c in record.conditions if c.is_a(vocabulary.ATOPIC_DERMATITIS) and c.active)


def assess_patient(record: PatientRecord, today: date, knowledge: Knowledge) -> Assessment:
    diagnosis = atopic_dermatitis(record)
    if not diagnosis:
        return Assessment(reasoning=("no active atopic dermatitis diagnosis",))
    course = find_dupilumab_course(record, today, knowledge)
    if course is None:
        return Assessment(diagnosis=diagnosis, reasoning=("atopic dermatitis, but no dupilumab exposure with a start date",))
    weeks = course.weeks_on_drug(today)
    reasoning = [f"dupilumab from {course.start.isoformat()}, {weeks:.0f} weeks, " + ("ongoing" if course.ongoing else "stopped")]
    response = assess_response(course, record, knowledge)
    ocular = assess_ocular_surface(record, course, today, knowledge)
    confounders = _confounders(record, course, today, knowledge)
    gaps = dispensing_gaps(course, knowledge) if record.has_dispensing_data else ()

    def finding(kind: FindingKind, evidence: tuple[InstrumentResponse, ...] = ()) -> Finding:
        return Finding(kind, course, diagnosis, weeks, response, evidence, ocular, course.stop_reasons, confounders, gaps)

    findings: list[Finding] = []
    trial = knowledge.response.adequate_trial_weeks
    mild = _mild_now(response, knowledge)
    inadequate = _inadequate_response(course, weeks, response, knowledge, reasoning) if mild is None else None
    lost = _loss_of_response(response, knowledge) if mild is None else ()
    if mild is not None:
        reasoning.append(f"no failure called: latest {mild.instrument} {mild.value:g} ({mild.day.isoformat()}) is mild or better")
    if inadequate is not None:
        partial = _partial(course, inadequate, knowledge)
        stretched = None
        if partial:
            reasoning.append("partial response on " + ", ".join(r.instrument for r in partial))
            demographics = record.demographics
            age = age_on(demographics.birth_date, today) if demographics and demographics.birth_date else None
            stretched = stretched_interval(course, age, knowledge)
        findings.append(Finding(FindingKind.INADEQUATE_RESPONSE, course, diagnosis, weeks, response, inadequate, ocular,
                                course.stop_reasons, confounders, gaps, partial, stretched))
    elif lost:
        findings.append(finding(FindingKind.LOSS_OF_RESPONSE, lost))
        reasoning.append("response reached, then lost on " + ", ".join(r.instrument for r in lost))
    elif course.stopped_for(StopReasonKind.LOSS_OF_RESPONSE):
        findings.append(finding(FindingKind.LOSS_OF_RESPONSE))
        reasoning.append("stopped for loss of response")
    if ocular is not None:
        findings.append(finding(FindingKind.OCULAR_SURFACE_DISEASE))
        reasoning.append(f"dupilumab-related eye disease, {ocular.grade}")
    if course.stopped_for(ADVERSE) and not course.stopped_for(OCULAR):
        findings.append(finding(FindingKind.INTOLERANCE))
        reasoning.append("stopped for an adverse effect")
    if weeks < trial and not course.stopped_for(ADVERSE, OCULAR) and (not course.ongoing or course.stopped_for(StopReasonKind.INEFFICACY)):
        findings.append(finding(FindingKind.TRIAL_TOO_SHORT))
        reasoning.append(f"judged or stopped before {trial} weeks")
    head_neck = head_neck_dermatitis_on_dupilumab(record, course, today, knowledge)
    if head_neck:
        findings.append(replace(finding(FindingKind.HEAD_NECK_DERMATITIS), head_neck=head_neck))
        reasoning.append("head-and-neck dermatitis began on dupilumab: " + ", ".join(c.source for c in head_neck))
    history = treatment_history(record, today, knowledge)
    switched = _switched_after(course, history, knowledge)
    if switched is not None:
        # The clinician has already acted: the switch cards are history; an eye card stands while dupilumab does.
        reasoning.append(f"already switched: {switched.describe()}")
        findings = [f for f in findings if f.kind in _ADVERSE_ON_DRUG and course.ongoing]
    moved_on = _systemic_after_stop(course, history)
    if moved_on is not None and ocular is not None and ocular.restart_candidate:
        # Another systemic agent already follows the stop for the eyes: restarting dupilumab is no longer the question.
        reasoning.append(f"another systemic agent since dupilumab: {moved_on.describe()}")
        findings = [f for f in findings if f.kind is not FindingKind.OCULAR_SURFACE_DISEASE]
    findings.sort(key=Finding._rank)
    if not findings:
        reasoning.append("no failure, intolerance or eye disease found")
    return Assessment(
        findings=tuple(findings),
        patient=patient_factors(record, today, knowledge) if findings else None,
        diagnosis=diagnosis,
        course=course,
        prior_eye_disease=prior_eye_disease(record, course, knowledge),
        reasoning=tuple(reasoning),
        history=history,
    )


def _switched_after(course: DupilumabCourse, history: TreatmentHistory, knowledge: Knowledge) -> AgentUse | None:
    """An agent of a group that replaces dupilumab, taken now and started after dupilumab did."""
    for use in history.taken_now:
        if knowledge.option(use.agent).group.replaces_dupilumab and use.start is not None and use.start > course.start:
            return use
    return None


def head_neck_dermatitis_on_dupilumab(
    record: PatientRecord, course: DupilumabCourse, today: date, knowledge: Knowledge
) -> tuple[ConditionEntry, ...]:
    """Active head-and-neck dermatitis that began after dupilumab started; one that predates it is the patient's
    usual distribution of atopic dermatitis, and one that has ended is history."""
    return tuple(c for c in conditions_in_group(record, knowledge, vocabulary.HEAD_NECK)
                 if c.active and c.began is not None and course.during(c.began, today))


def _systemic_after_stop(course: DupilumabCourse, history: TreatmentHistory) -> AgentUse | None:
    """A next-line agent of any group taken now that started after dupilumab did, once dupilumab has stopped."""
    if course.ongoing:
        return None
    return next((u for u in history.taken_now if u.start is not None and u.start > course.start), None)


def _inadequate_response(
    course: DupilumabCourse, weeks: float, response: ResponseAssessment, knowledge: Knowledge, reasoning: list[str]
) -> tuple[InstrumentResponse, ...] | None:
    """No adequate response after an adequate trial, shown by a score at or after that point,
    or a stop for lack of efficacy after an adequate trial. None when not inadequate."""
    trial_weeks = knowledge.response.adequate_trial_weeks
    if weeks < trial_weeks:
        return None
    if response.any_response:
        reasoning.append("a recorded score met its response criterion")
        return None
    evidence = tuple(
        result
        for result in response.instruments
        if result.instrument in knowledge.response.failure_instruments
        and any(
            (score.day - course.start).days >= 7 * trial_weeks and result.meets(score) is False
            for score in result.on_drug
        )
    )
    if evidence:
        reasoning.append("no adequate response on " + ", ".join(r.instrument for r in evidence))
        return evidence
    if course.stopped_for(StopReasonKind.INEFFICACY):
        reasoning.append(f"stopped for lack of efficacy after {weeks:.0f} weeks")
        return ()
    reasoning.append(f"no clinician-assessed score that can be judged at or after week {trial_weeks}")
    return None


def _judged_scores(course: DupilumabCourse, result: InstrumentResponse, knowledge: Knowledge) -> tuple[SeverityScore, ...]:
    """On-drug scores taken at or after the adequate trial."""
    trial_days = 7 * knowledge.response.adequate_trial_weeks
    return tuple(s for s in result.on_drug if (s.day - course.start).days >= trial_days)


def _mild_now(response: ResponseAssessment, knowledge: Knowledge) -> SeverityScore | None:
    """The latest clinician-assessed score, when it reads as mild disease or better (no failure is called then)."""
    bands = knowledge.response.severity.mild_at_most
    latest = [r.latest for r in response.instruments if r.instrument in bands and r.latest is not None]
    if not latest:
        return None
    newest = max(s.day for s in latest)
    return next((s for s in latest if s.day == newest and s.value <= bands[s.instrument]), None)


def _partial(course: DupilumabCourse, evidence: tuple[InstrumentResponse, ...], knowledge: Knowledge) -> tuple[InstrumentResponse, ...]:
    """Evidence instruments whose latest score at or after the adequate trial improved by the partial-response
    amount (response.toml [partial_response]) without meeting the criterion."""
    bands = knowledge.response.partial_response.improvement
    found = []
    for result in evidence:
        judged = _judged_scores(course, result, knowledge)
        if result.instrument not in bands or not judged:
            continue
        improvement = result.improvement(judged[-1])
        if improvement is not None and improvement >= bands[result.instrument]:
            found.append(result)
    return tuple(found)


def _loss_of_response(response: ResponseAssessment, knowledge: Knowledge) -> tuple[InstrumentResponse, ...]:
    """Instruments that met their criterion on drug and whose latest on-drug score no longer does."""
    return tuple(
        r
        for r in response.instruments
        if r.instrument in knowledge.response.failure_instruments
        and r.reached
        and r.latest is not None
        and r.latest.day > r.meeting[0].day
        and r.meets(r.latest) is False
    )


def _confounders(record: PatientRecord, course: DupilumabCourse, today: date, knowledge: Knowledge) -> tuple[Confounder, ...]:
    found = []
    for condition in conditions_in_group(record, knowledge, vocabulary.CONFOUNDER):
        began = condition.began
        if condition.active or (began is not None and course.during(began, today)):
            found.append(Confounder(condition.code.label(), condition.source, began))
    return tuple(found)


def switch_before_adequate_trial(assessment: Assessment, today: date, knowledge: Knowledge) -> Finding | None:
    """A next-line agent drafted while dupilumab is ongoing and short of an adequate trial (a common pitfall):
    a trial-too-short finding for the order, unless the assessment already has one or a reason to switch."""
    course = assessment.course
    if course is None or not course.ongoing or assessment.finding(FindingKind.TRIAL_TOO_SHORT):
        return None
    weeks = course.weeks_on_drug(today)
    if weeks >= knowledge.response.adequate_trial_weeks:
        return None
    if course.stopped_for(ADVERSE, OCULAR) or any(f.leads_to_switch for f in assessment.findings):
        return None
    return Finding(FindingKind.TRIAL_TOO_SHORT, course, assessment.diagnosis, weeks, ResponseAssessment(()))
