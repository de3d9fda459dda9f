"""One hook call, end to end, without HTTP:

    validated request -> gather FHIR data (prefetch) -> normalise into a PatientRecord
    -> assess (pure) -> rank next-line options (knowledge files) -> render cards -> response

Both the HTTP endpoint and `cds-service evaluate` call `evaluate_hook`.
`DataUnavailable` escapes when the conclusion depends on data the request
lacks; the caller answers 412.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from .assess.findings import Assessment, Finding, FindingKind, assess_patient
from .assess.orders import OrderFocus, orders_in_focus
from .assess.patient import patient_factors
from .assess.response import ResponseAssessment
from .cards.model import Card
from .cards.render import CardContext, IssuedCards, finding_text, render_finding, render_monitoring, render_safety
from .gather.fhir_server import FhirServerReader
from .patient_cache import CachedPatient, PatientCache, patient_key
from .gather.prefetch import GatheredData, read_prefetch
from .hooks.catalog import ORDER_HOOKS, ServiceDefinition
from .hooks.validation import HookRequest
from .knowledge import Knowledge, load_knowledge
from .recommend.monitoring import missing_baseline_tests
from .recommend.ranking import rank_next_line_options, screen_context
from .recommend.safety import screen_agent
from .record.fhir_json import warm_up
from .record.model import DataUnavailable, PatientRecord
from .record.normalise import build_patient_record, read_draft_orders
from .settings import Settings

__all__ = ["DataUnavailable", "Engine", "HookOutcome", "evaluate_hook"]


@dataclass(frozen=True)
class Engine:
    """What every hook call shares: settings, the knowledge base and the FHIR server reader."""

    settings: Settings
    knowledge: Knowledge
    fhir: FhirServerReader
    patients: PatientCache

    @classmethod
    def from_settings(cls, settings: Settings) -> "Engine":
        local_codes = tuple(sorted(settings.score_codes.items()))
        warm_up()
        return cls(settings, load_knowledge(local_codes), FhirServerReader(settings), PatientCache(settings.patient_cache_resources))


@dataclass(frozen=True)
class HookOutcome:
    response: dict[str, Any]
    record: PatientRecord | None  # None, as the assessment, when the order hook had nothing to advise on
    assessment: Assessment | None


def evaluate_hook(
    request: HookRequest, service: ServiceDefinition, engine: Engine, now: datetime, deadline: float | None = None,
    base_url: str | None = None,
) -> HookOutcome:
    """`deadline` (time.monotonic()) bounds reading the FHIR server; by default the configured budget from now.
    `base_url` is where this service is reached (cards link to its SMART app there)."""
    caching = engine.patients.max_resources > 0
    key = patient_key(request.prefetch, request.patient_id, now.date(), engine.settings.validate_resources) if caching else None
    cached = engine.patients.get(key)
    if cached is not None:  # the same prefetch and day as a recent call: its record and assessment still hold
        try:
            return _decide(cached.gathered, request, service, engine, now, key, cached, base_url)
        except DataUnavailable:
            pass  # this hook needs a section the first one did not: read the prefetch again, then the server
    gathered = read_prefetch(request.prefetch, service.prefetch)
    try:
        return _decide(gathered, request, service, engine, now, key, None, base_url)
    except DataUnavailable:
        # Prefetch lacks what the conclusion needs: read it from the FHIR server, then decide again.
        # What still cannot be read raises DataUnavailable again, with the reason, for a 412.
        refusal = "no fhirServer was given to read it from" if not request.fhir_server else engine.fhir.refusal(request.fhir_server)
        if refusal is None:
            if deadline is None:
                deadline = time.monotonic() + engine.settings.fhir_time_budget_ms / 1000
            access = engine.fhir.access(request.fhir_server, request.fhir_authorization, deadline)  # type: ignore[arg-type]
            engine.fhir.complete(gathered, access, service.prefetch, request.context)
        else:
            for section in gathered.unavailable:
                gathered.unavailable[section] += f"; {refusal}"
        return _decide(gathered, request, service, engine, now, None, None, base_url)  # data from the server: not cached


def _decide(
    gathered: GatheredData,
    request: HookRequest,
    service: ServiceDefinition,
    engine: Engine,
    now: datetime,
    key: bytes | None,
    cached: CachedPatient | None = None,
    base_url: str | None = None,
) -> HookOutcome:
    """The answer for this call. Its cards depend on the record, the day, the caller and the draft orders in
    focus, so they are rendered once per cache entry, focus and caller, and issued to each call with its own
    identifiers (a clinician adding unrelated orders in one session keeps the same focus)."""
    knowledge = engine.knowledge
    context = request.context
    orders = read_draft_orders(
        request.patient_id, knowledge.concepts, gathered.resources, context.get("draftOrders"),
        context.get("selections") if service.hook == "order-select" else None,
    )
    focus = orders_in_focus(orders, knowledge)
    if service.hook in ORDER_HOOKS and not focus:
        # Most order-select calls are about orders this service has no advice on: answered without reading
        # the patient's record.
        return HookOutcome({"cards": []}, None, None)
    public_url = base_url or engine.settings.public_base_url
    card_context = CardContext(
        hook=service.hook,
        hook_instance=request.hook_instance,
        today=now.date(),
        patient_id=request.patient_id,
        user_id=context.get("userId"),
        encounter_id=context.get("encounterId"),
        topic_system=engine.settings.card_topic_system,
        override_reason_system=engine.settings.override_reason_system,
        source_label=engine.settings.source_label,
        app_url=f"{public_url}/smart/launch" if public_url else None,
    )
    if cached is None:
        base = build_patient_record(
            request.patient_id,
            gathered.resources,
            gathered.unavailable,
            knowledge.concepts,
            notes=gathered.notes,
            validate=engine.settings.validate_resources,
        )
    else:
        base = cached.record
    record = replace(base, draft_orders=orders)
    entry = cached if cached is not None else _assessed(base, gathered, card_context.today, engine, key)
    template = replace(card_context, hook_instance="")

    def render() -> IssuedCards:
        if service.hook in ORDER_HOOKS:
            return IssuedCards.of(_order_cards(record, entry, focus, template, engine))
        return IssuedCards.of(_finding_cards(record, entry, template, engine))

    cards = entry.memo(("cards", service.hook, focus, template), render)
    return HookOutcome({"cards": cards.issue(card_context)}, record, entry.assessment)


def _assessed(base: PatientRecord, gathered: GatheredData, today: date, engine: Engine, key: bytes | None) -> CachedPatient:
    """The assessment of a record just built, kept in the patient cache under `key` when there is one."""
    # Only what draft orders may reference is kept of the raw data (their Medication resources).
    kept = GatheredData(resources={"Medication": gathered.resources.get("Medication", [])})
    weight = sum(map(len, gathered.resources.values()))
    assessment = assess_patient(base, today, engine.knowledge)
    entry = CachedPatient(base, assessment, weight, kept)
    if key is not None:
        # The cache keeps what a later call about the same data reads, not the raw Observations;
        # the derived values this call computes are shared with it.
        kept_record = replace(base, observation_index=base.observation_index.retained(today))
        engine.patients.put(key, CachedPatient(kept_record, assessment, weight, kept, entry._memo))
    return entry


def _finding_cards(
    record: PatientRecord, cached: CachedPatient, context: CardContext, engine: Engine, dupilumab_orders: tuple = ()
) -> list[Card]:
    """One card per finding; the primary one carries the ranked switch suggestions when it calls for a switch."""
    knowledge = engine.knowledge
    assessment = cached.assessment
    region = engine.settings.region
    cards = []
    for index, finding in enumerate(assessment.findings):
        plan, gaps = None, ()
        if index == 0 and finding.leads_to_switch:
            plan = cached.memo(("plan", region), lambda: rank_next_line_options(assessment, knowledge, region))
            first = plan.suggested()[0].option.id if plan.suggested() else None
            if first:
                gaps = cached.memo(("missing", first), lambda: missing_baseline_tests(first, record, assessment.patient, knowledge))  # type: ignore[arg-type]
        cards.append(_finding_card(cached, finding, plan, context, knowledge, dupilumab_orders=dupilumab_orders, baseline_gaps=gaps))
    return cards


def _finding_card(cached: CachedPatient, finding: Finding, plan: Any, context: CardContext, knowledge: Knowledge, *,
                  dupilumab_orders: tuple = (), switch_drafted: bool = False, baseline_gaps: tuple = ()) -> Card:
    """A finding of the cached assessment as a card; its text is written once per entry and draft orders."""
    options = {"dupilumab_orders": dupilumab_orders, "switch_drafted": switch_drafted, "baseline_gaps": baseline_gaps}
    key = ("finding-text", finding.kind, plan is not None, switch_drafted, tuple(o.source for o in dupilumab_orders),
           tuple(t.id for t in baseline_gaps))
    text = cached.memo(key, lambda: finding_text(finding, cached.assessment, plan, context.today, knowledge, **options))
    return render_finding(finding, cached.assessment, plan, context, knowledge, text=text, **options)


def _order_cards(record: PatientRecord, cached: CachedPatient, focus: OrderFocus, context: CardContext, engine: Engine) -> list[Card]:
    """Order hooks: a dupilumab order meets the findings; a next-line agent meets its safety screen,
    its baseline tests, and the pitfalls of switching (too early, manageable eye disease)."""
    knowledge = engine.knowledge
    assessment = cached.assessment
    region = engine.settings.region
    if not assessment.diagnosis:
        return []  # the advice is about atopic dermatitis; an agent ordered for something else is not ours to screen
    cards: list[Card] = []
    if focus.next_line:
        patient = assessment.patient or cached.memo("patient", lambda: patient_factors(record, context.today, knowledge))
        with_patient = replace(assessment, patient=patient)
        for drafted in focus.next_line:
            flags = screen_agent(drafted.agent, patient, screen_context(assessment, drafted.order.dose_mg), knowledge)
            if flags:
                plan = cached.memo(("plan", region), lambda: rank_next_line_options(with_patient, knowledge, region))
                cards.append(render_safety(drafted, flags, plan, context, knowledge))
            if any(f.contraindicated for f in flags):
                continue  # baseline tests are for starting the agent; it should not be started
            missing = cached.memo(("missing", drafted.agent), lambda: missing_baseline_tests(drafted.agent, record, patient, knowledge))
            if missing:
                cards.append(render_monitoring(drafted, missing, context, knowledge))
        for finding in assessment.findings:
            if finding.kind is FindingKind.TRIAL_TOO_SHORT or (
                finding.kind is FindingKind.OCULAR_SURFACE_DISEASE and not finding.leads_to_switch
            ):
                cards.append(_finding_card(cached, finding, None, context, knowledge, switch_drafted=True))
        cards += _switch_too_early(assessment, context, knowledge)
    if focus.dupilumab:
        cards += _finding_cards(record, cached, context, engine, dupilumab_orders=focus.dupilumab)
    return cards


def _switch_too_early(assessment: Assessment, context: CardContext, knowledge: Knowledge) -> list[Card]:
    """A next-line agent drafted while dupilumab is ongoing and short of an adequate trial (seed pitfall 1)."""
    course = assessment.course
    if course is None or not course.ongoing or assessment.finding(FindingKind.TRIAL_TOO_SHORT):
        return []
    if course.weeks_on_drug(context.today) >= knowledge.response.adequate_trial_weeks:
        return []
    if course.stopped_for("adverse", "ocular") or any(f.leads_to_switch for f in assessment.findings):
        return []
    finding = Finding(
        FindingKind.TRIAL_TOO_SHORT,
        course,
        assessment.diagnosis,
        course.weeks_on_drug(context.today),
        ResponseAssessment(()),
    )
    return [render_finding(finding, assessment, None, context, knowledge, switch_drafted=True)]


def assess_and_render(record: PatientRecord, engine: Engine, card_context: CardContext) -> tuple[Assessment, list[Card], Any]:
    """The patient-view answer for a record read outside a hook call (the SMART app): the same
    assessment, cards and ranked plan the service gives."""
    knowledge = engine.knowledge
    cached = CachedPatient(record, assess_patient(record, card_context.today, knowledge), 0, GatheredData())
    cards = _finding_cards(record, cached, card_context, engine)
    plan = cached._memo.get(("plan", engine.settings.region))
    return cached.assessment, cards, plan
