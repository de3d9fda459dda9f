"""One hook call, end to end, without HTTP:

    validated request -> gather FHIR data (prefetch) -> normalise into a PatientRecord
    -> assess (pure) -> rank next-line options (knowledge files) -> render cards -> response

Both the HTTP endpoint and `cds-service evaluate` call `evaluate_hook`.
`DataUnavailable` escapes when the conclusion depends on data the request
lacks; the caller answers 412.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .assess.findings import Assessment, assess_patient
from .assess.orders import dupilumab_orders_in_focus
from .cards.render import CardContext, render_finding
from .gather.prefetch import read_prefetch
from .hooks.catalog import ORDER_HOOKS, ServiceDefinition
from .hooks.validation import HookRequest
from .knowledge import Knowledge, load_knowledge
from .recommend.ranking import rank_next_line_options
from .record.fhir_json import warm_up
from .record.model import DataUnavailable, PatientRecord
from .record.normalise import build_patient_record
from .settings import Settings

__all__ = ["DataUnavailable", "Engine", "HookOutcome", "evaluate_hook"]


@dataclass(frozen=True)
class Engine:
    """What every hook call shares: settings and the knowledge base."""

    settings: Settings
    knowledge: Knowledge

    @classmethod
    def from_settings(cls, settings: Settings) -> "Engine":
        local_codes = tuple(sorted(settings.score_codes.items()))
        warm_up()
        return cls(settings, load_knowledge(local_codes))


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    record: PatientRecord
    assessment: Assessment | None  # None when the order hook had nothing to advise on


def evaluate_hook(request: HookRequest, service: ServiceDefinition, engine: Engine, now: datetime) -> HookOutcome:
    knowledge = engine.knowledge
    gathered = read_prefetch(request.prefetch, service.prefetch)
    context = request.context
    record = build_patient_record(
        request.patient_id,
        gathered.resources,
        gathered.unavailable,
        knowledge.concepts,
        draft_orders=context.get("draftOrders"),
        selections=context.get("selections") if service.hook == "order-select" else None,
        notes=gathered.notes,
    )
    focus = dupilumab_orders_in_focus(record)
    if service.hook in ORDER_HOOKS and not focus:
        return HookOutcome({"cards": []}, record, None)

    today = now.date()
    assessment = assess_patient(record, today, knowledge)
    card_context = CardContext(
        hook=service.hook,
        hook_instance=request.hook_instance,
        today=today,
        patient_id=request.patient_id,
        user_id=context.get("userId"),
        encounter_id=context.get("encounterId"),
        orders_in_focus=focus,
        topic_system=engine.settings.card_topic_system,
        override_reason_system=engine.settings.override_reason_system,
        source_label=engine.settings.source_label,
    )
    cards = []
    for finding in assessment.findings:
        plan = rank_next_line_options(finding, assessment.patient, knowledge, engine.settings.region)
        cards.append(render_finding(finding, plan, card_context, knowledge).to_json())
    return HookOutcome({"cards": cards}, record, assessment)
