"""The patient record the rules read: FHIR data normalised into plain, immutable values.

Each entry keeps `source` ("MedicationStatement/123") so every card can show
the resources that fired it. A section whose data the client did not send
(prefetch key absent, or an OperationOutcome in its place) raises
`DataUnavailable` when read, so missing data can never pass for "no data".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Collection, Iterable, Mapping

if TYPE_CHECKING:
    from .observations import ObservationIndex, RetainedObservations


@dataclass(frozen=True)
class Coding:
    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True)
class Concept:
    """A CodeableConcept: codings plus free text."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None

    def names(self) -> tuple[str, ...]:
        found = [self.text] if self.text else []
        found.extend(c.display for c in self.codings if c.display)
        return tuple(found)

    def label(self) -> str:
        names = self.names()
        if names:
            return names[0]
        return next((c.code for c in self.codings if c.code), "unnamed")


@dataclass(frozen=True)
class ConceptMatch:
    """A knowledge-base concept an entry denotes, and how that was recognised."""

    concept: str
    how: str  # e.g. "code http://snomed.info/sct|24079001 [V]" or "name 'Dupixent' in ..."


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


@dataclass(frozen=True)
class MedicationUse(_Matched):
    """One MedicationStatement, MedicationRequest, MedicationDispense or MedicationAdministration."""

    source: str
    kind: str  # "statement" | "request" | "dispense" | "administration"
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
    observation_index: "ObservationIndex | RetainedObservations"  # the latter in a cached record
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
        self._require("Patient")
        return self.demographics_

    @property
    def conditions(self) -> tuple[ConditionEntry, ...]:
        self._require("Condition")
        return self.conditions_

    @property
    def medications(self) -> tuple[MedicationUse, ...]:
        """Statements and requests are required; dispenses and administrations are used when sent."""
        self._require("MedicationStatement", "MedicationRequest")
        return self.medications_

    @property
    def has_dispensing_data(self) -> bool:
        return "MedicationDispense" not in self.unavailable

    @property
    def observations(self) -> tuple[ObservationEntry, ...]:
        """Every Observation the rules could use, sorted by resource (reads them all)."""
        self._require("Observation")
        return self.observation_index.all()

    def observations_of(self, concepts: Iterable[str]) -> tuple[ObservationEntry, ...]:
        """The Observations denoting any of `concepts` (e.g. a score's whole series), sorted by resource."""
        self._require("Observation")
        return self.observation_index.of(concepts)

    def observations_since(self, concepts: Iterable[str], since: date) -> tuple[ObservationEntry, ...]:
        """The Observations of `concepts` from `since` on, and the latest usable one of each before it
        (a baseline), sorted by resource; the years before are not read."""
        self._require("Observation")
        return self.observation_index.baseline_and_since(concepts, since)

    def latest_final_results(self, today: date) -> dict[str, ObservationEntry]:
        """Per concept, the latest Observation with a final status (final, amended, corrected) dated up to
        `today`; of two on the same day, the larger resource label."""
        self._require("Observation")
        return self.observation_index.latest_final(today)
