"""Clinical knowledge held as data files (TOML), each entry with its source and evidence status.

`load_knowledge()` reads and checks them once; the rest of the service reads the typed view.
A file that names an unknown source, status or system fails loudly at start-up, not in a card.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from .concepts import ConceptDefinition, ConceptMatcher, build_concepts

STATUSES = frozenset({"V", "V2", "S", "C", "U", "design"})
APPROVAL_STATUSES = frozenset({"approved", "not-approved", "off-label", "not-applicable"})


class KnowledgeError(ValueError):
    """A knowledge file is inconsistent; raised when the service starts."""


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

    status: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class ResponseCriterion:
    instrument: str
    rule: str  # relative_reduction | absolute_reduction | at_most
    threshold: float
    explain: str
    claim: Claim

    @property
    def needs_baseline(self) -> bool:
        return self.rule != "at_most"


@dataclass(frozen=True)
class ResponseKnowledge:
    adequate_trial_weeks: int
    adequate_trial_explain: str
    adequate_trial_claim: Claim
    criteria: Mapping[str, ResponseCriterion]
    failure_instruments: tuple[str, ...]
    loss_of_response_explain: str
    loss_of_response_claim: Claim
    adherence_gap_days: int
    adherence_explain: str
    adherence_claim: Claim


@dataclass(frozen=True)
class Advice:
    text: str
    claim: Claim


@dataclass(frozen=True)
class DrosdKnowledge:
    steroid_weeks: int
    steroid_explain: str
    steroid_claim: Claim
    persistent_weeks: int
    persistent_claim: Claim
    severity_words: Mapping[str, tuple[str, ...]]  # grade -> codes and words recorded in Condition.severity
    management: Mapping[str, tuple[bool, Advice]]  # grade -> (keep dupilumab, advice)
    red_flags: Advice
    pitfall: Advice
    incidence: Advice


@dataclass(frozen=True)
class SafetyRule:
    id: str
    agents: frozenset[str]
    when: Mapping[str, Any]
    effect: str  # contraindicated | caution
    rank_penalty: float
    reason: str
    claim: Claim
    note: str | None = None


@dataclass(frozen=True)
class BaselineTest:
    id: str
    label: str
    satisfied_by: tuple[str, ...]
    lookback_days: int
    order_text: str
    order_codings: tuple[tuple[str, str, str], ...]
    only_if: str | None = None


@dataclass(frozen=True)
class AgentMonitoring:
    agent: str
    tests: tuple[BaselineTest, ...]
    claim: Claim
    note: str | None = None


@dataclass(frozen=True)
class Approval:
    status: str  # approved | not-approved | off-label
    min_age_years: float | None = None
    min_weight_kg: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class OrderTemplate:
    text: str
    codings: tuple[tuple[str, str, str], ...]  # (system URL, code, display); V codes only
    dose_mg: float | None
    frequency_per_day: int | None
    instruction: str


@dataclass(frozen=True)
class TherapyOption:
    id: str
    label: str
    drug_class: str
    rank_group: str
    group_rank: int
    group_label: str
    dose: str
    evidence: str | None
    claim: Claim
    approvals: Mapping[str, Approval]
    order: OrderTemplate | None
    position: int  # order within the file: the seed's order inside a group


@dataclass(frozen=True)
class Knowledge:
    sources: Mapping[str, Source]
    concepts: ConceptMatcher
    response: ResponseKnowledge
    therapies: tuple[TherapyOption, ...]
    rank_group_claims: Mapping[str, Claim]
    advice: Mapping[str, Advice]
    override_reasons: Mapping[str, Mapping[str, str]]  # card kind -> code -> display
    drosd: DrosdKnowledge
    safety_rules: tuple[SafetyRule, ...]
    lab_lookback_days: int
    monitoring: Mapping[str, AgentMonitoring]
    baseline_tests: Mapping[str, BaselineTest]
    _rules_by_agent: Mapping[str, tuple[SafetyRule, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_agent: dict[str, list[SafetyRule]] = {}
        for rule in self.safety_rules:
            for agent in rule.agents:
                by_agent.setdefault(agent, []).append(rule)
        object.__setattr__(self, "_rules_by_agent", {agent: tuple(rules) for agent, rules in by_agent.items()})

    def rules_for(self, agent: str) -> tuple[SafetyRule, ...]:
        return self._rules_by_agent.get(agent, ())

    def option(self, option_id: str) -> TherapyOption:
        return next(o for o in self.therapies if o.id == option_id)

    def cite(self, claim: Claim) -> str:
        names = "; ".join(self.sources[s].short for s in claim.sources)
        return f"{names} [{claim.status}]"


def _read(name: str) -> dict[str, Any]:
    with resources.files(__package__).joinpath(name).open("rb") as handle:
        return tomllib.load(handle)


@lru_cache(maxsize=8)
def load_knowledge(local_score_codes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()) -> Knowledge:
    """Load the knowledge files; `local_score_codes` adds a deployment's local score codes."""
    sources = {
        key: Source(id=key, title=value["title"], short=value["short"], kind=value["kind"], url=value.get("url"), note=value.get("note"))
        for key, value in _read("sources.toml").items()
    }

    def claim(entry: Mapping[str, Any], where: str) -> Claim:
        status = entry.get("status")
        cited = tuple(entry.get("sources", ()))
        if status not in STATUSES:
            raise KnowledgeError(f"{where}: status {status!r} is not one of {sorted(STATUSES)}")
        unknown = [s for s in cited if s not in sources]
        if unknown:
            raise KnowledgeError(f"{where}: unknown sources {unknown}")
        return Claim(status=status, sources=cited)

    concept_file = _read("concepts.toml")
    systems: dict[str, str] = concept_file["systems"]
    try:
        definitions = build_concepts(concept_file["concept"], systems, dict(local_score_codes))
    except ValueError as error:
        raise KnowledgeError(f"concepts.toml: {error}") from None
    for definition in definitions:
        for code in definition.all_codes():
            if code.source and code.source not in sources:
                raise KnowledgeError(f"concepts.toml {definition.id}: unknown source {code.source!r}")

    response_file = _read("response.toml")
    trial = response_file["adequate_trial"]
    criteria = {}
    for instrument, entry in response_file["criterion"].items():
        threshold = entry.get("percent", entry.get("points", entry.get("value")))
        if entry["rule"] not in {"relative_reduction", "absolute_reduction", "at_most"} or threshold is None:
            raise KnowledgeError(f"response.toml criterion.{instrument}: unknown rule or missing threshold")
        criteria[instrument] = ResponseCriterion(
            instrument=instrument,
            rule=entry["rule"],
            threshold=float(threshold),
            explain=entry["explain"],
            claim=claim(entry, f"response.toml criterion.{instrument}"),
        )
    failure = response_file["failure"]
    claim(failure, "response.toml failure")
    loss = response_file["loss_of_response"]
    adherence = response_file["adherence"]
    response = ResponseKnowledge(
        adequate_trial_weeks=int(trial["weeks"]),
        adequate_trial_explain=trial["explain"],
        adequate_trial_claim=claim(trial, "response.toml adequate_trial"),
        criteria=criteria,
        failure_instruments=tuple(failure["instruments"]),
        loss_of_response_explain=loss["explain"],
        loss_of_response_claim=claim(loss, "response.toml loss_of_response"),
        adherence_gap_days=int(adherence["gap_days"]),
        adherence_explain=adherence["explain"],
        adherence_claim=claim(adherence, "response.toml adherence"),
    )

    therapy_file = _read("therapies.toml")
    groups = therapy_file["rank_groups"]
    group_claims = {name: claim(group, f"therapies.toml rank_groups.{name}") for name, group in groups.items()}
    therapies = []
    for position, (option_id, entry) in enumerate(therapy_file["option"].items()):
        group = groups.get(entry["rank_group"])
        if group is None:
            raise KnowledgeError(f"therapies.toml option.{option_id}: unknown rank_group {entry['rank_group']!r}")
        order = entry.get("order")
        for region, approval in entry.get("approval", {}).items():
            if approval.get("status") not in APPROVAL_STATUSES:
                raise KnowledgeError(f"therapies.toml option.{option_id}.approval.{region}: unknown status")
        therapies.append(
            TherapyOption(
                id=option_id,
                label=entry["label"],
                drug_class=entry["drug_class"],
                rank_group=entry["rank_group"],
                group_rank=int(group["rank"]),
                group_label=group["label"],
                dose=entry["dose"],
                evidence=entry.get("evidence"),
                claim=claim({"status": entry["dose_status"], "sources": entry["sources"]}, f"therapies.toml option.{option_id}"),
                approvals={
                    region: Approval(
                        status=value["status"],
                        min_age_years=value.get("min_age_years"),
                        min_weight_kg=value.get("min_weight_kg"),
                        note=value.get("note"),
                    )
                    for region, value in entry.get("approval", {}).items()
                },
                order=_order_template(order, systems, option_id) if order else None,
                position=position,
            )
        )
    advice_file = _read("advice.toml")
    for key, entry in advice_file.get("advice", {}).items():
        claim(entry, f"advice.toml advice.{key}")
    advice = {
        key: Advice(entry["text"], claim(entry, f"advice.toml advice.{key}"))
        for key, entry in advice_file["advice"].items()
    }
    def advice_of(entry: Mapping[str, Any], where: str) -> Advice:
        return Advice(entry["text"], claim(entry, where))

    drosd_file = _read("drosd.toml")
    grading = drosd_file["grading"]
    drosd = DrosdKnowledge(
        steroid_weeks=int(grading["steroid_weeks"]),
        steroid_explain=grading["steroid_explain"],
        steroid_claim=claim({"status": grading["steroid_status"], "sources": grading["steroid_sources"]}, "drosd.toml steroid"),
        persistent_weeks=int(grading["persistent_weeks"]),
        persistent_claim=claim({"status": grading["persistent_status"], "sources": grading["persistent_sources"]}, "drosd.toml persistent"),
        severity_words={grade: tuple(words) for grade, words in grading["severity_codes"].items()},
        management={
            grade: (bool(entry["keep_dupilumab"]), advice_of(entry, f"drosd.toml management.{grade}"))
            for grade, entry in drosd_file["management"].items()
        },
        red_flags=advice_of(drosd_file["red_flags"], "drosd.toml red_flags"),
        pitfall=advice_of(drosd_file["pitfall"], "drosd.toml pitfall"),
        incidence=advice_of(drosd_file["incidence"], "drosd.toml incidence"),
    )

    option_ids = {o.id for o in therapies}
    safety_file = _read("safety.toml")
    agent_sets = {name: set(members) for name, members in safety_file["agent_sets"].items()}
    rules = []
    default_window = int(safety_file["lab_lookback_days"])
    for entry in safety_file["rule"]:
        agents = set()
        for name in entry["agents"]:
            agents |= agent_sets.get(name, {name})
        if agents - option_ids:
            raise KnowledgeError(f"safety.toml rule {entry['id']}: unknown agents {sorted(agents - option_ids)}")
        if entry["effect"] not in {"contraindicated", "caution"}:
            raise KnowledgeError(f"safety.toml rule {entry['id']}: unknown effect")
        unknown = {c for c in entry["when"].get("condition", ()) if c not in {d.id for d in definitions}}
        if "lab" in entry["when"] and entry["when"]["lab"] not in {d.id for d in definitions}:
            unknown.add(entry["when"]["lab"])
        if unknown:
            raise KnowledgeError(f"safety.toml rule {entry['id']}: unknown concepts {sorted(unknown)}")
        rules.append(
            SafetyRule(
                id=entry["id"],
                agents=frozenset(agents),
                when={**entry["when"], "within_days": entry["when"].get("within_days", default_window)} if "lab" in entry["when"] else dict(entry["when"]),
                effect=entry["effect"],
                rank_penalty=float(entry.get("rank_penalty", 0)),
                reason=entry["reason"],
                claim=claim(entry, f"safety.toml rule {entry['id']}"),
                note=entry.get("note"),
            )
        )

    monitoring_file = _read("monitoring.toml")
    tests = {}
    for test_id, entry in monitoring_file["test"].items():
        codings = []
        for coding in entry.get("order_codings", ()):
            if coding.get("status") != "V":
                raise KnowledgeError(f"monitoring.toml test.{test_id}: only V codes may be written into orders")
            codings.append((systems[coding["system"]], coding["code"], coding["display"]))
        tests[test_id] = BaselineTest(
            id=test_id,
            label=entry["label"],
            satisfied_by=tuple(entry["satisfied_by"]),
            lookback_days=int(entry["lookback_days"]),
            order_text=entry["order_text"],
            order_codings=tuple(codings),
            only_if=entry.get("only_if"),
        )
    monitoring = {
        agent: AgentMonitoring(agent, tuple(tests[t] for t in entry["tests"]), claim(entry, f"monitoring.toml agent.{agent}"), entry.get("note"))
        for agent, entry in monitoring_file["agent"].items()
    }

    return Knowledge(
        sources=sources,
        concepts=ConceptMatcher(definitions),
        response=response,
        therapies=tuple(therapies),
        rank_group_claims=group_claims,
        advice=advice,
        override_reasons={kind: dict(reasons) for kind, reasons in advice_file["override_reasons"].items()},
        drosd=drosd,
        safety_rules=tuple(rules),
        lab_lookback_days=int(safety_file["lab_lookback_days"]),
        monitoring=monitoring,
        baseline_tests=tests,
    )


def _order_template(entry: Mapping[str, Any], systems: Mapping[str, str], option_id: str) -> OrderTemplate:
    codings = []
    for coding in entry.get("codings", ()):
        if coding.get("status") != "V":
            raise KnowledgeError(f"therapies.toml option.{option_id}.order: only V codes may be written into orders")
        codings.append((systems[coding["system"]], coding["code"], coding["display"]))
    return OrderTemplate(
        text=entry["text"],
        codings=tuple(codings),
        dose_mg=entry.get("dose_mg"),
        frequency_per_day=entry.get("frequency_per_day"),
        instruction=entry["instruction"],
    )


__all__ = [
    "Advice",
    "AgentMonitoring",
    "BaselineTest",
    "DrosdKnowledge",
    "SafetyRule",
    "Approval",
    "Claim",
    "ConceptDefinition",
    "ConceptMatcher",
    "Knowledge",
    "KnowledgeError",
    "OrderTemplate",
    "ResponseCriterion",
    "TherapyOption",
    "load_knowledge",
]
