"""Safety screen of one next-line agent for this patient (knowledge/safety.toml)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..knowledge import Advice, Claim, Effect, Knowledge, SafetyRule
from ..knowledge.model import fill
from .predicates import Situation, holds


@dataclass(frozen=True)
class SafetyFlag:
    rule: str
    effect: Effect
    rank_penalty: float
    reason: str  # what was found (a card's summary shows it)
    advice: str | None  # what to do about it
    evidence: str  # what fired the rule (a condition, a result's date), when the reason does not name it
    claim: Claim
    dose_rule: bool  # the flag is about the drafted dose, not the agent
    allows_draft: bool = True  # False: the agent is offered but never drafted
    dose_limit_mg: float | None = None  # a dose rule's highest dose: a replacement order must not exceed it
    penalty_group: str | None = None  # flags of one group move the agent down once (the largest penalty)

    @property
    def contraindicated(self) -> bool:
        return self.effect is Effect.CONTRAINDICATED

    @property
    def text(self) -> str:
        """The reason, what to do, and what fired it: every flag names the record behind it."""
        text = f"{self.reason}: {self.advice}" if self.advice else self.reason
        return f"{text} ({self.evidence})" if self.evidence else text


def screen_agent(agent: str, situation: Situation, knowledge: Knowledge) -> tuple[SafetyFlag, ...]:
    flags = []
    stale_situation = replace(situation, any_age=True)
    for rule in knowledge.rules_for(agent, situation.region):
        facts = holds(rule.when, situation)
        if facts is not None:
            flags.append(_flag(rule, facts))
        elif _reads_labs(rule.when):
            stale = holds(rule.when, stale_situation)
            if stale is not None:
                flags.append(_flag(rule, stale, knowledge.stale_result))
    # A dose rule on a drafted order says what a caution on the same finding says, and more: keep the dose rule.
    dose_findings = {f.reason for f in flags if f.dose_rule}
    flags = [f for f in flags if f.dose_rule or f.contraindicated or f.reason not in dose_findings]
    # Contraindications first, then the cautions that weigh most.
    flags.sort(key=lambda f: (not f.contraindicated, -f.rank_penalty))
    return tuple(flags)


def _reads_labs(when: Any) -> bool:
    return "lab" in when or "lab_result" in when


def _flag(rule: SafetyRule, facts: dict[str, str], stale: Advice | None = None) -> SafetyFlag:
    """The flag of a rule that holds on these facts. With `stale`, it holds only on a result older than its
    window: not silently dropped, but shown as a result to repeat before starting (a caution, never drafted,
    until a recent result is on record)."""
    values = {"source": "", **facts}
    finding = fill(rule.reason, **values)
    evidence = values["source"] if values["source"] not in finding else ""
    if stale is not None:
        return SafetyFlag(rule.id, Effect.CAUTION, 0, fill(stale.text, finding=finding), None, evidence, stale.claim,
                          dose_rule=False, allows_draft=False)
    return SafetyFlag(
        rule=rule.id,
        effect=rule.effect,
        rank_penalty=rule.rank_penalty,
        reason=finding,
        advice=fill(rule.advice, **values) if rule.advice else None,
        evidence=evidence,
        claim=rule.claim,
        dose_rule="ordered_dose_above_mg" in rule.when,
        allows_draft=rule.draft,
        dose_limit_mg=rule.when.get("ordered_dose_above_mg"),
        penalty_group=rule.penalty_group,
    )


def rank_penalty(flags: tuple[SafetyFlag, ...]) -> float:
    """How far the flags move an agent down: each flag's penalty, except that a penalty group counts once, by its
    largest (three reasons under one restriction are still one restriction)."""
    grouped: dict[str, float] = {}
    total = 0.0
    for flag in flags:
        if flag.penalty_group is None:
            total += flag.rank_penalty
        else:
            grouped[flag.penalty_group] = max(grouped.get(flag.penalty_group, 0.0), flag.rank_penalty)
    return total + sum(grouped.values())
