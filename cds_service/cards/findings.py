"""Finding cards: what happened with dupilumab, the evidence with dates and resources, what to do next.

Every sentence naming the drug or a clinical number comes from the knowledge files (cards.toml and the
rules' own texts); this module arranges them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..assess.course import StopReasonKind
from ..assess.findings import Assessment, Finding, FindingKind
from ..assess.history import TreatmentHistory
from ..assess.response import InstrumentResponse, SeverityScore
from ..knowledge import BaselineTest, Knowledge, OverrideKind
from ..knowledge.model import ChangeScale, Claim, PreSwitchWhen, fill, number_text
from ..recommend.ranking import NextLinePlan, RankedOption
from ..record.model import ConditionEntry, DraftOrder
from .drafts import switch_suggestions
from .identity import CardContext
from .model import Card
from .prescribing import boxed_warning_lines

_OVERRIDE_KIND = {
    FindingKind.INADEQUATE_RESPONSE: OverrideKind.FAILURE,
    FindingKind.LOSS_OF_RESPONSE: OverrideKind.FAILURE,
    FindingKind.INTOLERANCE: OverrideKind.FAILURE,
    FindingKind.OCULAR_SURFACE_DISEASE: OverrideKind.OCULAR,
    FindingKind.TRIAL_TOO_SHORT: OverrideKind.TRIAL,
    FindingKind.HEAD_NECK_DERMATITIS: OverrideKind.HEAD_NECK,
}
_FAILURES = {FindingKind.INADEQUATE_RESPONSE, FindingKind.LOSS_OF_RESPONSE}
_SUMMARY = {  # cards.toml [summary] of the findings with one summary each
    FindingKind.INADEQUATE_RESPONSE: "inadequate-response",
    FindingKind.LOSS_OF_RESPONSE: "loss-of-response",
    FindingKind.INTOLERANCE: "intolerance",
}


# what the head-and-neck card says (advice.toml); the NYU tralokinumab report, with no counts, is left to the app
_HEAD_NECK_ADVICE = ("head_neck_definition", "head_neck_differential", "head_neck_options")


def weeks(count: int | float) -> str:
    count = int(count)
    return f"{count} week" if count == 1 else f"{count} weeks"


@dataclass(frozen=True)
class FindingText:
    """What a finding card says: the same for every call about the same data and day."""

    summary: str
    indicator: str
    detail: str


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
) -> Card:
    """One card per finding. `plan` is given for the card that carries the switch suggestions."""
    kind = finding.kind
    text = finding_text(finding, assessment, plan, knowledge, dupilumab_orders=dupilumab_orders,
                        switch_drafted=switch_drafted, baseline_gaps=baseline_gaps)
    suggestions = switch_suggestions(plan, kind.value, finding, context, knowledge, dupilumab_orders) if plan else ()
    link = knowledge.cards.text("course", "timeline_link")
    return context.card(kind.value, kind.value, text.summary, text.indicator, text.detail, _OVERRIDE_KIND[kind], knowledge,
                        suggestions, links=context.course_link(kind.value, link))


def finding_text(
    finding: Finding,
    assessment: Assessment,
    plan: NextLinePlan | None,
    knowledge: Knowledge,
    *,
    dupilumab_orders: tuple[DraftOrder, ...] = (),
    switch_drafted: bool = False,
    baseline_gaps: tuple[BaselineTest, ...] = (),
) -> FindingText:
    """The short detail a prescriber reads first: the finding, the facts that show it with dates, the top options
    with one reason each. The full ranked list, exclusions and sources are in the SMART app the card links to."""
    kind = finding.kind
    others = [f for f in assessment.findings if f is not finding]
    switching_anyway = any(f.leads_to_switch for f in others)
    summary = _summary(finding, plan, switch_drafted, switching_anyway, knowledge)
    texts = knowledge.cards
    lines = [_opening(finding, knowledge), ""]
    if kind is not FindingKind.OCULAR_SURFACE_DISEASE and kind is not FindingKind.HEAD_NECK_DERMATITIS:
        lines += _score_lines(finding.evidence or finding.response.instruments, finding, knowledge)
    lines += _course_lines(finding, knowledge)
    if finding.ocular is not None and kind is FindingKind.OCULAR_SURFACE_DISEASE:
        lines += _ocular_lines(finding, knowledge, switching_anyway)
    if kind is FindingKind.HEAD_NECK_DERMATITIS:
        lines += _head_neck_lines(finding, knowledge)
    lines += _confounder_lines(finding, knowledge)
    if others:
        lines.append(texts.text("brief", "also_found", findings="; ".join(texts.topics[f.kind.value].lower() for f in others)))
    if dupilumab_orders:
        lines.append(texts.text("course", "continues", orders=", ".join(_order_name(o) for o in dupilumab_orders)))
    if finding.partial_response:
        lines += ["", *_pre_switch_lines(finding, knowledge)]
    if plan is not None:
        lines += ["", *_plan_lines(plan, knowledge, baseline_gaps, assessment.history)]
    lines += _advice_lines(finding, knowledge)
    link = texts.text("course", "timeline_link")
    if plan is not None and plan.offered:
        count = len(plan.offered) + len(plan.excluded) + len(plan.not_assessed)
        lines += ["", texts.text("brief", "more", count=count, link=link)]
    else:
        lines += ["", texts.text("brief", "more_without_plan", link=link)]
    if finding.urgent:
        indicator = "critical"
    elif kind is FindingKind.OCULAR_SURFACE_DISEASE and _restart_prompt(finding, switching_anyway, switch_drafted):
        indicator = "info"  # a prompt to consider: no source advises restarting in so many words (drosd.toml [restart])
    else:
        indicator = "warning" if kind is not FindingKind.TRIAL_TOO_SHORT or switch_drafted else "info"
    return FindingText(summary, indicator, "\n".join(_tidy(lines)))


def _tidy(lines: list[str]) -> list[str]:
    """No blank line twice in a row, none at either end."""
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    while tidy and not tidy[-1]:
        tidy.pop()
    return tidy


def said(text: str, claim: Claim, knowledge: Knowledge) -> str:
    """A sentence from the knowledge base with the strength of its evidence in plain words."""
    return f"{text} ({knowledge.evidence(claim)})"


def _order_name(order: DraftOrder) -> str:
    return order.medication.label() if order.medication else "a dupilumab order"


def _summary(finding: Finding, plan: NextLinePlan | None, switch_drafted: bool, switching_anyway: bool, knowledge: Knowledge) -> str:
    values = {
        "weeks": weeks(finding.completed_weeks),
        # the summary names the option the first suggestion drafts, else the first one listed
        "next": f"; next line: {(plan.suggested() or plan.offered)[0].option.label}" if plan and plan.offered else "",
        "trial_weeks": knowledge.response.adequate_trial_weeks,
    }
    kind = finding.kind
    if kind is FindingKind.TRIAL_TOO_SHORT:
        name = "switch-too-early" if switch_drafted else "trial-too-short"
    elif finding.partial_response:
        name = "partial-response"
    elif kind is FindingKind.HEAD_NECK_DERMATITIS:
        name = "head-neck"
        values["week"] = min(_week_of(c, finding) for c in finding.head_neck)
    elif kind is not FindingKind.OCULAR_SURFACE_DISEASE:
        name = _SUMMARY[kind]
    else:
        ocular = finding.ocular
        assert ocular is not None  # an ocular finding carries its grading
        values["grade"] = ocular.grade.value
        values["red_flag_hours"] = knowledge.drosd.red_flag_hours
        if ocular.sight_threats:
            name = "ocular-sight-threat"
        elif ocular.red_flags:
            name = "ocular-red-flag"
        elif ocular.needs_switch:
            name = "ocular-switch"
        elif switching_anyway:
            name = "ocular-while-switching"
        elif switch_drafted:
            name = "ocular-manageable-order"
        elif _restart_prompt(finding, switching_anyway, switch_drafted):
            name = "ocular-restart"
            values["stopped"] = finding.course.end.isoformat() if finding.course.end else "an unrecorded date"
        else:
            name = "ocular-keep"
    return knowledge.cards.text("summary", name, **values)


def _restart_prompt(finding: Finding, switching_anyway: bool, switch_drafted: bool) -> bool:
    return bool(finding.ocular and finding.ocular.restart_candidate and not switching_anyway and not switch_drafted)


def _opening(finding: Finding, knowledge: Knowledge) -> str:
    values: dict[str, object] = {"weeks": weeks(finding.completed_weeks), "trial": knowledge.response.adequate_trial.explain}
    kind = finding.kind
    if finding.partial_response:
        return knowledge.cards.text("opening", "partial-response", partial="; ".join(_partial_text(r, knowledge) for r in finding.partial),
                                    **values)
    if kind is FindingKind.INADEQUATE_RESPONSE:
        return knowledge.cards.text("opening", "inadequate-response-scores" if finding.evidence else "inadequate-response-stopped", **values)
    if kind is FindingKind.LOSS_OF_RESPONSE:
        return knowledge.cards.text("opening", "loss-of-response", loss=knowledge.response.loss_of_response.text, **values)
    if kind is FindingKind.INTOLERANCE:
        reasons = "; ".join(r.text for r in finding.course.stopped_for(StopReasonKind.ADVERSE))
        return knowledge.cards.text("opening", "intolerance", reasons=reasons, **values)
    if kind is FindingKind.TRIAL_TOO_SHORT:
        return knowledge.cards.text("opening", "trial-too-short", **values)
    if kind is FindingKind.HEAD_NECK_DERMATITIS:
        return knowledge.cards.text("opening", "head-neck", **values)
    assert finding.ocular is not None  # an ocular finding carries its grading
    return knowledge.cards.text("opening", "ocular", grade=finding.ocular.grade.value)


def _partial_text(result: InstrumentResponse, knowledge: Knowledge) -> str:
    partial = knowledge.response.partial_response
    amount = number_text(partial.improvement[result.instrument])
    unit = knowledge.cards.text("change", result.criterion.change.value, change=amount).strip()
    return f"{result.instrument} " + fill(partial.explain, improvement=unit, criterion=result.criterion.explain)


def _number(value: float) -> str:
    return f"{value:g}"


def _baseline_cell(result: InstrumentResponse, knowledge: Knowledge) -> str:
    if result.baseline is not None:
        return f"{_number(result.baseline.value)} ({result.baseline.day.isoformat()})"
    old = result.old_baseline
    if old is not None:
        return knowledge.cards.text("change", "old_baseline", value=_number(old.value), day=old.day.isoformat(),
                                    within_days=knowledge.response.baseline_window.value)
    return "not recorded"


def _score_line(result: InstrumentResponse, finding: Finding, knowledge: Knowledge) -> str:
    latest = result.latest
    assert latest is not None  # instruments without on-drug scores are not assessed
    verdict = "met" if result.reached else "not met"
    if result.reached and result.latest not in result.meeting:
        verdict = f"met {result.meeting[0].day.isoformat()}, not met at the latest score"
    values = {"instrument": result.instrument, "latest": _score(latest, finding), "criterion": result.criterion.explain, "verdict": verdict}
    if result.baseline is None:
        return knowledge.cards.text("brief", "score_no_baseline", **values)
    # an ordinal scale's change is plain from the two grades; others say it in their unit (-19%, -4 points)
    change = "" if result.criterion.change is ChangeScale.GRADES else f", {_change(result, latest, knowledge)}"
    return knowledge.cards.text("brief", "score", baseline=_baseline_cell(result, knowledge), change=change, **values)


def _score_lines(results: Iterable[InstrumentResponse], finding: Finding, knowledge: Knowledge) -> list[str]:
    return [_score_line(r, finding, knowledge) for r in results if r.latest is not None]


def _score(score: SeverityScore, finding: Finding) -> str:
    week = (score.day - finding.course.start).days // 7
    return f"{_number(score.value)} ({score.day.isoformat()}, week {week})"


def _change(result: InstrumentResponse, score: SeverityScore, knowledge: Knowledge) -> str:
    """The change from baseline in the instrument's own unit (response.toml `change`)."""
    texts = knowledge.cards
    if result.baseline is None:
        return texts.text("change", "no_baseline")
    scale = result.criterion.change
    if scale is ChangeScale.GRADES:
        return texts.text("change", "grades", baseline=_number(result.baseline.value), latest=_number(score.value))
    percent = result.percent_change(score) if scale is ChangeScale.PERCENT else None
    if percent is not None:
        return texts.text("change", "percent", change=f"{percent:+.0f}")
    change = result.change_from_baseline(score)
    assert change is not None  # a baseline is recorded
    return texts.text("change", "points", change=f"{change:+g}")


