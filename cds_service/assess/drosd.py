"""Dupilumab-related ocular surface disease: which eye conditions count, and how severe (knowledge/drosd.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..knowledge import Knowledge
from ..record.model import ConditionEntry, MedicationUse, PatientRecord
from .course import DupilumabCourse
from .patient import conditions_in_group, is_active

KERATITIS = "keratitis"
OPHTHALMIC_STEROID = "ophthalmic_corticosteroid"
_ONGOING = {"active", "on-hold", "in-progress"}
_NOT_TAKEN = {"not-taken", "intended", "draft", "cancelled", "entered-in-error", "not-done"}

GRADES = ("mild", "moderate", "severe-persistent")


@dataclass(frozen=True)
class OcularSurfaceDisease:
    conditions: tuple[ConditionEntry, ...]
    grade: str  # mild | moderate | severe-persistent
    grade_reasons: tuple[str, ...]
    steroid_weeks: float
    eye_treatments: tuple[MedicationUse, ...]
    red_flags: tuple[ConditionEntry, ...]
    stopped_for_eyes: bool

    @property
    def needs_switch(self) -> bool:
        return self.grade == "severe-persistent"


def _onset(condition: ConditionEntry) -> date | None:
    return condition.onset or condition.recorded


def prior_eye_disease(record: PatientRecord, course: DupilumabCourse, knowledge: Knowledge) -> tuple[ConditionEntry, ...]:
    """Eye surface disease that began on or before the dupilumab start: a risk factor, not DROSD."""
    return tuple(c for c in conditions_in_group(record, knowledge, "eye") if _onset(c) is not None and _onset(c) <= course.start)  # type: ignore[operator]


def _severity(condition: ConditionEntry, knowledge: Knowledge) -> str | None:
    if condition.severity is None:
        return None
    words = {w.lower() for w in (*condition.severity.names(), *(c.code for c in condition.severity.codings if c.code))}
    for grade in ("severe", "moderate", "mild"):
        if words & {w.lower() for w in knowledge.drosd.severity_words.get(grade, ())}:
            return grade
    return None


def _steroid_weeks(uses: tuple[MedicationUse, ...], course: DupilumabCourse, today: date) -> float:
    """Days covered by ophthalmic corticosteroid records that started after dupilumab, overlaps merged."""
    spans = []
    for use in uses:
        if not use.is_a(OPHTHALMIC_STEROID) or use.start is None or use.start <= course.start or use.status in _NOT_TAKEN:
            continue
        end = use.end or (today if use.status in _ONGOING else use.start)
        spans.append((use.start, min(end, today)))
    covered, current_start, current_end = 0, None, None
    for start, end in sorted(spans):
        if current_end is None or start > current_end:
            if current_end is not None:
                covered += (current_end - current_start).days  # type: ignore[operator]
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        covered += (current_end - current_start).days  # type: ignore[operator]
    return covered / 7


def assess_ocular_surface(
    record: PatientRecord, course: DupilumabCourse, today: date, knowledge: Knowledge
) -> OcularSurfaceDisease | None:
    drosd = knowledge.drosd
    after_start = tuple(
        c for c in conditions_in_group(record, knowledge, "eye") if _onset(c) is not None and course.during(_onset(c), today)  # type: ignore[arg-type]
    )
    stopped_for_eyes = bool(course.stopped_for("ocular"))
    red_flags = tuple(
        c for c in conditions_in_group(record, knowledge, "eye-red-flag")
        if _onset(c) is not None and course.during(_onset(c), today) and is_active(c)  # type: ignore[arg-type]
    )
    if not after_start and not stopped_for_eyes and not red_flags:
        return None
    eye_treatments = tuple(
        u for u in record.medications
        if any(m.concept in _ocular_drug_ids(knowledge) for m in u.matches) and u.start and u.start > course.start
    )
    steroid_weeks = _steroid_weeks(eye_treatments, course, today)
    reasons: list[str] = []
    grade = "mild"
    if steroid_weeks > drosd.steroid_weeks:
        grade = "severe-persistent"
        reasons.append(f"ophthalmic corticosteroid for {steroid_weeks:.0f} weeks ({drosd.steroid_explain}) [{drosd.steroid_claim.status}]")
    for condition in after_start:
        severity = _severity(condition, knowledge)
        lasted = ((condition.abatement or today) - _onset(condition)).days / 7  # type: ignore[operator]
        if severity == "severe" and lasted > drosd.persistent_weeks:
            grade = "severe-persistent"
            reasons.append(f"{condition.code.label()} recorded as severe and lasting {lasted:.0f} weeks [{drosd.persistent_claim.status}]")
        elif grade == "mild" and (severity in {"moderate", "severe"} or condition.is_a(KERATITIS)):
            grade = "moderate"
            reasons.append(f"{condition.code.label()}" + (f" recorded as {severity}" if severity else " (corneal involvement)"))
    if grade == "mild" and steroid_weeks > 0:
        grade = "moderate"
        reasons.append("treated with ophthalmic corticosteroid drops")
    if red_flags and grade == "mild":
        grade = "moderate"
    if not after_start and not red_flags:
        reasons.append("graded from the stop reason alone: no eye condition is recorded")
    return OcularSurfaceDisease(after_start, grade, tuple(reasons), steroid_weeks, eye_treatments, red_flags, stopped_for_eyes)


def _ocular_drug_ids(knowledge: Knowledge) -> set[str]:
    return {d.id for d in knowledge.concepts.definitions.values() if d.group == "ocular"}
