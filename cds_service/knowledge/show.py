"""The knowledge base as a worksheet a clinical reviewer reads and signs off (`cds-service knowledge show`).

Written from the loaded knowledge, so what it shows is what the service applies: per agent, its approvals
by region, dose, warnings, contraindications, cautions and baseline tests; per finding, its criteria;
each with its evidence status and sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .concepts import ConceptDefinition, KnownCode
from .loader import Predicate, predicates
from .model import Claim, Knowledge, SafetyRule, TherapyOption, fill, number_text

_INTRO = """\
# Knowledge base: the reviewer's worksheet

What the service applies, written from its knowledge files (`cds_service/knowledge/*.toml`) by
`cds-service knowledge show`; a test keeps this page in step with them. Each fact carries its evidence
status and sources (listed at the end):

- **V**: read in a primary or authoritative source (label, guideline, registry);
- **V2**: read only in a secondary source;
- **S**: stated by the documents the product was specified from (the Dr.Oracle overview and the
  tralokinumab report in JAAD International), no primary source found;
- **C**: sources conflict (codes only; every value is matched);
- **U**: unverified (never the only way something is recognised, never written into an order);
- **design**: a choice of this service where the sources give no number.

To change a rule, edit its TOML file and run `cds-service knowledge check` (exit 0: it loads; 1: one line
per problem, naming the file, the entry and the key). Each file's JSON Schema is in
`cds_service/knowledge/schemas/`; the predicates a rule's `when` may use are listed below, and a text may use
only the placeholders its schema names. The service does not start on a knowledge base that fails the check.

## Regions

`CDS_REGION` names one region of `therapies.toml` `[region]` (US and EU as shipped); everything region-specific
is data keyed by it, and the Python code has no branch on a region:

- an option's `approval.<REGION>`: the decision, the age and weight limits (always applied, whatever the
  decision), since when, the dose a card shows and the draft order a suggestion writes (`for_patients` for
  other doses by age or weight), each with its status and sources;
- `regions = [...]` on a safety rule or a warning: where it applies (none: every region). A label fact that
  two regulators word differently is two rules, one per region (the US boxed-warning population and the EU
  measures of 2023 below); a rule from one region's label kept in another as the stricter reading says so;
- `[region.<REGION>].order_code_systems`: the terminologies a draft order may be coded in there (the check
  refuses, for example, an RxNorm code in an EU order).

An option without an entry for the configured region is listed on cards as "not assessed for" the region,
never ranked and never drafted.

**Adding a region** (the UK's MHRA, Health Canada):

1. Add `[region.XX]` to `therapies.toml` (name as a sentence says it, regulator, code systems of its orders).
2. For each option, add `approval.XX` from that regulator's product information: decision, ages, weights,
   dose and draft order, with sources (add them to `sources.toml`) and statuses; leave an option out rather
   than guess, and it shows as not assessed.
3. For each safety rule and warning, decide whether its label fact holds there; give `regions` to those that
   do not, and add the region's own rules (doses by organ function, its regulator's restrictions).
4. Add fixtures with `"region": "XX"` in their expected answer (`fhir_fixtures/scenarios/`; they are run
   by a service started in that region), at least: children and adolescents by age and weight, an older
   smoker, renal impairment, pregnancy and an adult with every agent.
5. Run `cds-service knowledge check`, regenerate this page with `cds-service knowledge show > docs/knowledge.md`,
   and run the tests.
"""


def _cite(knowledge: Knowledge, claim: Claim) -> str:
    return f"[{claim.status}; {', '.join(knowledge.sources[s].short for s in claim.sources)}]"


def describe_when(when: Mapping[str, Any], knowledge: Knowledge) -> str:
    """A rule's `when`, in words."""
    parts = []
    for name, value in when.items():
        parts += [_describe(name, item, knowledge) for item in (value if isinstance(value, list) else [value])]
    return " and ".join(parts)


def _label(knowledge: Knowledge, concept_id: str) -> str:
    return knowledge.concepts.definitions[concept_id].label


