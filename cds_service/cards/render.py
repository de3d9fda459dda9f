"""Findings, ranked options and safety flags -> cards a clinician can act on and check.

Every card says what was found (dates, values, the resources behind it), what
to do, what was excluded and why, and the rules applied with their sources.
The card contract (topics, indicators, suggestions) is documented in the README.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable

import orjson

from ..assess.findings import Assessment, Finding, FindingKind
from ..assess.orders import AgentOrder
from ..assess.response import InstrumentResponse, ResponseAssessment, SeverityScore
from ..knowledge import BaselineTest, Claim, Knowledge, TherapyOption
from ..record.model import DraftOrder
from ..recommend.ranking import NextLinePlan, RankedOption
from ..recommend.safety import SafetyFlag
from .model import Action, Card, Coding, Link, Suggestion

_CARD_NAMESPACE = uuid.UUID("8f0f6f0e-3c55-4a36-9a55-0d6d2c6a3f1e").bytes
_UCUM = "http://unitsofmeasure.org"

THERAPY_SAFETY = "therapy-safety"
BASELINE_MONITORING = "baseline-monitoring"
TOPICS = {
    FindingKind.INADEQUATE_RESPONSE.value: "Dupilumab inadequate response",
    FindingKind.LOSS_OF_RESPONSE.value: "Dupilumab loss of response",
    FindingKind.OCULAR_SURFACE_DISEASE.value: "Dupilumab-related ocular surface disease",
    FindingKind.INTOLERANCE.value: "Dupilumab intolerance",
    FindingKind.TRIAL_TOO_SHORT.value: "Dupilumab trial too short",
    THERAPY_SAFETY: "Safety of a next-line agent",
    BASELINE_MONITORING: "Baseline tests before a next-line agent",
}
_OVERRIDE_KIND = {
    FindingKind.INADEQUATE_RESPONSE: "failure",
    FindingKind.LOSS_OF_RESPONSE: "failure",
    FindingKind.INTOLERANCE: "failure",
    FindingKind.OCULAR_SURFACE_DISEASE: "ocular",
    FindingKind.TRIAL_TOO_SHORT: "trial",
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
    topic_system: str
    override_reason_system: str
    source_label: str
    app_url: str | None = None  # the SMART app's launch URL: finding cards link to it

    def card_uuid(self, key: str) -> str:
        """Stable for one hook call, unique across calls: feedback can name the card."""
        return _uuid_text(self._card_uuid(key))

    def suggestion_uuid(self, card_key: str, name: str, card: bytes | None = None) -> str:
        """`card`: the card's uuid as bytes, when the caller has it already."""
        return _uuid_text(name_based_uuid(card or self._card_uuid(card_key), name))

    def _card_uuid(self, key: str) -> bytes:
        return name_based_uuid(_CARD_NAMESPACE, f"{self.hook_instance}/{key}")

    def card(self, key: str, topic: str, summary: str, indicator: str, detail: str, override_kind: str,
             knowledge: Knowledge, suggestions: tuple[Suggestion, ...] = (), selection: str = "at-most-one",
             links: tuple[Link, ...] = ()) -> Card:
        return Card(
            key=key,
            uuid=self.card_uuid(key),
            summary=summary,
            indicator=indicator,
            source_label=self.source_label,
            topic=Coding(self.topic_system, topic, TOPICS[topic]),
            detail=detail,
            suggestions=suggestions,
            selection_behavior=selection if suggestions else None,
            override_reasons=tuple(
                Coding(self.override_reason_system, code, display)
                for code, display in knowledge.override_reasons[override_kind].items()
            ),
            links=links,
        )

    def course_link(self, topic: str) -> tuple[Link, ...]:
        """A SMART link to the course timeline; appContext tells the app what the card was about."""
        if not self.app_url:
            return ()
        context = orjson.dumps({"topic": topic, "hookInstance": self.hook_instance, "patientId": self.patient_id}).decode()
        return (Link("Open the dupilumab course timeline", self.app_url, "smart", context),)


