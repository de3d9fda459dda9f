"""Dupilumab-related ocular surface disease: which eye conditions count, and how severe (knowledge/drosd.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..knowledge import DrosdGrade, Knowledge, vocabulary
from ..record.model import ConditionEntry, MedicationUse, PatientRecord
from .course import DupilumabCourse, StopReasonKind
from .patient import conditions_in_group


@dataclass(frozen=True)
class OcularSurfaceDisease:
    conditions: tuple[ConditionEntry, ...]
    grade: DrosdGrade
    grade_reasons: tuple[str, ...]
    steroid_weeks: float
    eye_treatments: tuple[MedicationUse, ...]
    red_flags: tuple[ConditionEntry, ...]  # urgent symptoms and signs (pain, photophobia, reduced vision)
    stopped_for_eyes: bool  # stopped for the eyes within the restart window
    sight_threats: tuple[ConditionEntry, ...] = ()  # sight-threatening disease: grade sight-threatening

    @property
    def needs_switch(self) -> bool:
        return self.grade in {DrosdGrade.SEVERE_PERSISTENT, DrosdGrade.SIGHT_THREATENING}

    @property
    def restart_candidate(self) -> bool:
        """Stopped recently for manageable eye disease: restarting dupilumab with eye treatment is the option (pitfall 2)."""
        return self.stopped_for_eyes and not self.needs_switch and not self.urgent

    @property
    def urgent(self) -> bool:
        """Sight-threatening disease or red flags: ophthalmology within hours, never "keep dupilumab"."""
        return bool(self.sight_threats or self.red_flags)


def prior_eye_disease(record: PatientRecord, course: DupilumabCourse, knowledge: Knowledge) -> tuple[ConditionEntry, ...]:
    """Eye surface disease that began on or before the dupilumab start: a risk factor, not DROSD."""
    return tuple(c for c in conditions_in_group(record, knowledge, vocabulary.EYE) if c.began is not None and c.began <= course.start)


def _severity(condition: ConditionEntry, knowledge: Knowledge) -> str | None:
    if condition.severity is None:
        return None
    words = {w.lower() for w in (*condition.severity.names(), *(c.code for c in condition.severity.codings if c.code))}
    for grade in ("severe", "moderate", "mild"):
        if words & knowledge.drosd.severity_words[grade]:
            return grade
    return None


def _steroid_weeks(uses: tuple[MedicationUse, ...], course: DupilumabCourse, today: date) -> float:
    """Days covered by ophthalmic corticosteroid records that started after dupilumab, overlaps merged."""
    spans = []
    for use in uses:
        last = use.last_day(today)
        if not use.is_a(vocabulary.OPHTHALMIC_CORTICOSTEROID) or use.start is None or last is None or use.start <= course.start or not use.taken:
            continue
        spans.append((use.start, last))
    covered = 0
    current: tuple[date, date] | None = None
    for start, end in sorted(spans):
        if current is None or start > current[1]:
            if current is not None:
                covered += (current[1] - current[0]).days
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        covered += (current[1] - current[0]).days
    return covered / 7


def assess_ocular_surface(
    record: PatientRecord, course: DupilumabCourse, today: date, knowledge: Knowledge
) -> OcularSurfaceDisease | None:
    drosd = knowledge.drosd
    during = tuple(
        c for c in conditions_in_group(record, knowledge, vocabulary.EYE) if c.began is not None and course.during(c.began, today)
    )
    # Stopped within the restart window (drosd.toml [restart.window], design), or not stopped at all.
    recent = course.end is None or (today - course.end).days <= 7 * drosd.restart_window.value
    stopped_for_eyes = course.end is not None and recent and bool(course.stopped_for(StopReasonKind.OCULAR))
    # An episode that has ended, or one under a course stopped long ago, is history; a recent stop for the
    # eyes keeps the episode behind it, even one that settled once the drug was stopped.
    after_start = during if stopped_for_eyes else tuple(c for c in during if c.active and recent)
    red_flags, sight_threats = (
        tuple(c for c in conditions_in_group(record, knowledge, group) if c.began is not None and course.during(c.began, today) and c.active)
        for group in (vocabulary.EYE_RED_FLAG, vocabulary.EYE_SIGHT_THREAT)
    )
    if not after_start and not stopped_for_eyes and not red_flags and not sight_threats:
        return None
    ocular_drugs = knowledge.concepts.in_group(vocabulary.OCULAR_TREATMENT)
    eye_treatments = tuple(u for u in record.medications if u.is_any(ocular_drugs) and u.start and u.start > course.start)
    steroid_weeks = _steroid_weeks(eye_treatments, course, today)
    reasons: list[str] = []
    grade = DrosdGrade.MILD
    if steroid_weeks > drosd.steroid_drops.value:
        grade = DrosdGrade.SEVERE_PERSISTENT
        steroid = drosd.steroid_drops
        reasons.append(f"ophthalmic corticosteroid for {steroid_weeks:.0f} weeks ({steroid.explain})")
    for condition in after_start:
        severity = _severity(condition, knowledge)
        began = condition.began
        assert began is not None  # after_start holds dated conditions only
        lasted = ((condition.abatement or today) - began).days / 7
        if severity == "severe" and lasted > drosd.persistent_severe.value:
            grade = DrosdGrade.SEVERE_PERSISTENT
            persistent = drosd.persistent_severe
            reasons.append(f"{condition.code.label()} {persistent.explain} ({lasted:.0f} weeks)")
        elif grade is DrosdGrade.MILD and (severity in {"moderate", "severe"} or condition.is_a(vocabulary.KERATITIS)):
            grade = DrosdGrade.MODERATE
            reasons.append(f"{condition.code.label()}" + (f" recorded as {severity}" if severity else " (corneal involvement)"))
    if grade is DrosdGrade.MILD and steroid_weeks > 0:
        grade = DrosdGrade.MODERATE
        reasons.append("treated with ophthalmic corticosteroid drops")
    if red_flags and grade is DrosdGrade.MILD:
        grade = DrosdGrade.MODERATE
    if sight_threats:
        grade = DrosdGrade.SIGHT_THREATENING
        reasons.insert(0, ", ".join(c.code.label() for c in sight_threats) + " (sight-threatening)")
    if not after_start and not red_flags and not sight_threats:
        reasons.append("graded from the stop reason alone: no eye condition is recorded")
    return OcularSurfaceDisease(after_start, grade, tuple(reasons), steroid_weeks, eye_treatments, red_flags, stopped_for_eyes,
                                sight_threats)
