"""The patient factors the safety screen reads: age, weight, conditions and recent labs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from ..knowledge import Knowledge, vocabulary
from ..record.model import ConditionEntry, MedicationUse, PatientRecord


@dataclass(frozen=True)
class LabResult:
    concept: str
    value: float | None  # in the concept's canonical unit
    unit: str | None
    result: str | None  # qualitative: positive | negative | indeterminate
    day: date
    source: str
    value_date: date | None = None  # results whose value is a date


def conditions_in_group(record: PatientRecord, knowledge: Knowledge, group: str) -> tuple[ConditionEntry, ...]:
    """Conditions (not refuted) matching any concept of a knowledge-base group: "eye", "confounder", ..."""
    ids = knowledge.concepts.in_group(group)
    return tuple(c for c in record.conditions if c.asserted and c.is_any(ids))


def latest_results(record: PatientRecord, today: date) -> dict[str, LabResult]:
    """The latest final result per lab or vital concept up to today (rules judge whether it is recent enough)."""
    return {
        concept: LabResult(concept, o.value, o.unit, o.result, o.effective, o.source, o.value_date)  # type: ignore[arg-type]
        for concept, o in record.latest_final_results(today).items()
    }


@dataclass(frozen=True)
class PatientFactors:
    today: date
    age_years: int | None
    gender: str | None
    weight_kg: float | None
    weight_source: str | None
    conditions: tuple[ConditionEntry, ...]
    labs: Mapping[str, LabResult]
    source: str | None
    pregnancy: tuple[str, ...] = ()  # what shows a pregnancy now, each with its resource; empty: none recorded
    smoking: tuple[str, ...] = ()  # what shows a current or past smoker, each with its resource
    medicines_now: tuple[MedicationUse, ...] = ()  # statements and requests in force today

    def taking(self, concepts: tuple[str, ...] | list[str]) -> tuple[MedicationUse, ...]:
        """Medicines taken now that denote any of `concepts`."""
        return tuple(m for m in self.medicines_now if any(match.concept in concepts for match in m.matches))

    def conditions_of(self, concepts: tuple[str, ...] | list[str], state: str = "active") -> tuple[ConditionEntry, ...]:
        """Conditions denoting any of `concepts`: active ones (state "active") or any asserted one ("ever")."""
        return tuple(c for c in self.conditions if c.is_any(concepts) and (c.active if state == "active" else c.asserted))


def pregnancy_evidence(conditions: tuple[ConditionEntry, ...], labs: Mapping[str, LabResult], today: date,
                       knowledge: Knowledge) -> tuple[str, ...]:
    """What shows a pregnancy now (knowledge.pregnancy): active pregnancy conditions, positive tests of the
    window, and estimated delivery dates still ahead."""
    rule = knowledge.pregnancy
    found = [condition_text(c) for c in conditions if c.is_any(rule.conditions) and c.active]
    label = knowledge.concepts.definitions
    for test in rule.tests:
        lab = labs.get(test)
        if lab is not None and lab.result == "positive" and (today - lab.day).days <= rule.within_days:
            found.append(f"{label[test].label} positive on {lab.day.isoformat()}")
    for due in rule.due_dates:
        lab = labs.get(due)
        if lab is not None and lab.value_date is not None and lab.value_date >= today:
            found.append(f"{label[due].label} {lab.value_date.isoformat()}")
    return tuple(found)


def smoking_evidence(conditions: tuple[ConditionEntry, ...], labs: Mapping[str, LabResult], knowledge: Knowledge) -> tuple[str, ...]:
    """What shows a current or past smoker (knowledge.smoking): a smoking condition ever asserted, or the latest
    smoking status reading current or former smoker (a past smoker stays one: no window)."""
    rule = knowledge.smoking
    found = [condition_text(c) for c in conditions if c.is_any(rule.conditions) and c.asserted]
    for test in rule.tests:
        lab = labs.get(test)
        if lab is not None and lab.result == "positive":
            found.append(f"{knowledge.concepts.definitions[test].label}: smoker on {lab.day.isoformat()}")
    return tuple(found)


def condition_text(condition: ConditionEntry) -> str:
    """A condition as a clinician reads it on a card: its name and since when (never a resource id)."""
    return f"{condition.code.label()}, since {condition.began.isoformat()}" if condition.began else condition.code.label()


def age_on(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def patient_factors(record: PatientRecord, today: date, knowledge: Knowledge) -> PatientFactors:
    demographics = record.demographics
    age = age_on(demographics.birth_date, today) if demographics and demographics.birth_date else None
    labs = latest_results(record, today)
    weight = labs.get(vocabulary.BODY_WEIGHT)
    if weight and (today - weight.day) > timedelta(days=knowledge.lab_lookback_days):
        weight = None
    return PatientFactors(
        pregnancy=pregnancy_evidence(record.conditions, labs, today, knowledge),
        smoking=smoking_evidence(record.conditions, labs, knowledge),
        medicines_now=tuple(m for m in record.medications if m.taken and m.in_force(today)),
        today=today,
        age_years=age,
        gender=demographics.gender if demographics else None,
        weight_kg=weight.value if weight else None,
        weight_source=weight.source if weight else None,
        conditions=record.conditions,
        labs=labs,
        source=demographics.source if demographics else None,
    )