def _course_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    course = finding.course
    if course.end is None:
        status = "ongoing"
    elif course.end_recorded:
        status = f"stopped {course.end.isoformat()}"
    else:
        status = f"stopped (end not recorded; last record {course.end.isoformat()})"
    lines = [knowledge.cards.text("brief", "course", start=course.start.isoformat(), status=status)]
    if course.stop_reasons:
        lines.append(knowledge.cards.text("brief", "stop_reasons", reasons="; ".join(f"\"{r.text}\"" for r in course.stop_reasons)))
    return lines


def _ocular_lines(finding: Finding, knowledge: Knowledge, switching_anyway: bool) -> list[str]:
    ocular = finding.ocular
    assert ocular is not None  # only ocular findings reach here
    drosd = knowledge.drosd
    lines = []
    for condition in ocular.conditions:
        began = condition.began
        week = (began - finding.course.start).days // 7 if began else None
        severity = f", recorded as {condition.severity.label().lower()}" if condition.severity else ""
        if not condition.active:  # an episode behind a recent stop may have settled since
            severity += f", ended {condition.abatement.isoformat()}" if condition.abatement else ", ended"
        lines.append(knowledge.cards.text(
            "course", "eye_condition", condition=condition.code.label(), began=began.isoformat() if began else "an unrecorded date",
            week=knowledge.cards.text("course", "eye_week", week=week) if week is not None else "", severity=severity,
        ))
    for threat in ocular.sight_threats:
        lines.append(f"- **Sight-threatening**: {threat.code.label()} from {threat.began.isoformat() if threat.began else 'an unrecorded date'}.")
    for flag in ocular.red_flags:
        lines.append(f"- **Red flag**: {flag.code.label()}. {said(drosd.red_flags.text, drosd.red_flags.claim, knowledge)}")
    if ocular.eye_treatments:
        treatments = (f"{u.medication.label()} from {u.start.isoformat() if u.start else 'an unrecorded date'}"
                      for u in ocular.eye_treatments)
        lines.append("- Eye treatment: " + "; ".join(treatments) + ".")
    if ocular.grade_reasons:  # what makes the grade: steroid weeks, a severe episode's length, corneal involvement
        lines.append(knowledge.cards.text("course", "graded", grade=ocular.grade.value, reasons="; ".join(ocular.grade_reasons)))
    management = drosd.management[ocular.grade]
    if ocular.red_flags and management.keep_dupilumab:  # urgent: never "keep dupilumab" or "refer in 2-4 weeks"
        hold = drosd.red_flag_management
        lines += ["", f"**Management**: {said(hold.text, hold.claim, knowledge)}"]
        return lines
    if switching_anyway and management.keep_dupilumab:
        meanwhile = drosd.while_switching
        text = fill(meanwhile.text, treatment=management.treatment, referral=drosd.referral.text)
        lines += ["", f"**Management**: {said(text, management.claim, knowledge)}"]
    elif ocular.restart_candidate:
        restart = drosd.restart
        text = fill(restart.text, grade=ocular.grade.value, treatment=management.treatment, referral=drosd.referral.text)
        window = said(drosd.restart_window.explain, drosd.restart_window.claim, knowledge)
        lines += ["", f"**Management**: {said(text, restart.claim, knowledge)}; {window}."]
    else:
        lines += ["", f"**Management**: {said(management.text, management.claim, knowledge)}"]
    if management.keep_dupilumab and ocular.stopped_for_eyes and not switching_anyway:
        lines.append(knowledge.cards.text("course", "stopped_for_eyes", pitfall=said(drosd.pitfall.text, drosd.pitfall.claim, knowledge)))
    return lines


