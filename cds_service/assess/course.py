"""The patient's dupilumab course: MedicationStatement, MedicationRequest, and MedicationDispense /
MedicationAdministration when the client sends them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

from ..knowledge import Knowledge, vocabulary
from ..knowledge.concepts import ConceptKind
from ..record.model import MedicationKind, MedicationUse, PatientRecord


class StopReasonKind(enum.StrEnum):
    OCULAR = "ocular"
    ADVERSE = "adverse"
    LOSS_OF_RESPONSE = "loss-of-response"
    INEFFICACY = "inefficacy"


# Stop-reason concepts (knowledge/concepts.toml, kind "stop-reason") -> what they mean here.
STOP_REASON_KINDS = {
    vocabulary.STOP_OCULAR: StopReasonKind.OCULAR,
    vocabulary.STOP_ADVERSE: StopReasonKind.ADVERSE,
    vocabulary.STOP_LOSS_OF_RESPONSE: StopReasonKind.LOSS_OF_RESPONSE,
    vocabulary.STOP_INEFFICACY: StopReasonKind.INEFFICACY,
}


@dataclass(frozen=True)
class StopReason:
    kind: StopReasonKind
    text: str
    source: str


@dataclass(frozen=True)
class DispensingGap:
    after: str  # the dispense whose supply ran out
    before: str  # the next dispense
    supply_end: date
    next_dispense: date

    @property
    def days(self) -> int:
        return (self.next_dispense - self.supply_end).days


@dataclass(frozen=True)
class StretchedInterval:
    """Dupilumab recorded at a longer interval than labelled for an adult."""

    interval_days: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class DupilumabCourse:
    start: date
    end: date | None  # None while ongoing
    end_recorded: bool  # False: stopped, but only a lower bound of the end date is known
    records: tuple[MedicationUse, ...]
    stop_reasons: tuple[StopReason, ...]

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def weeks_on_drug(self, today: date) -> float:
        return ((self.end or today) - self.start).days / 7

    def on_drug(self, day: date) -> bool:
        return self.start < day and (self.end is None or day <= self.end)

    def during(self, day: date, today: date) -> bool:
        """After the start and no later than the end (or today): when an adverse event can be the drug's."""
        return self.start < day <= (self.end or today)

    def stopped_for(self, *kinds: StopReasonKind) -> tuple[StopReason, ...]:
        return tuple(r for r in self.stop_reasons if r.kind in kinds)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.source for r in self.records))


def exposure_records(record: PatientRecord) -> tuple[MedicationUse, ...]:
    """Medication records showing the patient actually had dupilumab."""
    return tuple(use for use in record.medications if use.is_a(vocabulary.DUPILUMAB) and use.taken)


def _end_of(use: MedicationUse) -> date | None:
    if use.end is not None:
        return use.end
    if use.kind is MedicationKind.DISPENSE and use.start and use.days_supply:
        return use.start + timedelta(days=int(use.days_supply))
    return None


def find_dupilumab_course(record: PatientRecord, today: date, knowledge: Knowledge) -> DupilumabCourse | None:
    """One course from the earliest recorded start to the latest end, or ongoing.

    Records without any start date cannot place the course in time and are left out.
    """
    uses = [u for u in exposure_records(record) if u.start is not None]
    starts = [u.start for u in uses if u.start is not None]
    if not starts:
        return None
    start = min(starts)
    reasons = stop_reasons_of(uses, knowledge)
    if any(u.in_force(today) for u in uses):
        return DupilumabCourse(start, None, True, tuple(uses), reasons)
    ends = [e for e in (_end_of(u) for u in uses) if e is not None]
    if ends:
        return DupilumabCourse(start, min(max(ends), today), True, tuple(uses), reasons)
    # Stopped without an end date: the latest date on record is a lower bound.
    known = [d for u in uses for d in (u.start, u.recorded) if d is not None]
    return DupilumabCourse(start, max(known), False, tuple(uses), reasons)


def stop_reasons_of(uses: list[MedicationUse], knowledge: Knowledge) -> tuple[StopReason, ...]:
    found: list[StopReason] = []
    for use in uses:
        for concept in use.status_reasons:
            for match in knowledge.concepts.match(concept, ConceptKind.STOP_REASON):
                found.append(StopReason(STOP_REASON_KINDS[match.concept], concept.label(), use.source))
    return tuple(dict.fromkeys(found))


def dispensing_gaps(course: DupilumabCourse, knowledge: Knowledge) -> tuple[DispensingGap, ...]:
    """Gaps between the end of one dispensed supply and the next dispense, as long as the knowledge base's threshold."""
    dispenses = sorted(
        (u for u in course.records if u.kind is MedicationKind.DISPENSE and u.start and u.days_supply), key=lambda u: (u.start, u.source)
    )
    gaps = []
    for earlier, later in zip(dispenses, dispenses[1:], strict=False):
        assert earlier.start and earlier.days_supply and later.start  # dispenses were chosen with both
        supply_end = earlier.start + timedelta(days=int(earlier.days_supply))
        gap = DispensingGap(earlier.source, later.source, supply_end, later.start)
        if gap.days >= knowledge.response.adherence_gap.value:
            gaps.append(gap)
    return tuple(gaps)


def stretched_interval(course: DupilumabCourse, age_years: int | None, knowledge: Knowledge) -> StretchedInterval | None:
    """The latest recorded dosing interval, when longer than the labelled adult one and the patient is an
    adult (younger patients may be labelled at a longer interval by weight)."""
    labelled = knowledge.response.dupilumab_interval
    if age_years is None or age_years < labelled.adult_age_years:
        return None
    dated = [u for u in course.records if u.interval_days and (u.start or u.recorded)]
    if not dated:
        return None
    latest = max(dated, key=lambda u: (u.start or u.recorded, u.source))
    if latest.interval_days is None or latest.interval_days <= labelled.weeks * 7:
        return None
    same = tuple(u.source for u in dated if u.interval_days == latest.interval_days)
    return StretchedInterval(latest.interval_days, same)