def _describe(name: str, value: Any, knowledge: Knowledge) -> str:
    if name == "age_at_least":
        return f"age {value} or older"
    if name == "age_at_most":
        return f"age {value} or younger"
    if name == "sex":
        return f"sex {value}"
    if name == "condition":
        labels = " or ".join(_label(knowledge, c) for c in value["any_of"])
        return f"{labels} ({'active' if value['state'] == 'active' else 'ever recorded'})"
    if name in {"lab", "lab_result"} and isinstance(value, list):
        return " with ".join(_describe(name, item, knowledge) for item in value)
    if name in {"lab", "lab_result"}:
        if value.get("never_expires"):
            window = "any date"
        else:
            window = f"within {value.get('within_days', knowledge.lab_lookback_days)} days"
        test = _label(knowledge, value["test"])
        if name == "lab_result":
            return f"{test} {value['result']} ({window})"
        bounds = []
        if "at_least" in value:
            bounds.append(f"at least {number_text(value['at_least'])}")
        if "below" in value:
            bounds.append(f"below {number_text(value['below'])}")
        return f"{test} {' and '.join(bounds)} {value['unit']} ({window})"
    if name == "finding":
        return "dupilumab-related ocular surface disease" if value == "drosd" else "eye surface disease before dupilumab"
    if name == "pregnant":
        return "pregnant (a pregnancy condition, a positive pregnancy test or status, or a delivery date ahead)"
    if name == "smoker":
        return "a current or past smoker (a smoking condition, or the latest smoking status)"
    if name == "taking":
        return "taking now: " + " or ".join(_label(knowledge, c) for c in value["any_of"])
    if name == "ordered_dose_above_mg":
        return f"ordered dose above {value:g} mg"
    return f"{name} = {value}"  # a predicate without a phrase of its own yet: shown as written


def _only_in(regions: frozenset[str]) -> str:
    """' (EU only)' after a rule or warning limited to some regions; nothing for one that applies everywhere."""
    return f" ({', '.join(sorted(regions))} only)" if regions else ""


def _rule_line(rule: SafetyRule, knowledge: Knowledge) -> str:
    penalty = f"; ranked down {rule.rank_penalty:g}" if rule.rank_penalty else ""
    penalty += f" (once with the other rules of `{rule.penalty_group}`)" if rule.penalty_group else ""
    penalty += "; never drafted" if not rule.draft else ""
    text = rule.reason + (f": {rule.advice}" if rule.advice else "")
    where = _only_in(rule.regions)
    line = f"- `{rule.id}`{where}: when {describe_when(rule.when, knowledge)}: \"{text}\"{penalty} {_cite(knowledge, rule.claim)}"
    return line + (f" Note: {rule.note}" if rule.note else "")


def _approval_lines(option: TherapyOption, knowledge: Knowledge, region: str) -> list[str]:
    """The option in one region: decision and limits, dose, draft order (and its variants)."""
    approval = option.approvals.get(region)
    if approval is None:
        return [f"- **{region}**: not assessed for this region (listed on cards as such, never ranked or drafted)"]
    limits = [f"from {approval.min_age_years:g} years" if approval.min_age_years is not None else "",
              (f"from {approval.min_weight_kg:g} kg"
               + (f" under {approval.min_weight_below_age_years:g} years" if approval.min_weight_below_age_years else "")
               if approval.min_weight_kg is not None else ""),
              f"since {approval.since}" if approval.since else "", approval.note or ""]
    detail = "; ".join(part for part in limits if part)
    lines = [f"- **{region}**: {approval.decision.value}{f' ({detail})' if detail else ''} {_cite(knowledge, approval.claim)}"]
    if approval.dose:
        lines.append(f"    - Dose: {approval.dose.text} {_cite(knowledge, approval.dose.claim)}")
    order = approval.order
    if order is None:
        lines.append("    - Draft order: none (the prescriber sets the dose)")
        return lines
    codes = ", ".join(f"{code} ({display})" for _, code, display in order.codings) or "text only"
    lines.append(f"    - Draft order: {order.text}, {order.instruction}; codes: {codes}")
    for variant in order.variants:
        bounds = [f"under {variant.age_below:g} years" if variant.age_below is not None else "",
                  f"{variant.age_at_least:g} years or older" if variant.age_at_least is not None else "",
                  f"under {variant.weight_below_kg:g} kg" if variant.weight_below_kg is not None else "",
                  f"{variant.weight_at_least_kg:g} kg or more" if variant.weight_at_least_kg is not None else ""]
        lines.append(f"    - Draft order {', '.join(b for b in bounds if b)}: {variant.template.text}, {variant.template.instruction} "
                     f"{_cite(knowledge, variant.claim)}")
    return lines


