"""The resources suggestions create: draft MedicationRequests of next-line options and ServiceRequests of
baseline tests, and the suggestions that carry them."""

from __future__ import annotations

from typing import Any

from ..assess.findings import Finding
from ..knowledge import BaselineTest, Knowledge, OrderTemplate, TherapyOption
from ..recommend.ranking import NextLinePlan
from ..record.model import DraftOrder
from .identity import CardContext
from .model import Action, Suggestion

_UCUM = "http://unitsofmeasure.org"


def refs(sources: Any) -> str:
    """Resource references (or names) once each, in order."""
    return ", ".join(dict.fromkeys(sources))


def switch_suggestions(
    plan: NextLinePlan, card_key: str, finding: Finding | None, context: CardContext, knowledge: Knowledge,
    replacing: tuple[DraftOrder, ...],
) -> tuple[Suggestion, ...]:
    """One suggestion per orderable option in rank order, the first recommended; each replaces `replacing`."""
    suggestions = []
    for index, ranked in enumerate(plan.suggested()):
        template = ranked.order
        assert template is not None  # suggested options have a template
        order = draft_medication_request(template, finding, context, knowledge)
        actions = [Action("create", f"Draft order: {template.text}, {template.instruction}", resource=order)]
        label = f"Order {template.text}: {template.instruction}"
        if replacing:
            label = f"Replace {refs(o.medication.label() if o.medication else o.source for o in replacing)} with {template.text}"
            actions = [Action("delete", f"Remove the draft order {o.source}", resource_id=o.source) for o in replacing] + actions
        suggestions.append(
            Suggestion(
                label=label,
                key=ranked.option.id,
                uuid=context.suggestion_uuid(card_key, ranked.option.id),
                actions=tuple(actions),
                is_recommended=True if index == 0 else None,
            )
        )
    return tuple(suggestions)


def draft_medication_request(template: OrderTemplate, finding: Finding | None, context: CardContext, knowledge: Knowledge) -> dict[str, Any]:
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
        "dosageInstruction": [dosage],
    }
    if finding is not None:
        resource["reasonReference"] = [{"reference": c.source} for c in finding.diagnosis]
        topic = knowledge.cards.topics[finding.kind.value]
        resource["note"] = [{"text": f"Suggested by clinical decision support after {topic.lower()}."}]
    return _with_context(resource, context)


def draft_service_request(test: BaselineTest, option: TherapyOption, context: CardContext) -> dict[str, Any]:
    code: dict[str, Any] = {"text": test.order_text}
    if test.order_codings:
        code["coding"] = [{"system": s, "code": c, "display": d} for s, c, d in test.order_codings]
    resource = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": code,
        "subject": {"reference": f"Patient/{context.patient_id}"},
        "note": [{"text": f"Baseline before {option.label} (clinical decision support)."}],
    }
    return _with_context(resource, context)


def _with_context(resource: dict[str, Any], context: CardContext) -> dict[str, Any]:
    if context.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{context.encounter_id}"}
    if context.user_id and context.user_id.split("/", 1)[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": context.user_id}
    return resource