@dataclass(frozen=True)
class IssuedCards:
    """Cards as JSON, rendered once, issued to each hook call with that call's identifiers: card and
    suggestion uuids and the hookInstance in SMART links' appContext are the only parts that depend on it."""

    cards: tuple[tuple[str, dict[str, Any], tuple[str, ...]], ...]  # (card key, JSON, suggestion keys)

    @classmethod
    def of(cls, cards: Iterable[Card]) -> "IssuedCards":
        return cls(tuple((c.key, c.to_json(), tuple(s.key for s in c.suggestions)) for c in cards))

    def issue(self, context: CardContext) -> list[dict[str, Any]]:
        """The cards for the call `context` describes (new objects where identifiers change; the rest shared)."""
        issued = []
        for key, template, suggestion_keys in self.cards:
            card_uuid = context._card_uuid(key)
            card = {**template, "uuid": _uuid_text(card_uuid)}
            if "suggestions" in card:
                card["suggestions"] = [
                    {**s, "uuid": context.suggestion_uuid(key, name, card_uuid)} for s, name in zip(card["suggestions"], suggestion_keys)
                ]
            if "links" in card:
                card["links"] = [_issued_link(link, context.hook_instance) for link in card["links"]]
            issued.append(card)
        return issued


def _issued_link(link: dict[str, Any], hook_instance: str) -> dict[str, Any]:
    if "appContext" not in link:
        return link
    app_context = orjson.loads(link["appContext"])
    if "hookInstance" not in app_context:
        return link
    app_context["hookInstance"] = hook_instance
    return {**link, "appContext": orjson.dumps(app_context).decode()}


