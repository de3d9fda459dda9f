"""The patient record the rules read: FHIR data normalised into plain, immutable values.

Each entry keeps `source` ("MedicationStatement/123") so every card can show
the resources that fired it. A section whose data the client did not send
(prefetch key absent, or an OperationOutcome in its place) raises
`DataUnavailable` when read, so missing data can never pass for "no data".
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from ..terminology import Concept, ConceptMatch

if TYPE_CHECKING:
    from .observations import ObservationIndex


class _Matched:
    matches: tuple[ConceptMatch, ...]

    # Plain loops: the safety screen asks these tens of times per call, and entries have a match or two.
    def match_for(self, concept_id: str) -> ConceptMatch | None:
        for match in self.matches:
            if match.concept == concept_id:
                return match
        return None

    def is_a(self, concept_id: str) -> bool:
        return self.match_for(concept_id) is not None

    def is_any(self, concept_ids: Collection[str]) -> bool:
        for match in self.matches:
            if match.concept in concept_ids:
                return True
        return False


@dataclass(frozen=True)
class Demographics:
    source: str
    birth_date: date | None
    gender: str | None


class Section(enum.StrEnum):
    """The FHIR resource types the rules read: each is a prefetch key of the same name (hooks/catalog.py),
    a scope of the SMART app and a query of the FHIR-server fallback."""

    PATIENT = "Patient"
    CONDITION = "Condition"
    MEDICATION_STATEMENT = "MedicationStatement"
    MEDICATION_REQUEST = "MedicationRequest"
    OBSERVATION = "Observation"
    MEDICATION_DISPENSE = "MedicationDispense"
    MEDICATION_ADMINISTRATION = "MedicationAdministration"

    @property
    def optional(self) -> bool:
        """Used when sent (the course, dispensing gaps); never a reason to read the FHIR server or answer 412."""
        return self in {Section.MEDICATION_DISPENSE, Section.MEDICATION_ADMINISTRATION}

    @property
    def query(self) -> str:
        """The prefetch template, in CDS Hooks 2.0 tokens and the recommended query subset."""
        if self is Section.PATIENT:
            return "Patient/{{context.patientId}}"
        return f"{self.value}?patient={{{{context.patientId}}}}"


class MedicationKind(enum.StrEnum):
    STATEMENT = "statement"
    REQUEST = "request"
    DISPENSE = "dispense"
    ADMINISTRATION = "administration"


# The one reading of medication statuses (all four resources' value sets): statuses that say the drug was
# not taken, and statuses of a use still going on.
NOT_TAKEN_STATUSES = frozenset({"not-taken", "intended", "draft", "cancelled", "entered-in-error", "not-done", "declined", "preparation"})
ONGOING_STATUSES = frozenset({"active", "on-hold", "in-progress"})
# MedicationRequest intents that are plans or proposals, not orders.
NOT_ORDER_INTENTS = frozenset({"proposal", "plan", "directive", "option"})
# Condition statuses: active ones, and verification statuses that deny the condition.
ACTIVE_CONDITION_STATUSES = frozenset({"active", "recurrence", "relapse"})
NOT_TRUE_VERIFICATIONS = frozenset({"refuted", "entered-in-error"})


@dataclass(frozen=True)
class MedicationUse(_Matched):
    """One MedicationStatement, MedicationRequest, MedicationDispense or MedicationAdministration."""

    source: str
    kind: MedicationKind
    medication: Concept
    matches: tuple[ConceptMatch, ...]
    status: str | None
    start: date | None
    end: date | None
    recorded: date | None
    status_reasons: tuple[Concept, ...] = ()
    reasons: tuple[Concept, ...] = ()
    intent: str | None = None
    route: str | None = None
    dose_text: str | None = None
    dose_mg: float | None = None
    days_supply: float | None = None
    interval_days: float | None = None  # days between doses, from the dosage timing or text

    @property
    def taken(self) -> bool:
        """The record says the drug was (or is being) taken: not a plan, a refusal or a mistake."""
        if self.status in NOT_TAKEN_STATUSES:
            return False
        return not (self.kind is MedicationKind.REQUEST and self.intent in NOT_ORDER_INTENTS)

    @property
    def ongoing(self) -> bool:
        return self.status in ONGOING_STATUSES

    def in_force(self, today: date) -> bool:
        """A statement or request of a use still going on today (dispenses and administrations are events)."""
        return self.kind in {MedicationKind.STATEMENT, MedicationKind.REQUEST} and self.ongoing and (self.end is None or self.end > today)

    def last_day(self, today: date) -> date | None:
        """The last day of use up to today: its end, today while ongoing, else its start."""
        if self.start is None:
            return None
        return min(self.end or (today if self.ongoing else self.start), today)


@dataclass(frozen=True)
class ConditionEntry(_Matched):
    source: str
    code: Concept
    matches: tuple[ConceptMatch, ...]
    clinical_status: str | None
    verification_status: str | None
    onset: date | None
    abatement: date | None
    recorded: date | None
    severity: Concept | None = None
    body_site: tuple[str, ...] = ()  # names of bodySite, read as context when matching the code

    @property
    def began(self) -> date | None:
        """When it began: its onset, else the date it was recorded."""
        return self.onset or self.recorded

    @property
    def asserted(self) -> bool:
        """Not refuted and not entered in error."""
        return self.verification_status not in NOT_TRUE_VERIFICATIONS

    @property
    def active(self) -> bool:
        """Asserted and active, recurring or relapsed; without a clinical status, active unless it has abated."""
        if not self.asserted:
            return False
        if self.clinical_status is None:
            return self.abatement is None
        return self.clinical_status in ACTIVE_CONDITION_STATUSES


@dataclass(frozen=True)
class ObservationEntry(_Matched):
    source: str
    code: Concept
    matches: tuple[ConceptMatch, ...]
    status: str | None
    effective: date | None
    value: float | None  # scores as recorded; labs and vitals in the concept's canonical unit
    unit: str | None  # the unit of `value`
    result: str | None = None  # qualitative tests: positive | negative | indeterminate
    value_date: date | None = None  # observations whose value is a date (an estimated delivery date)


@dataclass(frozen=True)
class DraftOrder(_Matched):
    """An unsigned order from the order-select / order-sign context."""

    source: str  # "MedicationRequest/abc"
    resource_type: str
    medication: Concept | None
    matches: tuple[ConceptMatch, ...]
    selected: bool
    dose_mg: float | None = None
    dose_text: str | None = None


class DataUnavailable(Exception):
    """The rules need a section the client did not send and the service could not read."""

    def __init__(self, sections: frozenset[str], reasons: Mapping[str, str]):
        self.sections = sections
        self.reasons = dict(reasons)
        super().__init__(", ".join(sorted(sections)))


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    demographics_: Demographics | None
    conditions_: tuple[ConditionEntry, ...]
    medications_: tuple[MedicationUse, ...]
    observation_index: ObservationIndex
    draft_orders: tuple[DraftOrder, ...] = ()
    # section name (FHIR resource type) -> why it is unavailable
    unavailable: Mapping[str, str] = field(default_factory=dict)
    notes_: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """What was tolerated or ignored while reading the record (reads every Observation)."""
        return (*self.notes_, *self.observation_index.notes())

    def _require(self, *sections: str) -> None:
        missing = frozenset(s for s in sections if s in self.unavailable)
        if missing:
            raise DataUnavailable(missing, {s: self.unavailable[s] for s in missing})

    @property
    def demographics(self) -> Demographics | None:
        self._require(Section.PATIENT)
        return self.demographics_

    @property
    def conditions(self) -> tuple[ConditionEntry, ...]:
        self._require(Section.CONDITION)
        return self.conditions_

    @property
    def medications(self) -> tuple[MedicationUse, ...]:
        """Statements and requests are required; dispenses and administrations are used when sent."""
        self._require(Section.MEDICATION_STATEMENT, Section.MEDICATION_REQUEST)
        return self.medications_

    @property
    def has_dispensing_data(self) -> bool:
        return Section.MEDICATION_DISPENSE not in self.unavailable

    @property
    def observations(self) -> tuple[ObservationEntry, ...]:
        """Every Observation the rules could use, sorted by resource (reads them all)."""
        self._require(Section.OBSERVATION)
        return self.observation_index.all()

    def observations_of(self, concepts: Iterable[str]) -> tuple[ObservationEntry, ...]:
        """The Observations denoting any of `concepts` (e.g. a score's whole series), sorted by resource."""
        self._require(Section.OBSERVATION)
        return self.observation_index.of(concepts)

    def observations_since(self, concepts: Iterable[str], since: date) -> tuple[ObservationEntry, ...]:
        """The Observations of `concepts` from `since` on, and the latest usable one of each before it
        (a baseline), sorted by resource; the years before are not read."""
        self._require(Section.OBSERVATION)
        return self.observation_index.baseline_and_since(concepts, since)

    def latest_final_results(self, today: date) -> dict[str, ObservationEntry]:
        """Per concept, the latest Observation with a final status (final, amended, corrected) dated up to
        `today`; of two on the same day, the larger resource label."""
        self._require(Section.OBSERVATION)
        return self.observation_index.latest_final(today)