def _week_of(condition: ConditionEntry, finding: Finding) -> int:
    assert condition.began is not None  # head-and-neck findings hold dated conditions only
    return (condition.began - finding.course.start).days // 7


def _head_neck_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    lines = []
    for condition in finding.head_neck:
        assert condition.began is not None  # as above
        site = f", body site: {', '.join(condition.body_site)}" if condition.body_site else ""
        lines.append(knowledge.cards.text("course", "head_neck_condition", condition=condition.code.label(), site=site,
                                          began=condition.began.isoformat(), week=_week_of(condition, finding)))
    lines.append("")
    for key in _HEAD_NECK_ADVICE:
        advice = knowledge.advice[key]
        lines += [said(advice.text, advice.claim, knowledge), ""]
    return lines[:-1]


def _confounder_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    if finding.kind not in {*_FAILURES, FindingKind.TRIAL_TOO_SHORT}:
        return []
    items = [f"{c.what}{' (' + c.day.isoformat() + ')' if c.day else ''}" for c in finding.confounders]
    items += [f"a dispensing gap of {gap.days} days ({gap.supply_end.isoformat()} to {gap.next_dispense.isoformat()})"
              for gap in finding.gaps]
    if not items:
        return []
    return [knowledge.cards.text("brief", "rule_out", items="; ".join(items))]


