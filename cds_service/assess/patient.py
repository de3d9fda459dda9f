"""The patient factors the safety screen reads: age, weight, conditions and recent labs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from ..knowledge import Knowledge, vocabulary
from ..record.model import ConditionEntry, PatientRecord


@dataclass(frozen=True)
class LabResult:
    concept: str
    value: float | None  # in the concept's canonical unit
    unit: str | None
    result: str | None  # qualitative: positive | negative | indeterminate
    day: date
    source: str


def conditions_in_group(record: PatientRecord, knowledge: Knowledge, group: str) -> tuple[ConditionEntry, ...]:
    """Conditions (not refuted) matching any concept of a knowledge-base group: "eye", "confounder", ..."""
    ids = knowledge.concepts.in_group(group)
    return tuple(c for c in record.conditions if c.asserted and c.is_any(ids))


def latest_results(record: PatientRecord, today: date) -> dict[str, LabResult]:
    """The latest final result per lab or vital concept up to today (rules judge whether it is recent enough)."""
    return {
        concept: LabResult(concept, o.value, o.unit, o.result, o.effective, o.source)  # type: ignore[arg-type]
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

    def conditions_of(self, concepts: tuple[str, ...] | list[str], state: str = "active") -> tuple[ConditionEntry, ...]:
        """Conditions denoting any of `concepts`: active ones (state "active") or any asserted one ("ever")."""
        return tuple(c for c in self.conditions if c.is_any(concepts) and (c.active if state == "active" else c.asserted))


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
        today=today,
        age_years=age,
        gender=demographics.gender if demographics else None,
        weight_kg=weight.value if weight else None,
        weight_source=weight.source if weight else None,
        conditions=record.conditions,
        labs=labs,
        source=demographics.source if demographics else None,
    )