def _option_lines(option: TherapyOption, knowledge: Knowledge) -> list[str]:
    group = option.group
    lines = [f"### {option.label}", "", f"{option.drug_class}; rank group {group.label} ({group.rank}) {_cite(knowledge, group.claim)}"
             + (f"; {group.note.rstrip('.')}" if group.note else "") + ".", ""]
    if option.evidence:
        lines.append(f"- Evidence after dupilumab: {option.evidence.text} {_cite(knowledge, option.evidence.claim)}")
    for warning in option.warnings:
        where = _only_in(warning.regions)
        lines.append(f"- {warning.kind.value.capitalize()} warning{where}: {warning.text} {_cite(knowledge, warning.claim)}")
    for region in knowledge.regions:
        lines += _approval_lines(option, knowledge, region)
    rules = knowledge.rules_for(option.id)
    for title, wanted in (("Contraindications", True), ("Cautions", False)):
        chosen = [r for r in rules if r.contraindicates is wanted]
        if chosen:
            lines += ["", f"{title}:", "", *(_rule_line(r, knowledge) for r in chosen)]
    monitoring = knowledge.monitoring.get(option.id)
    if monitoring:
        tests = []
        for test in monitoring.tests:
            window = f"within {test.lookback_days} days" if test.lookback_days else "ever"
            tests.append(f"{test.label} ({window}{'; ' + test.when_label if test.when_label else ''})")
        note = f" ({monitoring.note})" if monitoring.note else ""
        lines += ["", f"Baseline tests: {'; '.join(tests)}{note} {_cite(knowledge, monitoring.claim)}"]
    if option.note:
        lines += ["", f"Note: {option.note}"]
    return lines + [""]


def _predicate_rows(specs: Mapping[str, Predicate]) -> list[str]:
    rows = ["| Predicate | Meaning, units and example | Facts a rule's text may use |", "|---|---|---|"]
    for spec in specs.values():
        facts = ", ".join(f"{{{fact}}}" for fact in spec.facts)
        rows.append(f"| `{spec.name}` | {spec.description} | {facts} |")
    return rows


def _code_text(code: KnownCode, prefix: bool = False) -> str:
    system = code.system.rstrip("/").rsplit("/", 1)[-1]  # rxnorm, atc, ndc, sct, icd-10-cm, loinc.org
    text = f"{system} {code.code}{'*' if prefix else ''} [{code.status}; {code.source}]"
    return text + (f" ({code.note})" if code.note else "")


def _concept_line(definition: ConceptDefinition) -> str:
    parts = [f"- `{definition.id}` ({definition.kind}{', ' + definition.group if definition.group else ''}): {definition.label}"]
    codes = [_code_text(c) for c in definition.codes if c.status != "local"]
    codes += [_code_text(c, prefix=True) for c in definition.code_prefixes]
    codes += [_code_text(c) for c in definition.ndc_claims]
    if codes:
        parts.append("codes " + ", ".join(codes))
    if definition.names:
        parts.append("names " + ", ".join(definition.names) + (" (case-sensitive)" if definition.case_sensitive else ""))
    if definition.qualified_names:
        parts.append("names with a qualifier " + ", ".join(q.name for q in definition.qualified_names))
    if definition.exclude_names:
        parts.append("not with " + ", ".join(definition.exclude_names))
    if definition.canonical_unit:
        parts.append(f"values in {definition.canonical_unit}")
    if definition.value_range:
        parts.append(f"scale {definition.value_range[0]:g}-{definition.value_range[1]:g}")
    return "; ".join(parts)


