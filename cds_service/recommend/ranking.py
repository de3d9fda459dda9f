"""Rank the next-line options of the knowledge base for this patient (`rank_next_line_options`).

Score = the option's rank group (knowledge/therapies.toml [rank_groups]: JAK inhibitors first; S)
plus the rank penalties of its safety cautions (design); ties keep the knowledge file's order.
Everything is judged for the configured region: its approvals, limits, doses, draft orders and safety rules.
An option that is contraindicated, or not approved for the patient's age, weight or region, is not
offered. One whose eligibility cannot be checked (age or weight not recorded) is offered with a caution
and without a draft order. One with no approval entry for the region is "not assessed": listed apart,
never ranked or drafted. Every reason is kept for the card.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..assess.findings import Assessment
from ..assess.history import TreatmentHistory
from ..assess.patient import PatientFactors, condition_text
from ..knowledge import Approval, ApprovalDecision, Effect, Knowledge, OrderTemplate, TherapyOption
from .predicates import Situation
from .safety import SafetyFlag, rank_penalty, screen_agent


@dataclass(frozen=True)
class RankedOption:
    option: TherapyOption
    rank: int
    score: float
    cautions: tuple[str, ...]
    flags: tuple[SafetyFlag, ...]
    orderable: bool  # eligibility checked and a draft order can be written
    approval: Approval  # in the configured region: its dose and draft order
    order: OrderTemplate | None = None  # the region's draft order for this patient's age and weight


@dataclass(frozen=True)
class ExcludedOption:
    option: TherapyOption
    reason: str
    approval: Approval | None = None  # set when the region's approval rules it out (age, weight, not approved)


@dataclass(frozen=True)
class NextLinePlan:
    offered: tuple[RankedOption, ...]
    excluded: tuple[ExcludedOption, ...]
    region: str
    not_assessed: tuple[TherapyOption, ...] = ()  # no approval entry for the region: listed, never ranked or drafted

    def suggested(self) -> tuple[RankedOption, ...]:
        """The one-click choices: every offered option with a draft order, in rank order."""
        return tuple(o for o in self.offered if o.orderable)


def situation(assessment: Assessment, patient: PatientFactors, knowledge: Knowledge, region: str,
              ordered_dose_mg: float | None = None) -> Situation:
    """What the safety screen judges for this patient in the region (and a drafted dose, when screening an order)."""
    return Situation(
        patient=patient,
        region=region,
        lab_lookback_days=knowledge.lab_lookback_days,
        drosd=assessment.has_drosd,
        prior_eye_disease=tuple(condition_text(c) for c in assessment.prior_eye_disease),
        ordered_dose_mg=ordered_dose_mg,
    )


def eligibility(approval: Approval, patient: PatientFactors, region_name: str) -> tuple[str | None, list[str], bool]:
    """(reason it is not offered, cautions, eligibility checked) for the option's approval in the region named as a
    sentence says it ("the European Union"): the region's age and weight limits apply whatever its decision."""
    cautions: list[str] = []
    if approval.decision is ApprovalDecision.NOT_APPROVED:
        return approval.note or f"not approved for atopic dermatitis in {region_name}", [], False
    if approval.decision is ApprovalDecision.OFF_LABEL:
        cautions.append(f"off-label for atopic dermatitis in {region_name}")
    checked = True
    if approval.min_age_years is not None:
        if patient.age_years is None:
            cautions.append(f"approved from {approval.min_age_years:g} years; age not recorded")
            checked = False
        elif patient.age_years < approval.min_age_years:
            return f"approved from {approval.min_age_years:g} years; patient is {patient.age_years}", [], False
    min_weight = approval.weight_limit_for(patient.age_years)
    if min_weight is not None:
        ages = f" under {approval.min_weight_below_age_years:g} years" if approval.min_weight_below_age_years else ""
        if patient.weight_kg is None:
            cautions.append(f"approved{ages} from {min_weight:g} kg; no recent weight recorded")
            checked = False
        elif patient.weight_kg < min_weight:
            return f"approved{ages} from {min_weight:g} kg; patient weighs {patient.weight_kg:.0f} kg", [], False
    return None, cautions, checked


