"""What the app shows, built from the structured answer of the same engine as the CDS service.

The page shows each thing once: the cards as the EHR shows them (summary and short detail), the timeline,
the full ranked plan (from the NextLinePlan), then the rules applied and their sources. The strength of
each claim is said in words (Knowledge.evidence), which a legend explains once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from markdown_it import MarkdownIt

from ..assess.findings import Assessment, FindingKind
from ..knowledge import Knowledge
from ..knowledge.model import Claim, WarningKind
from ..recommend.ranking import NextLinePlan, RankedOption
from ..recommend.safety import rank_penalty
from ..record.model import PatientRecord
from .timeline import Timeline, build_timeline

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")  # FHIR text is data: never raw HTML
# A card's table scrolls inside its own box rather than widening a narrow panel.
_MARKDOWN.add_render_rule("table_open", lambda *_: '<div class="table-scroll" tabindex="0" role="region" aria-label="Table"><table>\n')
_MARKDOWN.add_render_rule("table_close", lambda *_: "</table></div>\n")


@dataclass(frozen=True)
class Cited:
    """A statement with the strength of its evidence in words."""

    text: str
    evidence: str


@dataclass(frozen=True)
class Banner:
    name: str
    birth_date: str | None
    age: str | None
    gender: str | None


@dataclass(frozen=True)
class OptionView:
    rank: int
    label: str
    drug_class: str
    place: str  # why it stands where it does
    dose: Cited | None
    after_dupilumab: Cited | None
    cautions: tuple[Cited, ...]
    drafted: bool  # the card carries a draft order for it


@dataclass(frozen=True)
class NotOffered:
    label: str
    why: str
    evidence: str


@dataclass(frozen=True)
class PlanView:
    why_this_order: tuple[Cited, ...]
    offered: tuple[OptionView, ...]
    warnings: tuple[Cited, ...]  # boxed (US) or special (EU) warnings of the offered agents, once each
    excluded: tuple[NotOffered, ...]
    not_assessed: str | None


@dataclass(frozen=True)
class SourceView:
    title: str
    kind: str
    url: str | None


@dataclass
class CourseView:
    view_id: str
    banner: Banner
    today: date
    timeline: Timeline
    cards: list[dict[str, Any]]
    plan: PlanView | None
    rules: list[Cited]
    sources: list[SourceView]
    legend: str  # what the evidence words mean
    reasoning: list[str]
    unread: dict[str, str]  # optional resource types that could not be read, and why
    focus: str | None = None  # the anchor of the card the app was opened from
    topic_note: str | None = None  # said when that card is not on the page


class _Citations:
    """Builds Cited statements and remembers every source they rest on, in first-use order."""

    def __init__(self, knowledge: Knowledge):
        self.knowledge = knowledge
        self.sources: dict[str, None] = {}

    def __call__(self, text: str, claim: Claim) -> Cited:
        self.sources.update(dict.fromkeys(claim.sources))
        return Cited(text, self.knowledge.evidence(claim))


def card_html(markdown: str) -> str:
    return _MARKDOWN.render(markdown)


def banner(patient: dict[str, Any], record: PatientRecord, assessment: Assessment, today: date) -> Banner:
    demographics = record.demographics_
    born = demographics.birth_date if demographics else None
    age = assessment.patient.age_years if assessment.patient else None  # the age the rules used
    if age is None and born is not None:  # no finding, so no patient factors: count it here
        age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    birth = born.isoformat() if born else None
    gender = demographics.gender.capitalize() if demographics and demographics.gender else None
    return Banner(_name(patient), birth, f"{age} years" if age is not None else None, gender)


def _name(patient: dict[str, Any]) -> str:
    """The official (else usual, else first) HumanName: its text, else given names and family name."""
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    if not names:
        return "Name not recorded"
    name = next((n for use in ("official", "usual") for n in names if n.get("use") == use), names[0])
    if isinstance(name.get("text"), str) and name["text"].strip():
        return name["text"].strip()
    given = [g for g in name.get("given") or () if isinstance(g, str)]
    family = name.get("family")
    return " ".join([*given, family if isinstance(family, str) else ""]).strip() or "Name not recorded"


def plan_view(plan: NextLinePlan, knowledge: Knowledge, cite: _Citations) -> PlanView:
    region = knowledge.regions[plan.region]
    groups = sorted({o.group_rank for o in knowledge.therapies})
    ranking = knowledge.ranking
    warnings: dict[tuple[str, str], Cited] = {}
    for ranked in plan.offered:
        named = knowledge.boxed_on_cards.get(ranked.option.rank_group)  # the groups whose warnings are stated
        if named is None:
            continue
        for warning in ranked.option.warnings:
            if warning.kind in (WarningKind.BOXED, WarningKind.SPECIAL) and warning.stated_in(plan.region):
                kind = "Boxed warning" if warning.kind is WarningKind.BOXED else "Special warning"
                warnings.setdefault((named.label, warning.text), cite(f"{kind} ({named.label}): {warning.text}", warning.claim))
    return PlanView(
        why_this_order=(cite(ranking.guideline.text, ranking.guideline.claim), cite(ranking.order.text, ranking.order.claim)),
        offered=tuple(_option(ranked, groups, cite) for ranked in plan.offered),
        warnings=tuple(warnings.values()),
        excluded=tuple(NotOffered(e.option.label, e.reason,
                                  cite(e.reason, e.approval.claim).evidence if e.approval else "")
                       for e in plan.excluded),
        not_assessed=knowledge.cards.text("plan", "not_assessed", region=region.name, regulator=region.regulator,
                                          agents=", ".join(o.label for o in plan.not_assessed)) if plan.not_assessed else None,
    )


def _option(ranked: RankedOption, groups: list[int], cite: _Citations) -> OptionView:
    option = ranked.option
    place = f"{option.group.label}: group {groups.index(option.group_rank) + 1} of {len(groups)} in this service's order"
    moved = [f.reason for f in ranked.flags if f.rank_penalty > 0]
    if ranked.score - option.group_rank - rank_penalty(ranked.flags) > 0:  # the rest of the score is the history's
        moved.insert(0, "an agent of its group did not serve this patient")
    if moved:
        place += "; moved down: " + "; ".join(moved)
    # the cautions before the flags are eligibility and history texts; each flag has its own evidence
    unflagged = ranked.cautions[: len(ranked.cautions) - len(ranked.flags)]
    cautions = [Cited(c, "") for c in unflagged]
    cautions += [cite(f"{f.reason}: {f.advice}" if f.advice else f.reason, f.claim) for f in ranked.flags]
    dose = ranked.approval.dose
    return OptionView(
        rank=ranked.rank, label=option.label, drug_class=option.drug_class, place=place,
        dose=cite(dose.text, dose.claim) if dose else None,
        after_dupilumab=cite(option.evidence.text, option.evidence.claim) if option.evidence else None,
        cautions=tuple(cautions), drafted=ranked.orderable,
    )


def rules_applied(assessment: Assessment, knowledge: Knowledge, cite: _Citations) -> list[Cited]:
    """The rules behind the findings on this page, each once."""
    response = knowledge.response
    rules: dict[str, Cited] = {}

    def add(text: str, claim: Claim) -> None:
        rules.setdefault(text, cite(text, claim))

    if assessment.findings:
        add(f"Adequate trial: {response.adequate_trial.explain}", response.adequate_trial.claim)
    for finding in assessment.findings:
        for result in finding.response.instruments:
            add(f"Response: {result.criterion.explain}", result.criterion.claim)
        if finding.kind is FindingKind.LOSS_OF_RESPONSE:
            add(f"Loss of response: {response.loss_of_response.text}", response.loss_of_response.claim)
        if finding.partial_response:
            add("Partial response: improved from baseline, yet short of the response criterion", response.partial_response.claim)
        if any(r.old_baseline is not None for r in finding.response.instruments):
            add(f"Baseline: {response.baseline_window.explain}", response.baseline_window.claim)
        if finding.gaps:
            add(f"Adherence: {response.adherence_gap.explain}", response.adherence_gap.claim)
        if finding.ocular is not None and finding.kind is FindingKind.OCULAR_SURFACE_DISEASE:
            management = knowledge.drosd.management[finding.ocular.grade]
            add(f"Eye disease on dupilumab, graded {finding.ocular.grade.value}: {management.text}", management.claim)
        if finding.kind is FindingKind.HEAD_NECK_DERMATITIS:
            advice = knowledge.advice["head_neck_definition"]
            add(f"Head-and-neck dermatitis: {advice.text}", advice.claim)
    return list(rules.values())


def build_view(record: PatientRecord, assessment: Assessment, cards: list[dict[str, Any]], plan: NextLinePlan | None,
               knowledge: Knowledge, today: date, *, patient: dict[str, Any], view_id: str, topic: str | None = None,
               unread: dict[str, str] | None = None) -> CourseView:
    cite = _Citations(knowledge)
    shown = []
    focus = None
    for card in cards:
        code = str(card.get("source", {}).get("topic", {}).get("code", ""))
        anchor = f"topic-{code}" if re.fullmatch(r"[a-z0-9-]{1,64}", code) else None
        if topic is not None and code == topic and focus is None:
            focus = anchor
        shown.append({**card, "detail_html": card_html(card.get("detail", "")), "anchor": anchor,
                      "focused": anchor is not None and anchor == focus})
    topic_note = None
    if topic is not None and focus is None and topic in knowledge.cards.topics:
        topic_note = (f"You opened the app from a card about \u201c{knowledge.cards.topics[topic]}\u201d; "
                      "the record as read now gives no such card.")
    plan_shown = plan_view(plan, knowledge, cite) if plan is not None else None
    rules = rules_applied(assessment, knowledge, cite)
    words = knowledge.cards.templates["evidence"]  # a source's kind in the words the evidence is named by
    sources = [SourceView(s.title, words.get(s.kind, s.kind), s.url)
               for s in (knowledge.sources[i] for i in cite.sources if i in knowledge.sources)]
    return CourseView(
        view_id=view_id,
        banner=banner(patient, record, assessment, today),
        today=today,
        timeline=build_timeline(record, assessment, knowledge, today),
        cards=shown,
        plan=plan_shown,
        rules=rules,
        sources=sources,
        legend=knowledge.cards.text("evidence", "legend"),
        reasoning=list(assessment.reasoning),
        unread=dict(unread or {}),
        focus=focus,
        topic_note=topic_note,
    )

