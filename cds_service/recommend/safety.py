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
    """The facts that fill the rule's reason when every condition of `when` holds; None otherwise.
    Every condition is checked before any fact is written: ranking screens tens of rules per call and most fail."""
    when = rule.when
    if "age_at_least" in when and (patient.age_years is None or patient.age_years < when["age_at_least"]):
        return None
    conditions = ()
    if "condition" in when:
        conditions = patient.conditions_of(when["condition"], when.get("state", "active"))
        if not conditions:
            return None
    lab = None
    if "lab" in when:
        lab = patient.labs.get(when["lab"])
        if lab is None or (patient.today - lab.day).days > when["within_days"]:
            return None
        if "result" in when:
            if lab.result != when["result"]:
                return None
        elif lab.value is None or ("below" in when and not lab.value < when["below"]) \
                or ("at_least" in when and not lab.value >= when["at_least"]):
            return None
    finding = when.get("finding")
    if (finding == "drosd" and not context.drosd) or (finding == "prior-eye-disease" and not context.prior_eye_disease):
        return None
    if "ordered_dose_above_mg" in when and (
        context.ordered_dose_mg is None or context.ordered_dose_mg <= when["ordered_dose_above_mg"]
    ):
        return None
    # The rule fires: its facts, a later condition's source standing over an earlier one's.
    facts: dict[str, Any] = {"age": patient.age_years, "value": "", "date": "", "source": "", "dose": ""}
    if conditions:
        facts["source"] = ", ".join(f"{c.code.label()}, {c.source}" for c in conditions[:2])
    if lab is not None:
        facts["date"] = lab.day.isoformat()
        facts["source"] = lab.source
        if "result" not in when:
            facts["value"] = f"{lab.value:,.3g}" if lab.value < 100 else f"{lab.value:,.0f}"
    if finding == "prior-eye-disease":
        facts["source"] = ", ".join(context.prior_eye_disease[:2])
    if "ordered_dose_above_mg" in when:
        facts["dose"] = f"{context.ordered_dose_mg:g}"
    return facts
