"""Findings + ranked options -> cards a clinician can act on and check.

Every card says what happened, shows the patient data that fired it (dates,
scores, resources) and the rules applied with their sources, and offers the
next line as draft orders.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..assess.findings import Finding, FindingKind
from ..assess.response import InstrumentResponse, SeverityScore
from ..knowledge import Claim, Knowledge
from ..record.model import DraftOrder
from ..recommend.ranking import NextLinePlan, RankedOption
from .model import Action, Card, Coding, Suggestion

_CARD_NAMESPACE = uuid.UUID("8f0f6f0e-3c55-4a36-9a55-0d6d2c6a3f1e")
_UCUM = "http://unitsofmeasure.org"

TOPICS = {
    FindingKind.PRIMARY_NON_RESPONSE: "Dupilumab primary non-response",
}


@dataclass(frozen=True)
class CardContext:
    """What a card needs to know about the call it answers."""

    hook: str
    hook_instance: str
    today: date
    patient_id: str
    user_id: str | None
    encounter_id: str | None
    orders_in_focus: tuple[DraftOrder, ...]
    topic_system: str
    override_reason_system: str
    source_label: str


def card_uuid(context: CardContext, key: str) -> str:
    """Stable for one hook call, unique across calls: feedback can name the card."""
    return str(uuid.uuid5(_CARD_NAMESPACE, f"{context.hook_instance}/{key}"))


def render_finding(finding: Finding, plan: NextLinePlan, context: CardContext, knowledge: Knowledge) -> Card:
    kind = finding.kind
    card_id = card_uuid(context, kind.value)
    return Card(
        uuid=card_id,
        summary=_summary(finding, plan),
        indicator="warning",
        source_label=context.source_label,
        topic=Coding(context.topic_system, kind.value, TOPICS[kind]),
        detail=_detail(finding, plan, context, knowledge),
        suggestions=_suggestions(plan, card_id, finding, context),
        selection_behavior="at-most-one",
        override_reasons=tuple(
            Coding(context.override_reason_system, code, display) for code, display in knowledge.override_reasons.items()
        ),
    )


# -- text ---------------------------------------------------------------------------------


def _summary(finding: Finding, plan: NextLinePlan) -> str:
    weeks = finding.completed_weeks
    tail = f"; next line: {plan.offered[0].option.group_label}" if plan.offered else ""
    return f"Dupilumab: no adequate response after {_weeks(weeks)}{tail}"


def _weeks(count: int) -> str:
    return f"{count} week" if count == 1 else f"{count} weeks"


def _num(value: float) -> str:
    return f"{value:g}"


def _score(score: SeverityScore, finding: Finding) -> str:
    week = (score.day - finding.course.start).days // 7
    return f"{_num(score.value)} ({score.day.isoformat()}, week {week})"


def _change(result: InstrumentResponse, score: SeverityScore) -> str:
    percent = result.percent_change(score)
    if percent is not None:
        return f"{percent:+.0f}%"
    change = result.change_from_baseline(score)
    return f"{change:+g}" if change is not None else "no baseline"


def _cite(knowledge: Knowledge, claim: Claim) -> str:
    return knowledge.cite(claim)


def _detail(finding: Finding, plan: NextLinePlan, context: CardContext, knowledge: Knowledge) -> str:
    course = finding.course
    trial = knowledge.response
    lines = [
        f"**Primary non-response to dupilumab** in atopic dermatitis: no adequate response after "
        f"{_weeks(finding.completed_weeks)} on drug ({trial.adequate_trial_explain}).",
        "",
        "| Score | Baseline | Latest on drug | Change | Response criterion |",
        "|---|---|---|---|---|",
    ]
    for result in finding.response.instruments:
        latest = result.latest
        assert latest is not None  # instruments without on-drug scores are not assessed
        baseline = f"{_num(result.baseline.value)} ({result.baseline.day.isoformat()})" if result.baseline else "not recorded"
        verdict = "met" if result.reached else "not met"
        lines.append(
            f"| {result.instrument} | {baseline} | {_score(latest, finding)} | {_change(result, latest)} | "
            f"{result.criterion.explain}: **{verdict}** |"
        )
    status = "ongoing" if course.ongoing else (
        f"stopped {course.end.isoformat()}" if course.end_recorded else f"stopped (end not recorded; last record {course.end.isoformat()})"
    )
    lines += [
        "",
        f"- Dupilumab: started {course.start.isoformat()}, {status} ({', '.join(course.sources)}).",
        "- Atopic dermatitis: " + ", ".join(f"{c.source} ({c.clinical_status or 'status not recorded'})" for c in finding.diagnosis) + ".",
        "- Scores used: " + ", ".join(_evidence_sources(finding)) + ".",
        f"- Latest score: {_latest_evidence_day(finding).isoformat()}, "
        f"{_weeks((context.today - _latest_evidence_day(finding)).days // 7)} before today.",
    ]
    if context.orders_in_focus:
        lines.append(
            "- This order continues dupilumab: " + ", ".join(o.source for o in context.orders_in_focus) + "."
        )
    lines += ["", "**Next line, ranked for this patient**", ""]
    for ranked in plan.offered:
        lines.append(_option_line(ranked))
    if plan.excluded:
        lines.append("")
        lines.append("Not offered: " + "; ".join(f"{e.option.label} ({e.reason})" for e in plan.excluded) + ".")
    for key in ("confirm_before_switch", "continue_basic_therapy"):
        advice = knowledge.advice[key]
        lines += ["", f"{advice.text} [{advice.claim.status}]"]
    lines += [
        "",
        "Rules applied: adequate trial: " + _cite(knowledge, trial.adequate_trial_claim) + "; "
        + "; ".join(f"{r.criterion.explain}: {_cite(knowledge, r.criterion.claim)}" for r in finding.response.instruments)
        + (f"; ranking: {_cite(knowledge, knowledge.rank_group_claims[plan.offered[0].option.rank_group])}" if plan.offered else "")
        + ".",
    ]
    return "\n".join(lines)


def _evidence_sources(finding: Finding) -> list[str]:
    scores = sorted(
        (s for r in finding.evidence for s in (r.baseline, *r.on_drug) if s is not None), key=lambda s: (s.day, s.source)
    )
    return list(dict.fromkeys(s.source for s in scores))


def _latest_evidence_day(finding: Finding) -> date:
    return max(r.latest.day for r in finding.evidence if r.latest)


def _option_line(ranked: RankedOption) -> str:
    option = ranked.option
    text = f"{ranked.rank}. **{option.label}**, {option.drug_class}: {option.dose} [{option.claim.status}]"
    if ranked.cautions:
        text += ". Caution: " + "; ".join(ranked.cautions)
    if ranked.orderable:
        text += ". Draft order below"
    return text + "."


# -- suggestions ----------------------------------------------------------------------------


def _suggestions(plan: NextLinePlan, card_id: str, finding: Finding, context: CardContext) -> tuple[Suggestion, ...]:
    suggestions = []
    for ranked in plan.suggested():
        order = draft_medication_request(ranked, finding, context)
        actions = [Action("create", f"Draft order: {ranked.option.order.instruction} ({ranked.option.label})", resource=order)]  # type: ignore[union-attr]
        label = f"Order {ranked.option.order.text}, {ranked.option.order.instruction}"  # type: ignore[union-attr]
        if context.orders_in_focus:
            label = f"Replace dupilumab with {ranked.option.order.text}"  # type: ignore[union-attr]
            actions = [
                Action("delete", f"Remove the draft dupilumab order {o.source}", resource_id=o.source)
                for o in context.orders_in_focus
            ] + actions
        suggestions.append(
            Suggestion(label=label, uuid=str(uuid.uuid5(uuid.UUID(card_id), ranked.option.id)), actions=tuple(actions))
        )
    return tuple(suggestions)


def draft_medication_request(ranked: RankedOption, finding: Finding, context: CardContext) -> dict[str, Any]:
    template = ranked.option.order
    assert template is not None
    medication: dict[str, Any] = {"text": template.text}
    if template.codings:
        medication["coding"] = [{"system": s, "code": c, "display": d} for s, c, d in template.codings]
    dosage: dict[str, Any] = {"text": template.instruction}
    if template.frequency_per_day:
        dosage["timing"] = {"repeat": {"frequency": template.frequency_per_day, "period": 1, "periodUnit": "d"}}
    if template.dose_mg:
        dosage["doseAndRate"] = [{"doseQuantity": {"value": template.dose_mg, "unit": "mg", "system": _UCUM, "code": "mg"}}]
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": medication,
        "subject": {"reference": f"Patient/{context.patient_id}"},
        "reasonReference": [{"reference": c.source} for c in finding.diagnosis],
        "dosageInstruction": [dosage],
        "note": [{"text": f"Suggested by clinical decision support after {TOPICS[finding.kind].lower()}."}],
    }
    if context.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{context.encounter_id}"}
    if context.user_id and context.user_id.split("/", 1)[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": context.user_id}
    return resource
