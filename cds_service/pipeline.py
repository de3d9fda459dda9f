"""One hook call, end to end, without HTTP:

    validated request -> gather FHIR data (prefetch, then the FHIR server) -> normalise into a PatientRecord
    -> assess (pure) -> decide: rank next-line options, render cards -> response

Both the HTTP endpoint and `cds-service evaluate` call `evaluate_hook`. Gathering ends with an assessment
that holds everything the decision reads, so the decision is taken once and never goes back to the data.
`DataUnavailable` escapes when the conclusion depends on data that could not be had; the caller answers 412.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from .assess.findings import Assessment, FindingKind, assess_patient, switch_before_adequate_trial
from .assess.orders import OrderFocus, orders_in_focus
from .assess.patient import PatientFactors, patient_factors
from .cards import CardContext, IssuedCards, render_finding, render_monitoring, render_safety
from .cards.model import Card
from .gather.fhir_server import FhirServerReader
from .gather.prefetch import GatheredData, read_prefetch
from .hooks.catalog import ORDER_HOOKS, ServiceDefinition
from .hooks.validation import HookRequest
from .knowledge import BaselineTest, Knowledge, load_knowledge
from .patient_cache import PatientAnswers, PatientCache, patient_key
from .recommend.monitoring import missing_baseline_tests
from .recommend.ranking import NextLinePlan, approval_flag, rank_next_line_options, situation
from .recommend.safety import screen_agent
from .record.fhir_json import warm_up
from .record.model import DataUnavailable, DraftOrder, PatientRecord
from .record.normalise import build_patient_record, read_draft_orders
from .settings import Settings, check_region

__all__ = ["DataUnavailable", "Engine", "HookOutcome", "evaluate_hook"]


@dataclass(frozen=True)
class Engine:
    """What every hook call shares: settings, the knowledge base and the FHIR server reader."""

    settings: Settings
    knowledge: Knowledge
    fhir: FhirServerReader
    patients: PatientCache

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        local_codes = tuple(sorted(settings.score_codes.items()))
        warm_up()
        knowledge = load_knowledge(local_codes, folder=settings.knowledge_dir or None)
        check_region(settings.region, knowledge.regions)
        return cls(settings, knowledge, FhirServerReader(settings), PatientCache(settings.patient_cache_resources))


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    record: PatientRecord | None  # built by this call (None when answered from the cache or without the record)
    assessment: Assessment | None  # None when an order hook had nothing to advise on


def evaluate_hook(
    request: HookRequest, service: ServiceDefinition, engine: Engine, now: datetime, deadline: float | None = None,
    base_url: str | None = None,
) -> HookOutcome:
    """`deadline` (time.monotonic()) bounds reading the FHIR server; by default the configured budget from now.
    `base_url` is where this service is reached (cards link to its SMART app there)."""
    knowledge = engine.knowledge
    today = now.date()
    caching = engine.patients.max_resources > 0
    key = patient_key(request.prefetch, request.patient_id, today, engine.settings.validate_resources) if caching else None
    answers = engine.patients.get(key)
    gathered: GatheredData | None = None
    if answers is None:
        gathered = read_prefetch(request.prefetch, service.prefetch)  # read and checked: a malformed one is a 400
        medications = gathered.resources.get("Medication", [])
    else:
        medications = answers.medications
    context = request.context
    orders = read_draft_orders(
        request.patient_id, knowledge.concepts, {"Medication": medications}, context.get("draftOrders"),
        context.get("selections") if service.hook == "order-select" else None,
    )
    focus = orders_in_focus(orders, knowledge)
    if service.hook in ORDER_HOOKS and not focus:
        # Most order-select calls are about orders this service has no advice on: answered without the record.
        return HookOutcome({"cards": []}, None, None)
    record = None
    if answers is None or _lacks_factors(answers.assessment, focus):
        if gathered is None:
            gathered = read_prefetch(request.prefetch, service.prefetch)
        record, assessment, from_server = _gather_and_assess(gathered, request, service, engine, today, deadline, focus)
        answers = PatientAnswers(assessment, sum(map(len, gathered.resources.values())), gathered.resources.get("Medication", []))
        if not from_server:  # the digest covers the prefetch only
            engine.patients.put(key, answers)
    public_url = base_url or engine.settings.public_base_url
    card_context = CardContext(
        hook=service.hook,
        hook_instance=request.hook_instance,
        today=today,
        patient_id=request.patient_id,
        user_id=context.get("userId"),
        encounter_id=context.get("encounterId"),
        topic_system=engine.settings.card_topic_system,
        override_reason_system=engine.settings.override_reason_system,
        source_label=engine.settings.source_label,
        app_url=f"{public_url}/smart/launch" if public_url else None,
    )
    cards = decide(answers, service.hook, focus, card_context, engine)
    return HookOutcome({"cards": cards.issue(card_context)}, record, answers.assessment)


def _lacks_factors(assessment: Assessment, focus: OrderFocus) -> bool:
    """A drafted next-line agent is screened against the patient factors; an assessment without findings
    (kept from a patient-view call) may not have them."""
    return bool(focus.next_line) and bool(assessment.diagnosis) and assessment.patient is None


def _gather_and_assess(
    gathered: GatheredData, request: HookRequest, service: ServiceDefinition, engine: Engine, today: date,
    deadline: float | None, focus: OrderFocus,
) -> tuple[PatientRecord, Assessment, bool]:
    """The record and its assessment from the prefetch; when the assessment needs a section the prefetch
    lacks, that section is read from the FHIR server and the assessment made again. (record, assessment,
    whether the server was read.)"""
    try:
        return (*_assess(gathered, request, engine, today, focus), False)
    except DataUnavailable:
        # What still cannot be read raises DataUnavailable again, with the reason, for a 412.
        server = request.fhir_server
        refusal = "no fhirServer was given to read it from" if not server else engine.fhir.refusal(server)
        if server and refusal is None:
            if deadline is None:
                deadline = time.monotonic() + engine.settings.fhir_time_budget_ms / 1000
            access = engine.fhir.access(server, request.fhir_authorization, deadline)
            engine.fhir.complete(gathered, access, service.prefetch, request.context)
        else:
            for section in gathered.unavailable:
                gathered.unavailable[section] += f"; {refusal}"
        return (*_assess(gathered, request, engine, today, focus), True)


def _assess(gathered: GatheredData, request: HookRequest, engine: Engine, today: date, focus: OrderFocus) -> tuple[PatientRecord, Assessment]:
    knowledge = engine.knowledge
    record = build_patient_record(
        request.patient_id, gathered.resources, gathered.unavailable, knowledge.concepts,
        notes=gathered.notes, validate=engine.settings.validate_resources,
    )
    assessment = assess_patient(record, today, knowledge)
    if _lacks_factors(assessment, focus):
        assessment = replace(assessment, patient=patient_factors(record, today, knowledge))
    return record, assessment


# -- the decision: pure functions of the assessment, the orders in focus and the call ------------------------


def decide(answers: PatientAnswers, hook: str, focus: OrderFocus, context: CardContext, engine: Engine) -> IssuedCards:
    """The cards for this call. They depend on the assessment, the day, the caller and the orders in focus, so
    they are rendered once per cached patient, focus and caller, and issued to each call with its own ids."""
    template = replace(context, hook_instance="")

    def render() -> IssuedCards:
        if hook in ORDER_HOOKS:
            return IssuedCards.of(_order_cards(answers, focus, template, engine))
        return IssuedCards.of(_finding_cards(answers, template, engine))

    return answers.cards((hook, focus, template), render)


def _plan(answers: PatientAnswers, engine: Engine) -> NextLinePlan:
    if answers.plan is None:
        answers.plan = rank_next_line_options(answers.assessment, engine.knowledge, engine.settings.region)
    return answers.plan


def _missing_tests(answers: PatientAnswers, agent: str, patient: PatientFactors, engine: Engine) -> tuple[BaselineTest, ...]:
    if agent not in answers.missing_tests:
        answers.missing_tests[agent] = missing_baseline_tests(agent, patient, engine.knowledge, engine.settings.region)
    return answers.missing_tests[agent]


def _finding_cards(answers: PatientAnswers, context: CardContext, engine: Engine, dupilumab_orders: tuple[DraftOrder, ...] = ()) -> list[Card]:
    """One card per finding; the primary one carries the ranked switch suggestions when it calls for a switch."""
    knowledge = engine.knowledge
    assessment = answers.assessment
    cards = []
    for index, finding in enumerate(assessment.findings):
        plan: NextLinePlan | None = None
        gaps: tuple[BaselineTest, ...] = ()
        if index == 0 and finding.leads_to_switch and assessment.patient is not None:
            plan = _plan(answers, engine)
            suggested = plan.suggested()
            if suggested:
                gaps = _missing_tests(answers, suggested[0].option.id, assessment.patient, engine)
        cards.append(render_finding(finding, assessment, plan, context, knowledge, dupilumab_orders=dupilumab_orders, baseline_gaps=gaps))
    return cards


def _order_cards(answers: PatientAnswers, focus: OrderFocus, context: CardContext, engine: Engine) -> list[Card]:
    """Order hooks: a dupilumab order meets the findings; a next-line agent meets its safety screen,
    its baseline tests, and the pitfalls of switching (too early, manageable eye disease)."""
    knowledge = engine.knowledge
    assessment = answers.assessment
    if not assessment.diagnosis:
        return []  # the advice is about atopic dermatitis; an agent ordered for something else is not ours to screen
    cards: list[Card] = []
    patient = assessment.patient
    if focus.next_line and patient is not None:
        for drafted in focus.next_line:
            region, plan = engine.settings.region, _plan(answers, engine)
            flags = screen_agent(drafted.agent, situation(assessment, patient, knowledge, region, drafted.order.dose_mg), knowledge)
            not_approved = approval_flag(drafted.agent, plan, knowledge)
            if not_approved is not None:
                flags = (*[f for f in flags if f.contraindicated], not_approved, *[f for f in flags if not f.contraindicated])
            if flags:
                cards.append(render_safety(drafted, flags, plan, context, knowledge, patient))
            if any(f.contraindicated for f in flags):
                continue  # baseline tests are for starting the agent; it should not be started
            missing = _missing_tests(answers, drafted.agent, patient, engine)
            if missing:
                cards.append(render_monitoring(drafted, missing, context, knowledge))
        for finding in assessment.findings:
            if finding.kind is FindingKind.TRIAL_TOO_SHORT or (
                finding.kind is FindingKind.OCULAR_SURFACE_DISEASE and not finding.leads_to_switch
            ):
                cards.append(render_finding(finding, assessment, None, context, knowledge, switch_drafted=True))
        too_early = switch_before_adequate_trial(assessment, context.today, knowledge)
        if too_early is not None:
            cards.append(render_finding(too_early, assessment, None, context, knowledge, switch_drafted=True))
    if focus.dupilumab:
        cards += _finding_cards(answers, context, engine, dupilumab_orders=focus.dupilumab)
    return cards


def assess_and_render(record: PatientRecord, engine: Engine, card_context: CardContext) -> tuple[Assessment, list[Card], NextLinePlan | None]:
    """The patient-view answer for a record read outside a hook call (the SMART app): the same
    assessment, cards and ranked plan the service gives."""
    answers = PatientAnswers(assess_patient(record, card_context.today, engine.knowledge), 0, [])
    cards = _finding_cards(answers, card_context, engine)
    return answers.assessment, cards, answers.plan

