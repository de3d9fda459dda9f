"""The patient's dupilumab course, from MedicationStatement and MedicationRequest."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..record.model import Concept, MedicationUse, PatientRecord

DUPILUMAB = "dupilumab"

# Statuses that say nothing about the drug having been taken.
_NOT_EXPOSURE = {"not-taken", "intended", "draft", "cancelled", "entered-in-error"}
# Request intents that are plans or proposals, not orders.
_NOT_ORDERS = {"proposal", "plan", "directive", "option"}
_ONGOING = {"active", "on-hold"}


@dataclass(frozen=True)
class DupilumabCourse:
    start: date
    end: date | None  # None while ongoing
    end_recorded: bool  # False: stopped, but only a lower bound of the end date is known
    records: tuple[MedicationUse, ...]
    stop_reasons: tuple[Concept, ...]

    @property
    def ongoing(self) -> bool:
        return self.end is None

    def weeks_on_drug(self, today: date) -> float:
        return ((self.end or today) - self.start).days / 7

    def on_drug(self, day: date) -> bool:
        return self.start < day and (self.end is None or day <= self.end)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(r.source for r in self.records)


def exposure_records(record: PatientRecord) -> tuple[MedicationUse, ...]:
    """Medication records showing the patient actually had dupilumab."""
    return tuple(
        use
        for use in record.medications
        if use.is_a(DUPILUMAB)
        and use.status not in _NOT_EXPOSURE
        and not (use.kind == "request" and use.intent in _NOT_ORDERS)
    )


def find_dupilumab_course(record: PatientRecord, today: date) -> DupilumabCourse | None:
    """One course from the earliest recorded start to the latest end, or ongoing.

    Records without any start date cannot place the course in time and are left out.
    """
    uses = [u for u in exposure_records(record) if u.start is not None]
    if not uses:
        return None
    start = min(u.start for u in uses)  # type: ignore[type-var]
    ongoing = any(u.status in _ONGOING and (u.end is None or u.end > today) for u in uses)
    stop_reasons = tuple(r for u in uses for r in u.status_reasons)
    if ongoing:
        return DupilumabCourse(start, None, True, tuple(uses), stop_reasons)
    ends = [u.end for u in uses if u.end is not None]
    if ends:
        return DupilumabCourse(start, max(ends), True, tuple(uses), stop_reasons)
    # Stopped without an end date: the latest date on record is a lower bound.
    known = [d for u in uses for d in (u.start, u.recorded) if d is not None]
    return DupilumabCourse(start, max(known), False, tuple(uses), stop_reasons)
