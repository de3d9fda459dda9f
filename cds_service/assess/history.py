"""The next-line agents this patient takes or has taken: none is suggested again unthinkingly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..knowledge import Knowledge
from ..record.model import PatientRecord
from .course import StopReason, StopReasonKind, stop_reasons_of

# A stop for one of these means the agent did not serve the patient: it is not suggested again.
FAILED = (StopReasonKind.INEFFICACY, StopReasonKind.LOSS_OF_RESPONSE, StopReasonKind.ADVERSE, StopReasonKind.OCULAR)


@dataclass(frozen=True)
class AgentUse:
    """One next-line agent as the medication records show it: from its first start to its last day."""

    agent: str  # option id of knowledge/therapies.toml
    sources: tuple[str, ...]
    start: date | None
    end: date | None  # None while taken now
    stop_reasons: tuple[StopReason, ...]

    @property
    def taken_now(self) -> bool:
        return self.end is None

    @property
    def failed(self) -> tuple[StopReason, ...]:
        return () if self.taken_now else tuple(r for r in self.stop_reasons if r.kind in FAILED)

    def describe(self) -> str:
        start = self.start.isoformat() if self.start else "an unrecorded date"
        when = f"since {start}" if self.taken_now else f"{start} to {self.end.isoformat() if self.end else 'an unrecorded date'}"
        reasons = "; ".join(f'stopped for "{r.text}"' for r in self.stop_reasons)
        return f"{self.agent} {when}{', ' + reasons if reasons else ''}"


@dataclass(frozen=True)
class TreatmentHistory:
    uses: tuple[AgentUse, ...] = ()

    def of(self, agent: str) -> AgentUse | None:
        return next((u for u in self.uses if u.agent == agent), None)

    @property
    def taken_now(self) -> tuple[AgentUse, ...]:
        return tuple(u for u in self.uses if u.taken_now)


def treatment_history(record: PatientRecord, today: date, knowledge: Knowledge) -> TreatmentHistory:
    """Per next-line agent with a drug concept of its id, the records that show it was taken."""
    history = []
    for option in knowledge.therapies:
        uses = [u for u in record.medications if u.is_a(option.id) and u.taken]
        if not uses:
            continue
        starts = [u.start for u in uses if u.start is not None]
        ongoing = any(u.in_force(today) for u in uses)
        ends = [d for u in uses if (d := u.last_day(today) or u.recorded) is not None]
        history.append(AgentUse(
            agent=option.id,
            sources=tuple(dict.fromkeys(u.source for u in uses)),
            start=min(starts) if starts else None,
            end=None if ongoing else (max(ends) if ends else today),
            stop_reasons=() if ongoing else stop_reasons_of(uses, knowledge),
        ))
    return TreatmentHistory(tuple(history))
