"""The typed view of the knowledge files: what the rest of the service reads once they are loaded and checked."""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .concepts import ConceptMatcher


class EvidenceStatus(enum.StrEnum):
    """How a fact was checked (common.schema.json explains each)."""

    V = "V"
    V2 = "V2"
    S = "S"
    C = "C"
    U = "U"
    DESIGN = "design"


class Effect(enum.StrEnum):
    CONTRAINDICATED = "contraindicated"
    CAUTION = "caution"


class ApprovalDecision(enum.StrEnum):
    APPROVED = "approved"
    NOT_APPROVED = "not-approved"
    OFF_LABEL = "off-label"
    NOT_APPLICABLE = "not-applicable"


class CriterionRule(enum.StrEnum):
    RELATIVE_REDUCTION = "relative_reduction"
    ABSOLUTE_REDUCTION = "absolute_reduction"
    AT_MOST = "at_most"


class ChangeScale(enum.StrEnum):
    """How an instrument's change from baseline is written (response.toml `change`)."""

    PERCENT = "percent"  # continuous scores judged by a relative reduction
    POINTS = "points"  # numeric rating scales judged by points
    GRADES = "grades"  # ordinal scales: a grade is not a quantity, so no percent


class PreSwitchWhen(enum.StrEnum):
    """When a pre-switch step of a partial response applies (response.toml [[partial_response.step]] `when`)."""

    ALWAYS = "always"
    INTERVAL_STRETCHED = "interval_stretched"


