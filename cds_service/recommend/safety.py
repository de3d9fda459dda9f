"""Safety screen of one next-line agent for this patient (knowledge/safety.toml)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..knowledge import Claim, Effect, Knowledge, SafetyRule
from ..knowledge.model import fill
from .predicates import Situation, holds


@dataclass(frozen=True)
class SafetyFlag:
    rule: str
    effect: Effect
    rank_penalty: float
    reason: str  # what was found (a card's summary shows it)
    advice: str | None  # what to do about it
    evidence: str  # the resource that fired the rule, when the reason does not name it
    claim: Claim
    dose_rule: bool  # the flag is about the drafted dose, not the agent
    allows_draft: bool = True  # False: the agent is offered but never drafted

    @property
    def contraindicated(self) -> bool:
        return self.effect is Effect.CONTRAINDICATED

    @property
    def text(self) -> str:
        """The reason, what to do, and the resource behind it: every flag names the resource that fired it."""
        text = f"{self.reason}: {self.advice}" if self.advice else self.reason
        return f"{text} ({self.evidence})" if self.evidence else text


def screen_agent(agent: str, situation: Situation, knowledge: Knowledge) -> tuple[SafetyFlag, ...]:
    flags = []
    stale_situation = replace(situation, any_age=True)
    for rule in knowledge.rules_for(agent):
        facts = holds(rule.when, situation)
        if facts is None and _reads_labs(rule.when):
            stale = holds(rule.when, stale_situation)
            if stale is not None:
                flags.append(_stale_flag(rule, stale, knowledge))
            continue
        if facts is None:
            continue
        values = {"source": "", **facts}
        reason = fill(rule.reason, **values)
        flags.append(
            SafetyFlag(
                rule=rule.id,
                effect=rule.effect,
                rank_penalty=rule.rank_penalty,
                reason=reason,
                advice=fill(rule.advice, **values) if rule.advice else None,
                evidence=values["source"] if values["source"] not in reason else "",
                claim=rule.claim,
                dose_rule="ordered_dose_above_mg" in rule.when,
                allows_draft=rule.draft,
            )
        )
    # Contraindications first, then the cautions that weigh most.
    flags.sort(key=lambda f: (not f.contraindicated, -f.rank_penalty))
    return tuple(flags)


def _reads_labs(when: Any) -> bool:
    return "lab" in when or "lab_result" in when


def _stale_flag(rule: SafetyRule, facts: dict[str, str], knowledge: Knowledge) -> SafetyFlag:
    """A rule that holds only on a result older than its window: not silently dropped, but shown as a result to
    repeat before starting (the agent is listed, never drafted, until a recent result is on record)."""
    values = {"source": "", **facts}
    stale = knowledge.stale_result
    finding = fill(rule.reason, **values)
    return SafetyFlag(
        rule=rule.id,
        effect=Effect.CAUTION,
        rank_penalty=0,
        reason=fill(stale.text, finding=finding),
        advice=None,
        evidence=values["source"] if values["source"] not in finding else "",
        claim=stale.claim,
        dose_rule=False,
        allows_draft=False,
    )