def _pre_switch_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    """The steps the sources give before switching away from a partial response, in the knowledge base's order."""
    lines = [knowledge.cards.text("course", "pre_switch"), ""]
    labelled = knowledge.response.dupilumab_interval
    number = 0
    for step in knowledge.response.partial_response.steps:
        text = step.text
        if step.when is PreSwitchWhen.INTERVAL_STRETCHED:
            stretched = finding.stretched
            if stretched is None:
                continue
            interval = weeks(stretched.interval_days / 7) if stretched.interval_days % 7 == 0 else f"{stretched.interval_days:g} days"
            text = fill(text, interval=interval, labelled=labelled.explain)
        number += 1
        lines.append(f"{number}. {said(text, step.claim, knowledge)}")
    return [*lines, "", knowledge.cards.text("course", "then_switch")]


TOP_OPTIONS = 3  # options a card details; the rest are listed in the app


def _plan_lines(plan: NextLinePlan, knowledge: Knowledge, baseline_gaps: tuple[BaselineTest, ...], history: TreatmentHistory) -> list[str]:
    texts = knowledge.cards
    lines = []
    if history.uses:
        lines += [texts.text("brief", "agents_on_record", agents="; ".join(u.describe() for u in history.uses)), ""]
    if plan.offered:
        lines.append(texts.text("brief", "next_heading"))
        shown: set[str] = set()
        for ranked in plan.offered[:TOP_OPTIONS]:
            lines.append(_option_line(ranked, shown, knowledge))
            shown.update(ranked.cautions)
    boxed = boxed_warning_lines((o.option for o in plan.offered), knowledge, plan.region)
    if boxed:
        lines += ["", *boxed]
    lower = [o for o in plan.offered[TOP_OPTIONS:] if o.cautions and o.score > o.option.group.rank]  # moved down by this patient
    if lower:
        lines += ["", texts.text("brief", "lower", agents=_grouped((o.option.label, "; ".join(o.cautions)) for o in lower))]
    if plan.excluded:
        lines += ["", texts.text("brief", "not_offered", agents=_grouped((e.option.label, e.reason) for e in plan.excluded))]
    if plan.not_assessed:
        region = knowledge.regions[plan.region]
        agents = ", ".join(o.label for o in plan.not_assessed)
        lines += ["", texts.text("brief", "not_assessed", region=region.name, regulator=region.regulator, agents=agents)]
    if baseline_gaps and plan.suggested():
        first = plan.suggested()[0].option
        lines += ["", texts.text("brief", "baseline_gaps", agent=first.label, count=len(baseline_gaps),
                                 tests=", ".join(t.short for t in baseline_gaps))]
    return lines