def _history_excludes(option: TherapyOption, history: TreatmentHistory, knowledge: Knowledge) -> str | None:
    """Why the patient's treatment history rules the option out: taken now, stopped because it failed, or
    another agent it is not combined with taken now."""
    use = history.of(option.id)
    if use is not None and use.taken_now:
        return f"taken now: {use.describe()}"
    if use is not None and use.failed:
        return f"tried before: {use.describe()}"
    if option.group.exclusive:
        for other in history.taken_now:
            if knowledge.option(other.agent).group.id == option.group.id:
                return f"another agent of its group ({option.group.label}) is taken now: {other.describe()}"
    return None


def _history_demotes(option: TherapyOption, history: TreatmentHistory, knowledge: Knowledge) -> tuple[float, list[str]]:
    """Another agent of the option's group that failed moves it down; an agent taken now that it is not combined
    with is a caution (stop it before starting). The reasons go on the card."""
    penalty, reasons = 0.0, []
    for use in history.uses:
        group = knowledge.option(use.agent).group
        if use.agent != option.id and use.failed and group.id == option.group.id and not penalty:
            penalty = knowledge.failed_group_penalty
            reasons.append(f"same group ({option.group.label}) as an agent that failed: {use.describe()}")
        if use.taken_now and group.id in option.group.not_combined_with:
            reasons.append(f"{knowledge.combination.text}: {use.describe()}")
    return penalty, reasons


def rank_next_line_options(assessment: Assessment, knowledge: Knowledge, region: str) -> NextLinePlan:
    patient = assessment.patient
    assert patient is not None, "ranking needs the patient factors of an assessment with findings"
    screened = situation(assessment, patient, knowledge, region)
    offered: list[tuple[float, int, TherapyOption, Approval, list[str], tuple[SafetyFlag, ...], bool]] = []
    excluded: list[ExcludedOption] = []
    not_assessed: list[TherapyOption] = []
    for option in knowledge.therapies:
        approval = option.approvals.get(region)
        if approval is None:
            not_assessed.append(option)
            continue
        not_offered, cautions, checked = eligibility(approval, patient, knowledge.regions[region].name)
        if not_offered:
            excluded.append(ExcludedOption(option, not_offered, approval))
            continue
        not_offered = _history_excludes(option, assessment.history, knowledge)
        if not_offered:
            excluded.append(ExcludedOption(option, not_offered))
            continue
        penalty, reasons = _history_demotes(option, assessment.history, knowledge)
        cautions += reasons
        flags = screen_agent(option.id, screened, knowledge)
        contraindications = [f for f in flags if f.contraindicated]
        if contraindications:
            excluded.append(ExcludedOption(option, "; ".join(f.text for f in contraindications)))
            continue
        score = option.group_rank + penalty + rank_penalty(flags)
        orderable = checked and approval.order is not None and all(f.allows_draft for f in flags)
        offered.append((score, option.position, option, approval, cautions + [f.text for f in flags], flags, orderable))
    offered.sort(key=lambda item: (item[0], item[1]))
    ranked = []
    for rank, (score, _, option, approval, cautions, flags, orderable) in enumerate(offered, start=1):
        order = approval.order.for_patient(patient.age_years, patient.weight_kg) if approval.order else None
        ranked.append(RankedOption(option, rank, score, tuple(cautions), flags, orderable and order is not None, approval, order))
    return NextLinePlan(offered=tuple(ranked), excluded=tuple(excluded), region=region, not_assessed=tuple(not_assessed))


def approval_flag(agent: str, plan: NextLinePlan, knowledge: Knowledge) -> SafetyFlag | None:
    """A drafted agent that the region's approval rules out for this patient (age, weight, not approved), or that
    the region's knowledge does not cover: a caution on the order card, with the reason and its source. Off-label
    use can be the prescriber's informed choice, so it warns and does not forbid."""
    region = knowledge.regions[plan.region]
    for excluded in plan.excluded:
        if excluded.option.id == agent and excluded.approval is not None:
            return SafetyFlag("approval", Effect.CAUTION, 0, f"in {region.name}: {excluded.reason}", None, "",
                              excluded.approval.claim, dose_rule=False)
    for option in plan.not_assessed:
        if option.id == agent:
            return SafetyFlag("approval", Effect.CAUTION, 0, knowledge.cards.text("plan", "not_assessed", region=region.name,
                              regulator=region.regulator, agents=option.label).rstrip("."), None, "", region.claim, dose_rule=False)
    return None