def knowledge_worksheet(knowledge: Knowledge) -> str:
    lines = [_INTRO, "## Next-line options", "", "Ranked by group (lower first), then in this order within a group.", ""]
    ranking = knowledge.ranking
    lines.append(f"- Why this order, in one line on every card with a ranked list: {ranking.guideline.text} "
                 f"{_cite(knowledge, ranking.guideline.claim)}; {ranking.order.text} {_cite(knowledge, ranking.order.claim)}")
    for named in knowledge.boxed_on_cards.values():
        note = f" Note: {named.note}" if named.note else ""
        lines.append(f"- Boxed warning stated once per card that offers, suggests or screens an agent of rank group `{named.group}`, "
                     f"as \"{named.label}\" {_cite(knowledge, named.claim)}.{note}")
    lines.append("- Each option's evidence after dupilumab is shown under it, in one line with its sources.")
    lines.append("")
    for option in sorted(knowledge.therapies, key=lambda o: (o.group_rank, o.position)):
        lines += _option_lines(option, knowledge)

    response = knowledge.response
    lines += ["## Findings and their criteria", "", "### Dupilumab response", ""]
    note = f" Note: {response.adequate_trial_note}" if response.adequate_trial_note else ""
    lines.append(f"- Adequate trial: {response.adequate_trial.explain} {_cite(knowledge, response.adequate_trial.claim)}{note}")
    for criterion in response.criteria.values():
        lines.append(f"- Response on {criterion.instrument}: {criterion.explain}; change written in {criterion.change.value} "
                     f"{_cite(knowledge, criterion.claim)}")
    lines.append(f"- Change written in each instrument's own unit (grades for ordinal scales, never a percent) "
                 f"{_cite(knowledge, response.change_claim)}")
    lines.append(f"- Baseline: {response.baseline_window.explain} {_cite(knowledge, response.baseline_window.claim)}")
    severity = response.severity
    bands = "; ".join(fill(severity.explain, instrument=name, value=number_text(value)) for name, value in severity.mild_at_most.items())
    lines.append(f"- Mild disease or better: {bands} {_cite(knowledge, severity.claim)}; {severity.rule.text} "
                 f"{_cite(knowledge, severity.rule.claim)}")
    partial = response.partial_response
    amounts = ", ".join(f"{name} {number_text(value)}" for name, value in partial.improvement.items())
    lines.append(f"- Partial response (improvement from baseline, in the criterion's unit: {amounts}): "
                 f"{fill(partial.explain, improvement='the amount', criterion='the response criterion')} {_cite(knowledge, partial.claim)}")
    for step in partial.steps:
        when = "" if step.when.value == "always" else f" (when {step.when.value.replace('_', ' ')})"
        lines.append(f"  - Before a switch{when}: {step.text} {_cite(knowledge, step.claim)}")
    interval = response.dupilumab_interval
    lines.append(f"- Dupilumab interval: {interval.explain}, from age {interval.adult_age_years} {_cite(knowledge, interval.claim)}")
    lines.append(f"- Instruments that can show a failure on their own: {', '.join(response.failure_instruments)} "
                 f"{_cite(knowledge, response.failure_claim)}")
    lines.append(f"- Loss of response: {response.loss_of_response.text} {_cite(knowledge, response.loss_of_response.claim)}")
    lines.append(f"- Non-adherence to rule out: {response.adherence_gap.explain} {_cite(knowledge, response.adherence_gap.claim)}")
    drosd = knowledge.drosd
    lines += ["", "### Dupilumab-related ocular surface disease", ""]
    lines.append(f"- Severe and persistent when: {drosd.steroid_drops.explain} {_cite(knowledge, drosd.steroid_drops.claim)}; "
                 f"or a condition {drosd.persistent_severe.explain} {_cite(knowledge, drosd.persistent_severe.claim)}")
    lines.append(f"- Condition severity read from: {'; '.join(f'{g}: ' + ', '.join(sorted(w)) for g, w in drosd.severity_words.items())} "
                 f"{_cite(knowledge, drosd.severity_claim)}")
    for grade, management in drosd.management.items():
        keep = "keep dupilumab" if management.keep_dupilumab else "stop dupilumab"
        lines.append(f"- {grade.value.capitalize()} ({keep}): {management.text} {_cite(knowledge, management.claim)}")
    for title, advice in (("While another finding replaces dupilumab", drosd.while_switching), ("Red flags", drosd.red_flags),
                          ("Pitfall", drosd.pitfall), ("Incidence", drosd.incidence)):
        lines.append(f"- {title}: {advice.text} {_cite(knowledge, advice.claim)}")
    lines.append(f"- Restart after a stop for the eyes: {drosd.restart.text} {_cite(knowledge, drosd.restart.claim)}; "
                 f"shown when {drosd.restart_window.explain} {_cite(knowledge, drosd.restart_window.claim)}")
    lines += ["", "### Advice on cards", ""]
    for key, advice in knowledge.advice.items():
        lines.append(f"- `{key}`: {advice.text} {_cite(knowledge, advice.claim)}")
    lines += ["", "### Windows", ""]
    lines.append(f"- Safety screen: {knowledge.lab_lookback.explain} {_cite(knowledge, knowledge.lab_lookback.claim)}")
    lines.append(f"- Pregnancy: {knowledge.pregnancy.explain} {_cite(knowledge, knowledge.pregnancy.claim)}")
    lines.append(f"- Smoking: {knowledge.smoking.explain} {_cite(knowledge, knowledge.smoking.claim)}")
    lines.append(f"- Results older than the window: \"{knowledge.stale_result.text}\", the agent listed but not drafted "
                 f"{_cite(knowledge, knowledge.stale_result.claim)}")
    lines.append(f"- Baseline tests: {knowledge.monitoring_windows.text} {_cite(knowledge, knowledge.monitoring_windows.claim)}")
    lines += ["", "### Treatment history", ""]
    lines.append("- An agent taken now is not offered; an agent stopped for lack of effect, loss of response or an adverse "
                 f"effect is not offered again, and the rest of its group moves down by {knowledge.failed_group_penalty:g} "
                 f"{_cite(knowledge, knowledge.history_claim)}")
    for group in sorted({o.group for o in knowledge.therapies}, key=lambda g: g.rank):
        rules = [("one agent at a time" if group.exclusive else ""),
                 (f"caution while an agent of {', '.join(sorted(group.not_combined_with))} is taken: {knowledge.combination.text} "
                  f"{_cite(knowledge, knowledge.combination.claim)}" if group.not_combined_with else ""),
                 ("taking one started after dupilumab means the switch has been made" if group.replaces_dupilumab else "")]
        if any(rules):
            lines.append(f"- {group.label}: " + "; ".join(r for r in rules if r))

    lines += ["", "## The condition language of rules", "",
              "A rule's `when` holds when every predicate in it holds (`lab` and `lab_result` may list several tests, all of "
              "which must hold). Defined in `schemas/safety.schema.json`:", "", *_predicate_rows(predicates())]
    lines += ["", "## Terminology", "", "How each concept is recognised: codes with their status and source (`*`: every code in that "
              "block), then names (case-insensitive whole words unless marked; excluded words veto a match).", ""]
    for definition in knowledge.concepts.definitions.values():
        lines.append(_concept_line(definition))
    lines += ["", "## Sources", "", "| Id | Cited as | Title | Kind | Note |", "|---|---|---|---|---|"]
    for source in knowledge.sources.values():
        title = f"[{source.title}]({source.url})" if source.url else source.title
        lines.append(f"| `{source.id}` | {source.short} | {title} | {source.kind} | {source.note or ''} |")
    return "\n".join(lines) + "\n"
