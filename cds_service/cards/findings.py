"""Finding cards: what happened with dupilumab, the evidence with dates and resources, what to do next.

Every sentence naming the drug or a clinical number comes from the knowledge files (cards.toml and the
rules' own texts); this module arranges them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..assess.course import StopReasonKind
from ..assess.findings import Assessment, Finding, FindingKind
from ..assess.history import TreatmentHistory
from ..assess.response import InstrumentResponse, ResponseAssessment, SeverityScore
from ..knowledge import BaselineTest, Knowledge, OverrideKind
from ..knowledge.model import ChangeScale, PreSwitchWhen, fill, number_text
from ..recommend.ranking import NextLinePlan, RankedOption
from ..record.model import ConditionEntry, DraftOrder
from .drafts import refs, switch_suggestions
from .identity import CardContext
from .model import Card
from .prescribing import boxed_warning_lines, evidence_lines, ranking_line

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


_HEAD_NECK_ADVICE = ("head_neck_definition", "head_neck_differential", "head_neck_options", "head_neck_tralokinumab")


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
    text = finding_text(finding, assessment, plan, context.today, knowledge, dupilumab_orders=dupilumab_orders,
                        switch_drafted=switch_drafted, baseline_gaps=baseline_gaps)
    suggestions = switch_suggestions(plan, kind.value, finding, context, knowledge, dupilumab_orders) if plan else ()
    link = knowledge.cards.text("course", "timeline_link")
    return context.card(kind.value, kind.value, text.summary, text.indicator, text.detail, _OVERRIDE_KIND[kind], knowledge,
                        suggestions, links=context.course_link(kind.value, link))


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
    summary = _summary(finding, plan, switch_drafted, switching_anyway, knowledge)
    lines = [_opening(finding, knowledge), ""]
    if finding.evidence or finding.response.instruments:
        lines += _score_table(finding.response, finding, knowledge)
        lines.append("")
    lines += _course_lines(finding, today, knowledge)
    if finding.ocular is not None and kind is FindingKind.OCULAR_SURFACE_DISEASE:
        lines += _ocular_lines(finding, knowledge, switching_anyway)
    if kind is FindingKind.HEAD_NECK_DERMATITIS:
        lines += _head_neck_lines(finding, knowledge)
    lines += _confounder_lines(finding)
    if others:
        lines.append("- Also found: " + "; ".join(knowledge.cards.topics[f.kind.value].lower() for f in others) + " (separate cards).")
    if dupilumab_orders:
        lines.append(knowledge.cards.text("course", "continues", orders=refs(o.source for o in dupilumab_orders)))
    if finding.partial_response:
        lines += ["", *_pre_switch_lines(finding, knowledge)]
    if plan is not None:
        lines += ["", *_plan_lines(plan, knowledge, finding, baseline_gaps, assessment.history)]
    lines += ["", *_advice_lines(finding, knowledge)]
    lines += ["", _rules_line(finding, plan, knowledge)]
    if finding.urgent:
        indicator = "critical"
    elif kind is FindingKind.OCULAR_SURFACE_DISEASE and _restart_prompt(finding, switching_anyway, switch_drafted):
        indicator = "info"  # a prompt to consider: no source advises restarting in so many words (drosd.toml [restart])
    else:
        indicator = "warning" if kind is not FindingKind.TRIAL_TOO_SHORT or switch_drafted else "info"
    return FindingText(summary, indicator, "\n".join(lines))


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
        reasons = "; ".join(f"{r.text} ({r.source})" for r in finding.course.stopped_for(StopReasonKind.ADVERSE))
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


def _score_row(result: InstrumentResponse, finding: Finding, knowledge: Knowledge) -> str:
    latest = result.latest
    assert latest is not None  # instruments without on-drug scores are not assessed
    baseline = _baseline_cell(result, knowledge)
    best = min(result.on_drug, key=lambda s: (s.value, s.day))
    verdict = "met" if result.reached else "not met"
    if result.reached and result.latest not in result.meeting:
        verdict = f"met {result.meeting[0].day.isoformat()}, not met at the latest score"
    return (
        f"| {result.instrument} | {baseline} | {_score(best, finding)} | {_score(latest, finding)} | "
        f"{_change(result, latest, knowledge)} | {result.criterion.explain}: **{verdict}** |"
    )


def _score_table(response: ResponseAssessment, finding: Finding, knowledge: Knowledge) -> list[str]:
    rows = [
        "| Score | Baseline | Best on drug | Latest on drug | Change | Response criterion |",
        "|---|---|---|---|---|---|",
    ]
    return rows + [_score_row(r, finding, knowledge) for r in response.instruments]


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


def _course_lines(finding: Finding, today: date, knowledge: Knowledge) -> list[str]:
    course = finding.course
    if course.end is None:
        status = "ongoing"
    elif course.end_recorded:
        status = f"stopped {course.end.isoformat()}"
    else:
        status = f"stopped (end not recorded; last record {course.end.isoformat()})"
    lines = [knowledge.cards.text("course", "course", start=course.start.isoformat(), status=status, sources=refs(course.sources))]
    if course.stop_reasons:
        lines.append("- Reason recorded for stopping: " + "; ".join(f"\"{r.text}\" ({r.source})" for r in course.stop_reasons) + ".")
    lines.append("- Atopic dermatitis: " + ", ".join(f"{c.source} ({c.clinical_status or 'status not recorded'})" for c in finding.diagnosis) + ".")
    scores = _evidence_scores(finding)
    if scores:
        lines.append("- Scores used: " + refs(s.source for s in scores) + ".")
        latest = max(s.day for s in scores)
        lines.append(f"- Latest score: {latest.isoformat()}, {weeks((today - latest).days // 7)} before today.")
    return lines


def _evidence_scores(finding: Finding) -> list[SeverityScore]:
    results = finding.evidence or (finding.response.instruments if finding.kind is not FindingKind.OCULAR_SURFACE_DISEASE else ())
    return sorted((s for r in results for s in (r.baseline, *r.on_drug) if s is not None), key=lambda s: (s.day, s.source))


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
            week=knowledge.cards.text("course", "eye_week", week=week) if week is not None else "", severity=severity, source=condition.source,
        ))
    for threat in ocular.sight_threats:
        lines.append(f"- **Sight-threatening**: {threat.code.label()} from {threat.began.isoformat() if threat.began else 'an unrecorded date'} "
                     f"({threat.source}).")
    for flag in ocular.red_flags:
        lines.append(f"- **Red flag**: {flag.code.label()} ({flag.source}). {drosd.red_flags.text} [{drosd.red_flags.claim.status}]")
    if ocular.eye_treatments:
        treatments = (f"{u.medication.label()} from {u.start.isoformat() if u.start else 'an unrecorded date'} ({u.source})"
                      for u in ocular.eye_treatments)
        lines.append("- Eye treatment: " + "; ".join(treatments) + ".")
    if ocular.steroid_weeks:
        lines.append(knowledge.cards.text("course", "steroid_weeks", weeks=f"{ocular.steroid_weeks:.0f}", steroid_weeks=drosd.steroid_drops.value))
    if ocular.grade_reasons:
        lines.append("- Graded " + ocular.grade.value + " because: " + "; ".join(ocular.grade_reasons) + ".")
    management = drosd.management[ocular.grade]
    if ocular.red_flags and management.keep_dupilumab:  # urgent: never "keep dupilumab" or "refer in 2-4 weeks"
        hold = drosd.red_flag_management
        lines += ["", f"**Management**: {hold.text} [{hold.claim.status}]"]
        return lines
    if switching_anyway and management.keep_dupilumab:
        meanwhile = drosd.while_switching
        text = fill(meanwhile.text, treatment=management.treatment, referral=drosd.referral.text)
        lines += ["", f"**Management**: {text} [{management.claim.status}]"]
    elif ocular.restart_candidate:
        restart = drosd.restart
        text = fill(restart.text, grade=ocular.grade.value, treatment=management.treatment, referral=drosd.referral.text)
        lines += ["", f"**Management**: {text} [{restart.claim.status}; {drosd.restart_window.explain}, {drosd.restart_window.claim.status}]"]
    else:
        lines += ["", f"**Management**: {management.text} [{management.claim.status}]"]
    if management.keep_dupilumab and ocular.stopped_for_eyes and not switching_anyway:
        lines.append(knowledge.cards.text("course", "stopped_for_eyes", pitfall=f"{drosd.pitfall.text} [{drosd.pitfall.claim.status}]"))
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
                                          began=condition.began.isoformat(), week=_week_of(condition, finding), source=condition.source))
    lines.append("")
    for key in _HEAD_NECK_ADVICE:
        advice = knowledge.advice[key]
        lines += [f"{advice.text} [{advice.claim.status}]", ""]
    return lines[:-1]


def _confounder_lines(finding: Finding) -> list[str]:
    if finding.kind not in {*_FAILURES, FindingKind.TRIAL_TOO_SHORT}:
        return []
    items = [f"{c.what} ({c.source}{', ' + c.day.isoformat() if c.day else ''})" for c in finding.confounders]
    items += [f"a dispensing gap of {gap.days} days ({gap.supply_end.isoformat()} to {gap.next_dispense.isoformat()}, {gap.after} to {gap.before})"
              for gap in finding.gaps]
    if not items:
        return []
    return ["- **Rule out before switching**: " + "; ".join(items) + "."]


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
            text = fill(text, interval=interval, sources=refs(stretched.sources), labelled=labelled.explain)
        number += 1
        lines.append(f"{number}. {text} [{step.claim.status}]")
    return [*lines, "", knowledge.cards.text("course", "then_switch")]


def _plan_lines(plan: NextLinePlan, knowledge: Knowledge, finding: Finding, baseline_gaps: tuple[BaselineTest, ...],
                history: TreatmentHistory) -> list[str]:
    lines = ["**Next line, ranked for this patient**", ""]
    if finding.kind in _FAILURES:
        advice = knowledge.advice["combination_before_switch"]
        lines = [f"{advice.text} [{advice.claim.status}]", "", *lines]
    if plan.offered:
        lines += [ranking_line(knowledge), ""]
    if history.uses:
        lines += ["Next-line agents on record: " + "; ".join(u.describe() for u in history.uses) + ".", ""]
    for ranked in plan.offered:
        lines.append(_option_line(ranked))
        lines += evidence_lines(ranked.option, knowledge)
    boxed = boxed_warning_lines((o.option for o in plan.offered), knowledge, plan.region)
    if boxed:
        lines += ["", *boxed]
    if plan.excluded:
        lines += ["", "Not offered: " + "; ".join(f"{e.option.label} ({e.reason})" for e in plan.excluded) + "."]
    if plan.not_assessed:
        region = knowledge.regions[plan.region]
        lines += ["", knowledge.cards.text("plan", "not_assessed", region=region.name, regulator=region.regulator,
                                           agents=", ".join(o.label for o in plan.not_assessed))]
    if baseline_gaps and plan.suggested():
        first = plan.suggested()[0].option
        lines += ["", f"Before {first.label}: no recent " + ", ".join(t.label for t in baseline_gaps) + " on record."]
    return lines


def _option_line(ranked: RankedOption) -> str:
    option = ranked.option
    dose = ranked.approval.dose
    text = f"{ranked.rank}. **{option.label}**, {option.drug_class}" + (f": {dose.text} [{dose.claim.status}]" if dose else "")
    if ranked.cautions:
        text += ". Caution: " + "; ".join(ranked.cautions)
    if ranked.orderable:
        text += ". Draft order below"
    return text + "."


def _advice_lines(finding: Finding, knowledge: Knowledge) -> list[str]:
    keys: list[str] = []
    if finding.partial_response:  # the steps before a switch already name the confounders to rule out
        keys = ["continue_basic_therapy"]
    elif finding.kind in _FAILURES:
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
    parts = [f"adequate trial: {knowledge.cite(response.adequate_trial.claim)}"]
    parts += [f"{r.criterion.explain}: {knowledge.cite(r.criterion.claim)}" for r in finding.response.instruments]
    if finding.kind is FindingKind.LOSS_OF_RESPONSE:
        parts.append(f"loss of response: {knowledge.cite(response.loss_of_response.claim)}")
    if any(r.old_baseline is not None for r in finding.response.instruments):
        parts.append(f"{response.baseline_window.explain}: {knowledge.cite(response.baseline_window.claim)}")
    if finding.partial_response:
        parts.append(f"partial response: {knowledge.cite(response.partial_response.claim)}")
    if finding.stretched is not None and finding.partial_response:
        parts.append(f"{response.dupilumab_interval.explain}: {knowledge.cite(response.dupilumab_interval.claim)}")
    if finding.gaps:
        parts.append(f"{response.adherence_gap.explain}: {knowledge.cite(response.adherence_gap.claim)}")
    if finding.ocular is not None and finding.kind is FindingKind.OCULAR_SURFACE_DISEASE:
        management = knowledge.drosd.management[finding.ocular.grade]
        claim = knowledge.drosd.red_flag_management.claim if finding.ocular.red_flags and management.keep_dupilumab else management.claim
        parts.append(f"DROSD management: {knowledge.cite(claim)}")
        if finding.ocular.restart_candidate:
            window = knowledge.drosd.restart_window
            parts.append(f"restart after a stop for the eyes: {knowledge.cite(knowledge.drosd.restart.claim)}; "
                         f"{window.explain}: {knowledge.cite(window.claim)}")
    if finding.kind is FindingKind.HEAD_NECK_DERMATITIS:
        parts += [f"head-and-neck dermatitis: {knowledge.cite(knowledge.advice[key].claim)}" for key in _HEAD_NECK_ADVICE]
    if plan is not None and plan.offered:
        parts.append(f"ranking: {knowledge.cite(plan.offered[0].option.group.claim)}")
    return "Rules applied: " + "; ".join(parts) + "."
