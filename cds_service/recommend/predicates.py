"""The condition language of safety rules and monitoring tests: one evaluator per predicate.

Each predicate's meaning, units and example are written once, in knowledge/schemas/safety.schema.json
($defs.predicates); the facts an evaluator returns are those its schema entry lists in "x-facts", so a
rule's text may use them. Adding a predicate: its schema entry, its evaluator here, its test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..assess.patient import LabResult, PatientFactors, condition_text
from ..knowledge.model import number_text

Facts = dict[str, str]


@dataclass(frozen=True)
class Situation:
    """What predicates are judged on: the patient, the region whose rules apply, the eye history, the drafted dose,
    the labs' look-back."""

    patient: PatientFactors
    region: str
    lab_lookback_days: int
    drosd: bool = False
    prior_eye_disease: tuple[str, ...] = ()  # sources
    ordered_dose_mg: float | None = None
    any_age: bool = False  # judge lab results whatever their age (to find stale abnormal results)


def _age_at_least(value: int, situation: Situation) -> Facts | None:
    age = situation.patient.age_years
    return None if age is None or age < value else {"age": str(age), "age_at_least": str(value)}


def _age_at_most(value: int, situation: Situation) -> Facts | None:
    age = situation.patient.age_years
    return None if age is None or age > value else {"age": str(age), "age_at_most": str(value)}


def _sex(value: str, situation: Situation) -> Facts | None:
    return {"sex": value} if situation.patient.gender == value else None


def _condition(value: Mapping[str, Any], situation: Situation) -> Facts | None:
    found = situation.patient.conditions_of(value["any_of"], value["state"])
    if not found:
        return None
    return {"source": "; ".join(condition_text(c) for c in found[:2])}


def _recent(item: Mapping[str, Any], situation: Situation) -> LabResult | None:
    """The latest result of the item's test, if it still counts (its window, or never expiring)."""
    lab = situation.patient.labs.get(item["test"])
    if lab is None or item.get("never_expires") or situation.any_age:
        return lab
    window = item.get("within_days", situation.lab_lookback_days)
    return lab if (situation.patient.today - lab.day).days <= window else None


def _each(value: Any, judge: Callable[[Mapping[str, Any], Situation], Facts | None], situation: Situation) -> Facts | None:
    """One item, or a list whose items must all hold (the facts of the last stand over earlier ones; sources of all)."""
    facts: Facts = {}
    sources: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        found = judge(item, situation)
        if found is None:
            return None
        facts.update(found)
        sources.append(found.get("source", ""))
    if len(sources) > 1:
        facts["source"] = ", ".join(dict.fromkeys(s for s in sources if s))  # every result that made the rule hold
    return facts


def _lab_item(item: Mapping[str, Any], situation: Situation) -> Facts | None:
    lab = _recent(item, situation)
    if lab is None or lab.value is None:
        return None
    if ("below" in item and not lab.value < item["below"]) or ("at_least" in item and not lab.value >= item["at_least"]):
        return None
    return {
        "value": number_text(lab.value), "unit": item["unit"], "date": lab.day.isoformat(), "source": lab.day.isoformat(),
        "below": number_text(item["below"]) if "below" in item else "",
        "at_least": number_text(item["at_least"]) if "at_least" in item else "",
    }


def _lab_result_item(item: Mapping[str, Any], situation: Situation) -> Facts | None:
    lab = _recent(item, situation)
    if lab is None or lab.result != item["result"]:
        return None
    return {"date": lab.day.isoformat(), "source": lab.day.isoformat(), "result": item["result"]}


def _lab(value: Any, situation: Situation) -> Facts | None:
    return _each(value, _lab_item, situation)


def _lab_result(value: Any, situation: Situation) -> Facts | None:
    return _each(value, _lab_result_item, situation)


def _finding(value: str, situation: Situation) -> Facts | None:
    if value == "drosd":
        return {"source": ""} if situation.drosd else None
    if situation.prior_eye_disease:  # "prior-eye-disease": the schema allows no other value
        return {"source": ", ".join(situation.prior_eye_disease[:2])}
    return None


def _pregnant(value: bool, situation: Situation) -> Facts | None:
    evidence = situation.patient.pregnancy
    return {"source": "; ".join(evidence[:2])} if value and evidence else None


def _smoker(value: bool, situation: Situation) -> Facts | None:
    evidence = situation.patient.smoking
    return {"source": "; ".join(evidence[:2])} if value and evidence else None


def _taking(value: Mapping[str, Any], situation: Situation) -> Facts | None:
    found = situation.patient.taking(value["any_of"])
    if not found:
        return None
    started = found[0].start
    return {"medicine": found[0].medication.label(), "source": f"since {started.isoformat()}" if started else "on the medication list"}


def _ordered_dose_above_mg(value: float, situation: Situation) -> Facts | None:
    dose = situation.ordered_dose_mg
    if dose is None or dose <= value:
        return None
    return {"dose": f"{dose:g}", "ordered_dose_above_mg": f"{value:g}"}


PREDICATES: Mapping[str, Callable[[Any, Situation], Facts | None]] = {
    "age_at_least": _age_at_least,
    "age_at_most": _age_at_most,
    "sex": _sex,
    "condition": _condition,
    "lab": _lab,
    "lab_result": _lab_result,
    "finding": _finding,
    "ordered_dose_above_mg": _ordered_dose_above_mg,
    "pregnant": _pregnant,
    "smoker": _smoker,
    "taking": _taking,
}


def holds(when: Mapping[str, Any], situation: Situation) -> Facts | None:
    """The facts of a `when` table when every predicate holds; None otherwise. Every predicate is judged
    before facts are merged (screens judge tens of rules per call and most fail on one predicate)."""
    found = []
    for name, value in when.items():
        facts = PREDICATES[name](value, situation)
        if facts is None:
            return None
        found.append(facts)
    merged: Facts = {}
    for facts in found:
        merged.update({k: v for k, v in facts.items() if v or k not in merged})
    return merged