def name_based_uuid(namespace: bytes, name: str) -> bytes:
    """RFC 4122 version 5 (SHA-1, name-based), as `uuid.uuid5(UUID(bytes=namespace), name).bytes`; several are
    made per card issued, and building UUID objects cost more than the hashing."""
    digest = bytearray(hashlib.sha1(namespace + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(digest)


def _uuid_text(value: bytes) -> str:
    h = value.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# -- small text helpers ------------------------------------------------------------------------


def weeks(count: int | float) -> str:
    count = int(count)
    return f"{count} week" if count == 1 else f"{count} weeks"


def _num(value: float) -> str:
    return f"{value:g}"


def _cite(knowledge: Knowledge, claim: Claim) -> str:
    return knowledge.cite(claim)


def _refs(sources: Iterable[str]) -> str:
    return ", ".join(dict.fromkeys(sources))


# -- finding cards --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FindingText:
    """What a finding card says: the same for every call about the same data and day."""

    summary: str
    indicator: str
    detail: str


def finding_text(
    finding: Finding,
    assessment: Assessment,
    plan: NextLinePlan | None,
    today: date,
    knowledge: Knowledge,
    *,
    dupilumab_orders: tuple[DraftOrder, ...] = (),
    switch_drafted: bool = False,
    baseline_gaps: tuple[BaselineTest, ...] = (),
) -> FindingText:
    kind = finding.kind
    others = [f for f in assessment.findings if f is not finding]
    switching_anyway = any(f.leads_to_switch for f in others)
    summary, indicator = _finding_headline(finding, plan, switch_drafted, switching_anyway)
    lines = [_finding_opening(finding, knowledge), ""]
    if finding.evidence or finding.response.instruments:
        lines += _score_table(finding.response, finding)
        lines.append("")
    lines += _course_lines(finding, today)
    if finding.ocular is not None and kind is FindingKind.OCULAR_SURFACE_DISEASE:
        lines += _ocular_lines(finding, knowledge, switching_anyway)
    lines += _confounder_lines(finding)
    if others:
        lines.append("- Also found: " + "; ".join(TOPICS[f.kind.value].lower() for f in others) + " (separate cards).")
    if dupilumab_orders:
        lines.append("- This order continues dupilumab: " + _refs(o.source for o in dupilumab_orders) + ".")
    if plan is not None:
        lines += ["", *_plan_lines(plan, knowledge, finding, baseline_gaps)]
    lines += ["", *_finding_advice(finding, knowledge, switch_drafted)]
    lines += ["", _rules_line(finding, plan, knowledge)]
    return FindingText(summary, indicator, "\n".join(lines))


def render_finding(
    finding: Finding,
    assessment: Assessment,
    plan: NextLinePlan | None,
    context: CardContext,
    knowledge: Knowledge,
    *,
    dupilumab_orders: tuple[DraftOrder, ...] = (),
    switch_drafted: bool = False,
    baseline_gaps: tuple[BaselineTest, ...] = (),
    text: FindingText | None = None,
) -> Card:
    """One card per finding. `plan` is given for the card that carries the switch suggestions; `text`, when
    given, is `finding_text` of the same arguments (computed once for repeated calls about the same data)."""
    kind = finding.kind
    if text is None:
        text = finding_text(finding, assessment, plan, context.today, knowledge, dupilumab_orders=dupilumab_orders,
                            switch_drafted=switch_drafted, baseline_gaps=baseline_gaps)
    suggestions = _switch_suggestions(plan, kind.value, finding, context, dupilumab_orders) if plan else ()
    return context.card(kind.value, kind.value, text.summary, text.indicator, text.detail, _OVERRIDE_KIND[kind], knowledge,
                        suggestions, links=context.course_link(kind.value))


def _next(plan: NextLinePlan | None) -> str:
    return f"; next line: {plan.offered[0].option.label}" if plan and plan.offered else ""


def _finding_headline(finding: Finding, plan: NextLinePlan | None, switch_drafted: bool, switching_anyway: bool) -> tuple[str, str]:
    w = weeks(finding.completed_weeks)
    kind = finding.kind
    if kind is FindingKind.INADEQUATE_RESPONSE:
        return f"Dupilumab: no adequate response after {w}{_next(plan)}", "warning"
    if kind is FindingKind.LOSS_OF_RESPONSE:
        return f"Dupilumab: response lost after {w} on drug{_next(plan)}", "warning"
    if kind is FindingKind.INTOLERANCE:
        return f"Dupilumab stopped for an adverse effect after {w}{_next(plan)}", "warning"
    if kind is FindingKind.TRIAL_TOO_SHORT:
        if switch_drafted:
            return f"Switching after {w} of dupilumab: an adequate trial is 16 weeks", "warning"
        return f"Dupilumab stopped or judged after {w}: an adequate trial is 16 weeks", "info"
    ocular = finding.ocular
    assert ocular is not None
    if ocular.red_flags:
        return "Urgent: dupilumab-related eye disease with red flags: ophthalmology within 24 hours", "warning"
    if ocular.needs_switch:
        return f"Dupilumab-related eye disease, severe and persistent: switch{_next(plan)}", "warning"
    if switching_anyway:
        return f"Dupilumab-related eye disease ({ocular.grade}): treat the eye; it weighs on the next agent", "warning"
    if switch_drafted:
        return f"Dupilumab-related eye disease ({ocular.grade}) is manageable without switching", "warning"
    return f"Dupilumab-related eye disease ({ocular.grade}): keep dupilumab and treat the eye", "warning"


def _finding_opening(finding: Finding, knowledge: Knowledge) -> str:
    trial = knowledge.response.adequate_trial_explain
    w = weeks(finding.completed_weeks)
    kind = finding.kind
    if kind is FindingKind.INADEQUATE_RESPONSE:
        if finding.evidence:
            return f"**Inadequate response to dupilumab** in atopic dermatitis: no adequate response after {w} on drug ({trial})."
        return f"**Inadequate response to dupilumab** in atopic dermatitis: stopped for lack of efficacy after {w} ({trial})."
    if kind is FindingKind.LOSS_OF_RESPONSE:
        return f"**Loss of response to dupilumab**: {knowledge.response.loss_of_response_explain}, after {w} on drug."
    if kind is FindingKind.INTOLERANCE:
        reasons = "; ".join(f"{r.text} ({r.source})" for r in finding.course.stopped_for("adverse"))
        return f"**Dupilumab intolerance**: stopped after {w} for {reasons}."
    if kind is FindingKind.TRIAL_TOO_SHORT:
        return f"**Trial too short**: dupilumab was taken for {w}; {trial}."
    ocular = finding.ocular
    assert ocular is not None
    return f"**Dupilumab-related ocular surface disease (DROSD)**, graded **{ocular.grade}**."


def _score_row(result: InstrumentResponse, finding: Finding) -> str:
    latest = result.latest
    assert latest is not None  # instruments without on-drug scores are not assessed
    baseline = f"{_num(result.baseline.value)} ({result.baseline.day.isoformat()})" if result.baseline else "not recorded"
    best = min(result.on_drug, key=lambda s: (s.value, s.day))
    verdict = "met" if result.reached else "not met"
    if result.reached and result.latest not in result.meeting:
        verdict = f"met {result.meeting[0].day.isoformat()}, not met at the latest score"
    return (
        f"| {result.instrument} | {baseline} | {_score(best, finding)} | {_score(latest, finding)} | "
        f"{_change(result, latest)} | {result.criterion.explain}: **{verdict}** |"
    )


def _score_table(response: ResponseAssessment, finding: Finding) -> list[str]:
    rows = [
        "| Score | Baseline | Best on drug | Latest on drug | Change | Response criterion |",
        "|---|---|---|---|---|---|",
    ]
    return rows + [_score_row(r, finding) for r in response.instruments]


def _score(score: SeverityScore, finding: Finding) -> str:
    week = (score.day - finding.course.start).days // 7
    return f"{_num(score.value)} ({score.day.isoformat()}, week {week})"


def _change(result: InstrumentResponse, score: SeverityScore) -> str:
    percent = result.percent_change(score)
    if percent is not None:
        return f"{percent:+.0f}%"
    change = result.change_from_baseline(score)
    return f"{change:+g}" if change is not None else "no baseline"


def _course_lines(finding: Finding, today: date) -> list[str]:
    course = finding.course
    if course.ongoing:
        status = "ongoing"
    elif course.end_recorded:
        status = f"stopped {course.end.isoformat()}"  # type: ignore[union-attr]
    else:
        status = f"stopped (end not recorded; last record {course.end.isoformat()})"  # type: ignore[union-attr]
    lines = [f"- Dupilumab: started {course.start.isoformat()}, {status} ({_refs(course.sources)})."]
    if course.stop_reasons:
        lines.append("- Reason recorded for stopping: " + "; ".join(f"\"{r.text}\" ({r.source})" for r in course.stop_reasons) + ".")
    lines.append("- Atopic dermatitis: " + ", ".join(f"{c.source} ({c.clinical_status or 'status not recorded'})" for c in finding.diagnosis) + ".")
    scores = _evidence_scores(finding)
    if scores:
        lines.append("- Scores used: " + _refs(s.source for s in scores) + ".")
        latest = max(s.day for s in scores)
        lines.append(f"- Latest score: {latest.isoformat()}, {weeks((today - latest).days // 7)} before today.")
    return lines


def _evidence_scores(finding: Finding) -> list[SeverityScore]:
    results = finding.evidence or (finding.response.instruments if finding.kind is not FindingKind.OCULAR_SURFACE_DISEASE else ())
    return sorted((s for r in results for s in (r.baseline, *r.on_drug) if s is not None), key=lambda s: (s.day, s.source))


def _ocular_lines(finding: Finding, knowledge: Knowledge, switching_anyway: bool) -> list[str]:
    ocular = finding.ocular
    assert ocular is not None
    drosd = knowledge.drosd
    lines = []
    for condition in ocular.conditions:
        onset = condition.onset or condition.recorded
        week = (onset - finding.course.start).days // 7 if onset else None
        severity = f", recorded as {condition.severity.label().lower()}" if condition.severity else ""
        lines.append(f"- Eye: {condition.code.label()} from {onset.isoformat() if onset else 'an unrecorded date'}"
                     f"{f' (week {week} of dupilumab)' if week is not None else ''}{severity} ({condition.source}).")
    for flag in ocular.red_flags:
        lines.append(f"- **Red flag**: {flag.code.label()} ({flag.source}). {drosd.red_flags.text} [{drosd.red_flags.claim.status}]")
    if ocular.eye_treatments:
        lines.append("- Eye treatment: " + "; ".join(f"{u.medication.label()} from {u.start.isoformat()} ({u.source})" for u in ocular.eye_treatments) + ".")
    if ocular.steroid_weeks:
        lines.append(f"- Ophthalmic corticosteroid use since dupilumab: {ocular.steroid_weeks:.0f} weeks (more than {drosd.steroid_weeks} weeks means severe and persistent).")
    if ocular.grade_reasons:
        lines.append("- Graded " + ocular.grade + " because: " + "; ".join(ocular.grade_reasons) + ".")
    keep, management = drosd.management[ocular.grade]
    if switching_anyway and keep:
        treat = management.text.split(": ", 1)[-1]
        lines += ["", f"**Management**: dupilumab is being replaced for another reason (see that card); treat the eye meanwhile: {treat} "
                      f"[{management.claim.status}] The ranking weighs the eye: IL-13 blockers carry conjunctivitis and keratitis warnings."]
    else:
        lines += ["", f"**Management**: {management.text} [{management.claim.status}]"]
    if keep and ocular.stopped_for_eyes and not switching_anyway:
        lines.append(f"Dupilumab was stopped for the eyes. {drosd.pitfall.text} [{drosd.pitfall.claim.status}]")
    return lines


def _confounder_lines(finding: Finding) -> list[str]:
    if finding.kind not in {FindingKind.INADEQUATE_RESPONSE, FindingKind.LOSS_OF_RESPONSE, FindingKind.TRIAL_TOO_SHORT}:
        return []
    items = [f"{c.what} ({c.source}{', ' + c.day.isoformat() if c.day else ''})" for c in finding.confounders]
    items += [f"a dispensing gap of {gap.days} days ({gap.supply_end.isoformat()} to {gap.next_dispense.isoformat()}, {gap.after} to {gap.before})" for gap in finding.gaps]
    if not items:
        return []
    return ["- **Rule out before switching**: " + "; ".join(items) + "."]


def _plan_lines(plan: NextLinePlan, knowledge: Knowledge, finding: Finding, baseline_gaps: tuple[BaselineTest, ...]) -> list[str]:
    lines = ["**Next line, ranked for this patient**", ""]
    if finding.kind in {FindingKind.INADEQUATE_RESPONSE, FindingKind.LOSS_OF_RESPONSE}:
        advice = knowledge.advice["combination_before_switch"]
        lines = [f"{advice.text} [{advice.claim.status}]", "", *lines]
    for ranked in plan.offered:
        lines.append(_option_line(ranked))
    if plan.excluded:
        lines += ["", "Not offered: " + "; ".join(f"{e.option.label} ({e.reason})" for e in plan.excluded) + "."]
    if baseline_gaps and plan.suggested():
        first = plan.suggested()[0].option
        lines += ["", f"Before {first.label}: no recent " + ", ".join(t.label for t in baseline_gaps) + " on record."]
    return lines


def _option_line(ranked: RankedOption) -> str:
    option = ranked.option
    text = f"{ranked.rank}. **{option.label}**, {option.drug_class}: {option.dose} [{option.claim.status}]"
    if ranked.cautions:
        text += ". Caution: " + "; ".join(ranked.cautions)
    if ranked.orderable:
        text += ". Draft order below"
    return text + "."


def _finding_advice(finding: Finding, knowledge: Knowledge, switch_drafted: bool) -> list[str]:
    keys: list[str] = []
    if finding.kind in {FindingKind.INADEQUATE_RESPONSE, FindingKind.LOSS_OF_RESPONSE}:
        keys = ["confirm_before_switch", "continue_basic_therapy"]
    elif finding.leads_to_switch:
        keys = ["continue_basic_therapy"]
    elif finding.kind is FindingKind.TRIAL_TOO_SHORT:
        keys = ["adequate_trial", "confirm_before_switch"]
    lines = []
    for key in keys:
        advice = knowledge.advice[key]
        lines += [f"{advice.text} [{advice.claim.status}]", ""]
    return lines[:-1] if lines else []


def _rules_line(finding: Finding, plan: NextLinePlan | None, knowledge: Knowledge) -> str:
    response = knowledge.response
    parts = [f"adequate trial: {_cite(knowledge, response.adequate_trial_claim)}"]
    parts += [f"{r.criterion.explain}: {_cite(knowledge, r.criterion.claim)}" for r in finding.response.instruments]
    if finding.kind is FindingKind.LOSS_OF_RESPONSE:
        parts.append(f"loss of response: {_cite(knowledge, response.loss_of_response_claim)}")
    if finding.gaps:
        parts.append(f"{response.adherence_explain}: {_cite(knowledge, response.adherence_claim)}")
    if finding.ocular is not None and finding.kind is FindingKind.OCULAR_SURFACE_DISEASE:
        _, management = knowledge.drosd.management[finding.ocular.grade]
        parts.append(f"DROSD management: {_cite(knowledge, management.claim)}")
    if plan is not None and plan.offered:
        parts.append(f"ranking: {_cite(knowledge, knowledge.rank_group_claims[plan.offered[0].option.rank_group])}")
    return "Rules applied: " + "; ".join(parts) + "."


# -- suggestions -------------------------------------------------------------------------------


def _switch_suggestions(
    plan: NextLinePlan, card_key: str, finding: Finding | None, context: CardContext, replacing: tuple[DraftOrder, ...]
) -> tuple[Suggestion, ...]:
    suggestions = []
    for index, ranked in enumerate(plan.suggested()):
        template = ranked.option.order
        assert template is not None
        order = draft_medication_request(ranked.option, finding, context)
        actions = [Action("create", f"Draft order: {template.text}, {template.instruction}", resource=order)]
        label = f"Order {template.text}: {template.instruction}"
        if replacing:
            label = f"Replace {_refs(o.medication.label() if o.medication else o.source for o in replacing)} with {template.text}"
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


def draft_medication_request(option: TherapyOption, finding: Finding | None, context: CardContext) -> dict[str, Any]:
    template = option.order
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
        "dosageInstruction": [dosage],
    }
    if finding is not None:
        resource["reasonReference"] = [{"reference": c.source} for c in finding.diagnosis]
        resource["note"] = [{"text": f"Suggested by clinical decision support after {TOPICS[finding.kind.value].lower()}."}]
    return _with_context(resource, context)


def _with_context(resource: dict[str, Any], context: CardContext) -> dict[str, Any]:
    if context.encounter_id:
        resource["encounter"] = {"reference": f"Encounter/{context.encounter_id}"}
    if context.user_id and context.user_id.split("/", 1)[0] in {"Practitioner", "PractitionerRole"}:
        resource["requester"] = {"reference": context.user_id}
    return resource


# -- order-hook cards: safety and baseline monitoring of a drafted agent ------------------------


def render_safety(
    drafted: AgentOrder, flags: tuple[SafetyFlag, ...], plan: NextLinePlan | None, context: CardContext, knowledge: Knowledge
) -> Card:
    option = knowledge.option(drafted.agent)
    contraindications = [f for f in flags if f.contraindicated]
    indicator = "critical" if contraindications else "warning"
    first = (contraindications or list(flags))[0]
    verdict = "do not start" if contraindications else "caution"
    summary = f"{option.label}: {verdict}: {first.reason.split(':')[0]}"
    lines = [f"**{option.label}** is being ordered ({drafted.order.source}). Safety screen for this patient:", ""]
    for flag in flags:
        label = "Contraindication" if flag.contraindicated else "Caution"
        lines.append(f"- **{label}**: {flag.reason}. Source: {_cite(knowledge, flag.claim)}.")
    suggestions: tuple[Suggestion, ...] = ()
    card_key = f"{THERAPY_SAFETY}/{drafted.order.source}"
    if contraindications and plan is not None:
        alternatives = NextLinePlan(tuple(o for o in plan.offered if o.option.id != drafted.agent), plan.excluded)
        suggestions = _switch_suggestions(alternatives, card_key, None, context, (drafted.order,))
        remove = Suggestion(
            label=f"Remove the draft {option.label} order",
            key="remove",
            uuid=context.suggestion_uuid(card_key, "remove"),
            actions=(Action("delete", f"Remove the draft order {drafted.order.source}", resource_id=drafted.order.source),),
        )
        suggestions = (*suggestions, remove)
        if alternatives.offered:
            lines += ["", "Safer options for this patient, ranked: " + "; ".join(o.option.label for o in alternatives.offered[:5]) + "."]
    elif any(f.dose_rule for f in flags) and option.order is not None:
        template = option.order
        replace = Suggestion(
            label=f"Replace with {template.text}: {template.instruction}",
            key="dose",
            uuid=context.suggestion_uuid(card_key, "dose"),
            actions=(
                Action("delete", f"Remove the draft order {drafted.order.source}", resource_id=drafted.order.source),
                Action("create", f"Draft order: {template.text}, {template.instruction}",
                       resource=draft_medication_request(option, None, context)),
            ),
            is_recommended=True,
        )
        suggestions = (replace,)
    return context.card(card_key, THERAPY_SAFETY, summary, indicator, "\n".join(lines), "safety", knowledge, suggestions)


def render_monitoring(drafted: AgentOrder, missing: tuple[BaselineTest, ...], context: CardContext, knowledge: Knowledge) -> Card:
    option = knowledge.option(drafted.agent)
    monitoring = knowledge.monitoring[drafted.agent]
    names = ", ".join(t.label for t in missing)
    summary = f"{option.label}: {len(missing)} baseline test{'s' if len(missing) != 1 else ''} missing ({names})"
    lines = [
        f"**Baseline tests before {option.label}** ({drafted.order.source}): no result on record within each test's window.",
        "",
        *(f"- {t.label}: none in the last {t.lookback_days} days" if t.lookback_days < 36500 else f"- {t.label}: none on record" for t in missing),
        "",
        "Required before starting: "
        + ", ".join(t.label + (" (if of childbearing potential)" if t.only_if else "") for t in monitoring.tests)
        + (f" ({monitoring.note})" if monitoring.note else "") + f". Source: {_cite(knowledge, monitoring.claim)}.",
        "Windows are this service's choice (the sources give none).",
    ]
    card_key = f"{BASELINE_MONITORING}/{drafted.order.source}"
    suggestions = tuple(
        Suggestion(
            label=f"Order {test.order_text}",
            key=test.id,
            uuid=context.suggestion_uuid(card_key, test.id),
            actions=(Action("create", f"Draft order: {test.order_text}", resource=draft_service_request(test, option, context)),),
            is_recommended=True,
        )
        for test in missing
    )
    return context.card(card_key, BASELINE_MONITORING, summary, "info", "\n".join(lines), "monitoring", knowledge, suggestions, "any")


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
