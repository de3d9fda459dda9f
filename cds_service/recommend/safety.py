"""Safety screen of one next-line agent for this patient (knowledge/safety.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..assess.patient import PatientFactors
from ..knowledge import Claim, Knowledge, SafetyRule


@dataclass(frozen=True)
class ScreenContext:
    """What the screen needs beyond the patient: the eye history, and a drafted dose when screening an order."""

    drosd: bool = False
    prior_eye_disease: tuple[str, ...] = ()  # sources
    ordered_dose_mg: float | None = None


@dataclass(frozen=True)
class SafetyFlag:
    rule: str
    effect: str  # contraindicated | caution
    rank_penalty: float
    reason: str
    claim: Claim
    dose_rule: bool  # the flag is about the drafted dose, not the agent

    @property
    def contraindicated(self) -> bool:
        return self.effect == "contraindicated"


def screen_agent(agent: str, patient: PatientFactors, context: ScreenContext, knowledge: Knowledge) -> tuple[SafetyFlag, ...]:
    flags = []
    for rule in knowledge.rules_for(agent):
        facts = _holds(rule, patient, context)
        if facts is None:
            continue
        reason = rule.reason.format(**facts)
        if facts["source"] and facts["source"] not in reason:
            reason += f" ({facts['source']})"  # every flag names the resource that fired it
        flags.append(
            SafetyFlag(
                rule=rule.id,
                effect=rule.effect,
                rank_penalty=rule.rank_penalty,
                reason=reason,
                claim=rule.claim,
                dose_rule="ordered_dose_above_mg" in rule.when,
            )
        )
    # Contraindications first, then the cautions that weigh most.
    flags.sort(key=lambda f: (not f.contraindicated, -f.rank_penalty))
    return tuple(flags)


def _holds(rule: SafetyRule, patient: PatientFactors, context: ScreenContext) -> Mapping[str, Any] | None:
    """The facts that fill the rule's reason when every condition of `when` holds; None otherwise."""
    when = rule.when
    facts: dict[str, Any] = {"age": patient.age_years, "value": "", "date": "", "source": "", "dose": ""}
    if "age_at_least" in when:
        if patient.age_years is None or patient.age_years < when["age_at_least"]:
            return None
    if "condition" in when:
        found = patient.conditions_of(when["condition"], when.get("state", "active"))
        if not found:
            return None
        facts["source"] = ", ".join(f"{c.code.label()}, {c.source}" for c in found[:2])
    if "lab" in when:
        lab = patient.labs.get(when["lab"])
        if lab is None or (patient.today - lab.day).days > when["within_days"]:
            return None
        facts["date"] = lab.day.isoformat()
        facts["source"] = lab.source
        if "result" in when:
            if lab.result != when["result"]:
                return None
        else:
            if lab.value is None:
                return None
            if "below" in when and not lab.value < when["below"]:
                return None
            if "at_least" in when and not lab.value >= when["at_least"]:
                return None
            facts["value"] = f"{lab.value:,.3g}" if lab.value < 100 else f"{lab.value:,.0f}"
    if "finding" in when:
        if when["finding"] == "drosd" and not context.drosd:
            return None
        if when["finding"] == "prior-eye-disease":
            if not context.prior_eye_disease:
                return None
            facts["source"] = ", ".join(context.prior_eye_disease[:2])
    if "ordered_dose_above_mg" in when:
        if context.ordered_dose_mg is None or context.ordered_dose_mg <= when["ordered_dose_above_mg"]:
            return None
        facts["dose"] = f"{context.ordered_dose_mg:g}"
    return facts