class DrosdGrade(enum.StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE_PERSISTENT = "severe-persistent"
    SIGHT_THREATENING = "sight-threatening"


class WarningKind(enum.StrEnum):
    BOXED = "boxed"  # a US boxed warning
    SPECIAL = "special"  # an EU SmPC special warning (section 4.4) that a card states as the boxed one is stated
    OCULAR = "ocular"


class OverrideKind(enum.StrEnum):
    """The kinds of card that offer their own override reasons (advice.toml)."""

    FAILURE = "failure"
    OCULAR = "ocular"
    TRIAL = "trial"
    HEAD_NECK = "head-neck"
    SAFETY = "safety"
    MONITORING = "monitoring"


def fill(template: str, **values: Any) -> str:
    """A knowledge text with its placeholders filled. The loader has checked every placeholder it uses."""
    return template.format(**values)


def placeholders(template: str) -> set[str]:
    """The {names} a knowledge text uses (ValueError for a malformed brace)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def number_text(value: float) -> str:
    """A clinical number as cards write it: 6.3, 30, 1,000, 150,000."""
    return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    short: str
    kind: str
    url: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Claim:
    """Where a rule or threshold comes from: its evidence status and sources."""

    status: EvidenceStatus
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Explained:
    """A number with its explanation (filled from the number) and where it comes from."""

    value: int
    explain: str
    claim: Claim


@dataclass(frozen=True)
class Advice:
    text: str
    claim: Claim


@dataclass(frozen=True)
class ResponseCriterion:
    """One instrument's response criterion; the one place its semantics are written."""

    instrument: str
    rule: CriterionRule
    threshold: float
    explain: str
    claim: Claim
    change: ChangeScale = ChangeScale.PERCENT

    def target(self, baseline: float | None) -> float | None:
        """The highest score that meets the criterion, given the baseline; None when it cannot be judged
        (a reduction without a baseline, or a relative reduction from a baseline of 0)."""
        if self.rule is CriterionRule.AT_MOST:
            return self.threshold
        if baseline is None:
            return None
        if self.rule is CriterionRule.RELATIVE_REDUCTION:
            return baseline * (1 - self.threshold / 100) if baseline > 0 else None
        return baseline - self.threshold

    def meets(self, score: float, baseline: float | None) -> bool | None:
        target = self.target(baseline)
        return None if target is None else score <= target


@dataclass(frozen=True)
class PreSwitchStep:
    """One step the sources give before switching away from a partial response."""

    id: str
    when: PreSwitchWhen
    text: str  # filled, except {interval} and {sources} of a stretched-interval step
    claim: Claim


@dataclass(frozen=True)
class PartialResponse:
    """Improved from baseline by at least `improvement` (the criterion's own unit), yet short of the criterion."""

    improvement: Mapping[str, float]
    explain: str
    claim: Claim
    steps: tuple[PreSwitchStep, ...]


@dataclass(frozen=True)
class SeverityBands:
    """The highest score of each instrument that still reads as mild disease (or better)."""

    mild_at_most: Mapping[str, float]
    explain: str  # filled per instrument with {instrument} and {value}
    claim: Claim
    rule: Advice  # what the service does with it


@dataclass(frozen=True)
class DosingInterval:
    """The labelled maintenance interval of dupilumab for adults."""

    weeks: int
    adult_age_years: int
    explain: str
    claim: Claim


@dataclass(frozen=True)
class ResponseKnowledge:
    adequate_trial: Explained  # weeks
    adequate_trial_note: str | None
    criteria: Mapping[str, ResponseCriterion]
    failure_instruments: tuple[str, ...]
    failure_claim: Claim
    loss_of_response: Advice
    adherence_gap: Explained  # days
    baseline_window: Explained  # days before the start within which a score can be the baseline
    change_claim: Claim  # how each instrument's change is written
    partial_response: PartialResponse
    severity: SeverityBands
    dupilumab_interval: DosingInterval

    @property
    def adequate_trial_weeks(self) -> int:
        return self.adequate_trial.value


@dataclass(frozen=True)
class DrosdManagement:
    keep_dupilumab: bool
    treatment: str
    text: str  # filled
    claim: Claim


@dataclass(frozen=True)
class DrosdKnowledge:
    steroid_drops: Explained  # weeks of ophthalmic corticosteroid that make DROSD severe and persistent
    persistent_severe: Explained  # weeks a condition recorded as severe must last to count as persistent
    severity_words: Mapping[str, frozenset[str]]  # mild | moderate | severe -> codes and words (lower case)
    severity_claim: Claim
    management: Mapping[DrosdGrade, DrosdManagement]
    while_switching: Advice  # its text still holds {treatment} and {referral}
    referral: Advice
    red_flags: Advice
    red_flag_hours: int
    red_flag_management: Advice  # in place of the grade's management when red flags are recorded
    pitfall: Advice
    incidence: Advice
    restart: Advice  # its text still holds {grade}, {treatment} and {referral}
    restart_window: Explained  # weeks since a stop for the eyes during which the restart card is shown


@dataclass(frozen=True)
class SafetyRule:
    id: str
    agents: frozenset[str]
    when: Mapping[str, Any]  # predicate name -> its value, as schemas/safety.schema.json defines them
    effect: Effect
    rank_penalty: float
    reason: str  # a template of the facts of `when` and the rule's values
    advice: str | None
    claim: Claim
    note: str | None = None
    draft: bool = True  # False: offered with the reason but never drafted
    regions: frozenset[str] = frozenset()  # where the rule applies; empty: every region
    penalty_group: str | None = None  # rules of one group move an agent down once, by their largest penalty

    def applies_in(self, region: str) -> bool:
        return not self.regions or region in self.regions

    @property
    def contraindicates(self) -> bool:
        return self.effect is Effect.CONTRAINDICATED


@dataclass(frozen=True)
class SmokingEvidence:
    """What shows a current or past smoker (safety.toml [smoking])."""

    conditions: tuple[str, ...]
    tests: tuple[str, ...]
    explain: str
    claim: Claim


@dataclass(frozen=True)
class PregnancyEvidence:
    """What shows a pregnancy (safety.toml [pregnancy])."""

    conditions: tuple[str, ...]
    tests: tuple[str, ...]
    due_dates: tuple[str, ...]
    within_days: int
    explain: str
    claim: Claim


@dataclass(frozen=True)
class BaselineTest:
    id: str
    label: str
    short: str  # a word or two, for a card's one-line list
    satisfied_by: tuple[str, ...]
    lookback_days: int | None  # None: a result never expires
    order_text: str
    order_codings: tuple[tuple[str, str, str], ...]
    when: Mapping[str, Any] = field(default_factory=dict)  # predicates, as in safety rules
    when_label: str | None = None


@dataclass(frozen=True)
class AgentMonitoring:
    agent: str
    tests: tuple[BaselineTest, ...]
    claim: Claim
    note: str | None = None


@dataclass(frozen=True)
class Region:
    """A regulatory region of the knowledge (therapies.toml [region]): whose approvals, doses and rules apply."""

    code: str
    name: str  # as a sentence names it: "the European Union"
    regulator: str
    order_code_systems: frozenset[str]  # systems (concepts.toml [systems] names) a draft order may be coded in
    claim: Claim


@dataclass(frozen=True)
class OrderVariant:
    """The draft order for the patients it names (by age and weight), in place of the region's usual one."""

    template: OrderTemplate
    claim: Claim
    age_below: float | None = None
    age_at_least: float | None = None
    weight_below_kg: float | None = None
    weight_at_least_kg: float | None = None

    def applies(self, age_years: int | None, weight_kg: float | None) -> bool | None:
        """Whether it is this patient's order; None when an age or weight it depends on is not known."""
        checks = ((age_years, self.age_below, self.age_at_least), (weight_kg, self.weight_below_kg, self.weight_at_least_kg))
        for value, below, at_least in checks:
            if below is None and at_least is None:
                continue
            if value is None:
                return None
            if (below is not None and value >= below) or (at_least is not None and value < at_least):
                return False
        return True


@dataclass(frozen=True)
class OrderTemplate:
    text: str
    codings: tuple[tuple[str, str, str], ...]  # (system URL, code, display); V codes of the region's systems only
    dose_mg: float | None
    frequency_per_day: int | None
    instruction: str  # filled
    variants: tuple[OrderVariant, ...] = ()  # the first that applies replaces this one

    def for_patient(self, age_years: int | None, weight_kg: float | None) -> OrderTemplate | None:
        """The order for this patient: the first variant that applies, else this one; None when the choice depends
        on an age or weight not on record (no draft rather than a guessed dose)."""
        for variant in self.variants:
            applies = variant.applies(age_years, weight_kg)
            if applies is None:
                return None
            if applies:
                return variant.template
        return self


@dataclass(frozen=True)
class Approval:
    """An option's status for atopic dermatitis in one region, with that region's limits, dose and draft order."""

    decision: ApprovalDecision
    claim: Claim
    dose: Advice | None = None
    order: OrderTemplate | None = None  # None: listed, the prescriber sets the dose
    min_age_years: float | None = None
    min_weight_kg: float | None = None
    since: str | None = None
    note: str | None = None
    min_weight_below_age_years: float | None = None  # the weight minimum applies below this age only

    def weight_limit_for(self, age_years: int | None) -> float | None:
        """The minimum weight that applies at this age (an adolescent limit does not bind adults)."""
        if self.min_weight_kg is None or self.min_weight_below_age_years is None:
            return self.min_weight_kg
        return self.min_weight_kg if age_years is None or age_years < self.min_weight_below_age_years else None


@dataclass(frozen=True)
class DrugWarning:
    kind: WarningKind
    text: str
    claim: Claim
    regions: frozenset[str] = frozenset()  # where a card states it; empty: every region
    brief: str | None = None  # one phrase for the card; `text` is shown in full in the app

    def stated_in(self, region: str) -> bool:
        return not self.regions or region in self.regions


@dataclass(frozen=True)
class RankGroup:
    id: str
    rank: int
    label: str
    claim: Claim
    note: str | None = None
    exclusive: bool = False  # one agent of the group at a time
    not_combined_with: frozenset[str] = frozenset()  # groups whose agents, taken now, bring the combination caution
    replaces_dupilumab: bool = False  # taking one after dupilumab started means the switch has been made


@dataclass(frozen=True)
class Ranking:
    """therapies.toml [ranking]: how the guideline rates the agents, and whose the order of a ranked list is."""

    guideline: Advice
    order: Advice


@dataclass(frozen=True)
class BoxedOnCards:
    """therapies.toml [boxed_on_cards]: a rank group whose agents' boxed warnings cards state, once per card."""

    group: str
    label: str
    claim: Claim
    note: str | None = None


@dataclass(frozen=True)
class TherapyOption:
    id: str
    label: str
    drug_class: str
    group: RankGroup
    approvals: Mapping[str, Approval]  # region code -> its approval, limits, dose and draft order
    position: int  # order within the file: the order inside a rank group
    evidence: Advice | None = None
    evidence_brief: str | None = None  # the evidence in one phrase, for a card's top options
    warnings: tuple[DrugWarning, ...] = ()
    note: str | None = None

    @property
    def rank_group(self) -> str:
        return self.group.id

    @property
    def group_rank(self) -> int:
        return self.group.rank


@dataclass(frozen=True)
class CardTexts:
    """cards.toml: topic names and the templates of card sentences, by section and name."""

    topics: Mapping[str, str]
    templates: Mapping[str, Mapping[str, str]]

    def text(self, section: str, name: str, **values: Any) -> str:
        return fill(self.templates[section][name], **values)


@dataclass(frozen=True)
class Knowledge:
    sources: Mapping[str, Source]
    regions: Mapping[str, Region]
    concepts: ConceptMatcher
    response: ResponseKnowledge
    therapies: tuple[TherapyOption, ...]
    advice: Mapping[str, Advice]
    override_reasons: Mapping[OverrideKind, Mapping[str, str]]  # card kind -> code -> display
    drosd: DrosdKnowledge
    safety_rules: tuple[SafetyRule, ...]
    lab_lookback: Explained  # days a laboratory result counts for the safety screen
    pregnancy: PregnancyEvidence
    smoking: SmokingEvidence
    stale_result: Advice  # {finding}: a rule that holds only on a result older than its window
    failed_group_penalty: float
    history_claim: Claim
    combination: Advice  # why agents of not-combined groups are not suggested together
    ranking: Ranking  # the line on a ranked list: the guideline's strengths, and whose the order is
    boxed_on_cards: Mapping[str, BoxedOnCards]  # rank group -> how its boxed warnings are named on cards
    monitoring: Mapping[str, AgentMonitoring]
    monitoring_windows: Advice
    baseline_tests: Mapping[str, BaselineTest]
    cards: CardTexts
    _rules_by_agent: Mapping[str, tuple[SafetyRule, ...]] = field(default_factory=dict)
    _rules_by_agent_in: Mapping[tuple[str, str], tuple[SafetyRule, ...]] = field(default_factory=dict)  # (agent, region)
    _options: Mapping[str, TherapyOption] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_agent: dict[str, list[SafetyRule]] = {}
        for rule in self.safety_rules:
            for agent in rule.agents:
                by_agent.setdefault(agent, []).append(rule)
        object.__setattr__(self, "_rules_by_agent", {agent: tuple(rules) for agent, rules in by_agent.items()})
        object.__setattr__(self, "_rules_by_agent_in", {
            (agent, region): tuple(r for r in rules if r.applies_in(region)) for agent, rules in by_agent.items() for region in self.regions
        })
        object.__setattr__(self, "_options", {o.id: o for o in self.therapies})

    @property
    def lab_lookback_days(self) -> int:
        return self.lab_lookback.value

    def rules_for(self, agent: str, region: str | None = None) -> tuple[SafetyRule, ...]:
        """The agent's safety rules that apply in the region (every region's, when None: for a reviewer's listing)."""
        if region is None:
            return self._rules_by_agent.get(agent, ())
        return self._rules_by_agent_in.get((agent, region), ())

    def option(self, option_id: str) -> TherapyOption:
        return self._options[option_id]

    def cite(self, claim: Claim) -> str:
        """For reviewers (docs/knowledge.md): the sources' short names and the evidence status."""
        names = "; ".join(self.sources[s].short for s in claim.sources)
        return f"{names} [{claim.status}]"

    def evidence(self, claim: Claim) -> str:
        """For clinicians: the strength of what a claim rests on in plain words (cards.toml [evidence])."""
        words = self.cards.templates["evidence"]
        if claim.status is EvidenceStatus.U:
            return words["unverified"]
        if claim.status is EvidenceStatus.DESIGN:
            return words["design"]
        kinds = dict.fromkeys(self.sources[s].kind for s in claim.sources if self.sources[s].kind not in ("design", "terminology"))
        return ", ".join(words[k] for k in kinds) or words["design"]