def _grouped(items: Iterable[tuple[str, str]]) -> str:
    """Options that share a reason, named together before it: "A, B (pregnancy ...); C (not approved)"."""
    by_reason: dict[str, list[str]] = {}
    for label, reason in items:
        by_reason.setdefault(reason, []).append(label)
    return "; ".join(f"{', '.join(labels)} ({reason})" for reason, labels in by_reason.items())


def _option_line(ranked: RankedOption, shown: set[str], knowledge: Knowledge) -> str:
    """One option and its one reason (the evidence after dupilumab); its cautions, each said once per card. The dose
    is on the option's suggestion, and in the app."""
    option = ranked.option
    evidence = ""
    if option.evidence is not None and option.evidence_brief:
        evidence = f": {said(option.evidence_brief, option.evidence.claim, knowledge)}"
    cautions = "; ".join("as above" if c in shown else c for c in ranked.cautions)
    return knowledge.cards.text("brief", "option", rank=ranked.rank, label=option.label, drug_class=option.drug_class,
                                evidence=evidence, cautions=f". Caution: {cautions}" if cautions else "") + "."


def _advice_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    """General advice stays in the app, except where it is the card's action: a trial too short."""
    if finding.kind is not FindingKind.TRIAL_TOO_SHORT:
        return []
    lines = [""]
    for key in ("adequate_trial", "confirm_before_switch"):
        advice = knowledge.advice[key]
        lines.append(said(advice.text, advice.claim, knowledge))
    return lines
