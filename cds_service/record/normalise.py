"""FHIR resources -> PatientRecord.

Resources are matched against the knowledge base's concepts first (a cheap
look at codes and names); only those the rules can use are checked with the
FHIR models and kept, each with the concepts it matched. Everything tolerated
or ignored along the way becomes a note, not an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..knowledge.concepts import ConceptDefinition, ConceptKind, ConceptMatcher
from ..terminology import read_text
from . import fhir_json as fj
from .model import (
    Concept,
    ConceptMatch,
    ConditionEntry,
    Demographics,
    DraftOrder,
    MedicationKind,
    MedicationUse,
    ObservationEntry,
    PatientRecord,
)
from .observations import OBSERVATION_KINDS, ObservationIndex, observation_effective

_SUBJECT_ELEMENTS = ("subject", "patient")


def build_patient_record(
    patient_id: str,
    resources: Mapping[str, list[dict[str, Any]]],
    unavailable: Mapping[str, str],
    matcher: ConceptMatcher,
    *,
    draft_orders: Any = None,
    selections: Iterable[str] | None = None,
    notes: Iterable[str] = (),
    validate: bool = False,
) -> PatientRecord:
    """`validate`: also check every resource the rules read against the FHIR R4 models and note each
    defect (slower; for diagnosis). Without it, the readers type-check each element they read."""
    reader = _Reader(patient_id, matcher, resources, validate)
    reader.notes.extend(notes)
    unavailable = dict(unavailable)

    demographics = reader.demographics(resources.get("Patient", ()))
    if demographics is None and "Patient" not in unavailable and resources.get("Patient"):
        unavailable["Patient"] = f"no usable Patient resource for Patient/{patient_id} was sent"

    conditions = tuple(reader.each(resources.get("Condition", ()), reader.condition))
    medications = (
        *reader.each(resources.get("MedicationStatement", ()), reader.medication_statement),
        *reader.each(resources.get("MedicationRequest", ()), reader.medication_request),
        *reader.each(resources.get("MedicationDispense", ()), reader.medication_dispense),
        *reader.each(resources.get("MedicationAdministration", ()), reader.medication_administration),
    )
    observations = reader.observation_index(resources.get("Observation", ()))
    orders = tuple(reader.draft_orders(draft_orders, selections))
    # Sorted by resource, so the answer does not depend on the order a client or server sent them in.
    return PatientRecord(
        patient_id=patient_id,
        demographics_=demographics,
        conditions_=tuple(sorted(conditions, key=_by_source)),
        medications_=tuple(sorted(medications, key=_by_source)),
        observation_index=observations,
        draft_orders=orders,
        unavailable=unavailable,
        notes_=tuple(reader.notes),
    )


def read_draft_orders(
    patient_id: str,
    matcher: ConceptMatcher,
    resources: Mapping[str, list[dict[str, Any]]],
    bundle: Any,
    selections: Iterable[str] | None,
) -> tuple[DraftOrder, ...]:
    """The draft orders of an order hook's context (each call brings its own)."""
    reader = _Reader(patient_id, matcher, {"Medication": resources.get("Medication", [])}, False)
    return tuple(reader.draft_orders(bundle, selections))


def _obj(value: Any) -> dict[str, Any]:
    """An element that should be an object, or {} when it is absent or malformed."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _by_source(entry: Any) -> str:
    return entry.source


class _Reader:
    def __init__(self, patient_id: str, matcher: ConceptMatcher, resources: Mapping[str, list[dict[str, Any]]], validate: bool):
        self.patient_id = patient_id
        self._own_reference = f"Patient/{patient_id}"
        self.validate = validate
        self.matcher = matcher
        self.notes: list[str] = []
        self._medications = {
            r["id"]: r for r in resources.get("Medication", ()) if isinstance(r.get("id"), str)
        }

    def each(self, raws: Iterable[dict[str, Any]], read) -> Iterable[Any]:
        for raw in raws:
            entry = read(raw)
            if entry is not None:
                yield entry

    # -- shared checks -------------------------------------------------------------------

    def _not_the_patients(self, raw: dict[str, Any]) -> str | None:
        """Why a resource is not the context patient's, or None when it is (docs/security.md, "Whose data it is"):
        its subject (or patient) must be a reference of one form, `Patient/{id}` relative or absolute (optionally
        `/_history/{version}`), naming the context patient. A resource naming no subject at all came from a
        search for this patient and is kept (Observation.subject is optional in FHIR R4)."""
        for element in _SUBJECT_ELEMENTS:
            if element not in raw:
                continue
            value = raw[element]
            reference = value.get("reference") if isinstance(value, dict) else None
            if reference == self._own_reference:
                return None  # the common case, without parsing
            named = fj.patient_reference_id(reference)
            if named is None:
                return f"its {element} is not a reference of the form Patient/{{id}}"
            return None if named == self.patient_id else f"belongs to Patient/{named}, not Patient/{self.patient_id}"
        return None

    def _belongs_to_patient(self, raw: dict[str, Any], notes: list[str] | None = None) -> bool:
        why = self._not_the_patients(raw)
        if why is not None:
            (self.notes if notes is None else notes).append(f"{fj.resource_label(raw)}: {why}; ignored")
        return why is None

    def _checked(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        if raw.get("status") == "entered-in-error" or fj.code_of(raw.get("verificationStatus")) == "entered-in-error":
            self.notes.append(f"{fj.resource_label(raw)}: entered in error; ignored")
            return None
        if not self._belongs_to_patient(raw):
            return None
        return fj.checked_resource(raw, self.notes) if self.validate else raw

    def _date(self, raw: dict[str, Any], value: Any, element: str, notes: list[str] | None = None):
        notes = self.notes if notes is None else notes
        parsed = fj.fhir_date(value)
        if parsed is None:
            if value is not None:
                notes.append(f"{fj.resource_label(raw)}: {element} is not a FHIR date; ignored")
            return None
        day, precision = parsed
        if precision != "day":
            notes.append(f"{fj.resource_label(raw)}: {element} {value} is only {precision}-precise; taken as {day.isoformat()}")
        return day

    def _matches(self, concept: Concept, kinds: Iterable[str], context: Iterable[str] = ()) -> list[ConceptMatch]:
        return self.matcher.match(concept, kinds, context)

    def _relevant(
        self, raw: dict[str, Any], match_of: Callable[[dict[str, Any]], tuple[Concept, Sequence[ConceptMatch]]]
    ) -> tuple[dict[str, Any], Concept, Sequence[ConceptMatch]] | None:
        """Match the raw resource first (cheap); check only those the rules can use, then match what survived
        (validation may have dropped a malformed code; without it the checked resource is the raw one)."""
        concept, matches = match_of(raw)
        if not matches:
            return None
        checked = self._checked(raw)
        if checked is None:
            return None
        if checked is not raw:
            concept, matches = match_of(checked)
        return (checked, concept, matches) if matches else None

    # -- Patient -------------------------------------------------------------------------

    def demographics(self, raws: Iterable[dict[str, Any]]) -> Demographics | None:
        for raw in raws:
            if raw.get("id") != self.patient_id:
                self.notes.append(f"{fj.resource_label(raw)}: prefetched Patient is not Patient/{self.patient_id}; ignored")
                continue
            checked = fj.checked_resource(raw, self.notes) if self.validate else raw
            if checked is None:
                continue
            gender = checked.get("gender") if isinstance(checked.get("gender"), str) else None
            return Demographics(
                source=fj.resource_label(checked),
                birth_date=self._date(checked, checked.get("birthDate"), "birthDate"),
                gender=gender,
            )
        return None

    # -- Condition -----------------------------------------------------------------------

    def condition(self, raw: dict[str, Any]) -> ConditionEntry | None:
        found = self._relevant(raw, lambda r: self.matcher.match_element(r.get("code"), (ConceptKind.CONDITION,), _body_site(r)))
        if found is None:
            return None
        checked, code, matches = found
        severity = fj.concept(checked.get("severity")) if checked.get("severity") else None
        return ConditionEntry(
            source=fj.resource_label(checked),
            code=code,
            matches=tuple(matches),
            clinical_status=fj.code_of(checked.get("clinicalStatus")),
            verification_status=fj.code_of(checked.get("verificationStatus")),
            onset=self._date(checked, checked.get("onsetDateTime") or _obj(checked.get("onsetPeriod")).get("start"), "onset"),
            abatement=self._date(checked, checked.get("abatementDateTime") or _obj(checked.get("abatementPeriod")).get("start"), "abatement"),
            recorded=self._date(checked, checked.get("recordedDate"), "recordedDate"),
            severity=severity,
            body_site=_body_site(checked),
        )

    # -- MedicationStatement / MedicationRequest -----------------------------------------

    def _medication_concept(self, resource: dict[str, Any]) -> Concept:
        if "medicationCodeableConcept" in resource:
            return fj.concept(resource.get("medicationCodeableConcept"))
        reference = resource.get("medicationReference")
        if not isinstance(reference, dict):
            return Concept()
        target = reference.get("reference")
        medication = None
        if isinstance(target, str) and target.startswith("#"):
            contained = resource.get("contained")
            if isinstance(contained, list):
                medication = next(
                    (c for c in contained if isinstance(c, dict) and c.get("resourceType") == "Medication" and c.get("id") == target[1:]),
                    None,
                )
        else:
            found = fj.reference_target(reference)
            if found and found[0] == "Medication":
                medication = self._medications.get(found[1])
        concept = fj.concept(medication.get("code")) if medication else Concept()
        display = reference.get("display")
        if isinstance(display, str) and display:
            concept = Concept(codings=concept.codings, text=concept.text or display)
        return concept

    def _medication_match(self, resource: dict[str, Any]) -> tuple[Concept, Sequence[ConceptMatch]]:
        if "medicationCodeableConcept" in resource:  # the common case: matched once per distinct element
            return self.matcher.match_element(resource["medicationCodeableConcept"], (ConceptKind.DRUG,), _medication_context(resource))
        concept = self._medication_concept(resource)
        return concept, self._matches(concept, (ConceptKind.DRUG,), _medication_context(resource))

    def _medication_use(self, raw: dict[str, Any], kind: MedicationKind, fields: Callable[[dict[str, Any]], dict[str, Any]]) -> MedicationUse | None:
        found = self._relevant(raw, self._medication_match)
        if found is None:
            return None
        checked, medication, matches = found
        return MedicationUse(
            source=fj.resource_label(checked),
            kind=kind,
            medication=medication,
            matches=tuple(matches),
            status=checked.get("status") if isinstance(checked.get("status"), str) else None,
            **fields(checked),
        )

    def medication_statement(self, raw: dict[str, Any]) -> MedicationUse | None:
        def fields(checked: dict[str, Any]) -> dict[str, Any]:
            period = _obj(checked.get("effectivePeriod"))
            return {
                "start": self._date(checked, period.get("start") or checked.get("effectiveDateTime"), "effective start"),
                "end": self._date(checked, period.get("end"), "effective end"),
                "recorded": self._date(checked, checked.get("dateAsserted"), "dateAsserted"),
                "status_reasons": fj.concepts(checked.get("statusReason")),
                "reasons": fj.concepts(checked.get("reasonCode")),
                **_dosage_details(checked.get("dosage")),
            }

        return self._medication_use(raw, MedicationKind.STATEMENT, fields)

    def medication_request(self, raw: dict[str, Any]) -> MedicationUse | None:
        def fields(checked: dict[str, Any]) -> dict[str, Any]:
            bounds = _first_bounds_period(checked.get("dosageInstruction"))
            validity = _obj(_obj(checked.get("dispenseRequest")).get("validityPeriod"))
            authored = checked.get("authoredOn")
            return {
                "start": self._date(checked, bounds.get("start") or validity.get("start") or authored, "start"),
                "end": self._date(checked, bounds.get("end") or validity.get("end"), "end"),
                "recorded": self._date(checked, authored, "authoredOn"),
                "status_reasons": fj.concepts(checked.get("statusReason")),
                "reasons": fj.concepts(checked.get("reasonCode")),
                "intent": checked.get("intent") if isinstance(checked.get("intent"), str) else None,
                **_dosage_details(checked.get("dosageInstruction")),
            }

        return self._medication_use(raw, MedicationKind.REQUEST, fields)

    def medication_dispense(self, raw: dict[str, Any]) -> MedicationUse | None:
        def fields(checked: dict[str, Any]) -> dict[str, Any]:
            handed = self._date(checked, checked.get("whenHandedOver") or checked.get("whenPrepared"), "whenHandedOver")
            return {
                "start": handed,
                "end": None,
                "recorded": handed,
                "status_reasons": fj.concepts(checked.get("statusReasonCodeableConcept")),
                "days_supply": fj.number(_obj(checked.get("daysSupply")).get("value")),
                **_dosage_details(checked.get("dosageInstruction")),
            }

        return self._medication_use(raw, MedicationKind.DISPENSE, fields)

    def medication_administration(self, raw: dict[str, Any]) -> MedicationUse | None:
        def fields(checked: dict[str, Any]) -> dict[str, Any]:
            period = _obj(checked.get("effectivePeriod"))
            given = self._date(checked, checked.get("effectiveDateTime") or period.get("start"), "effective")
            dosage = _obj(checked.get("dosage"))
            return {
                "start": given,
                "end": given,
                "recorded": given,
                "status_reasons": fj.concepts(checked.get("statusReason")),
                "reasons": fj.concepts(checked.get("reasonCode")),
                "route": _text_of(dosage.get("route")),
                "dose_text": read_text(dosage.get("text")),
                "dose_mg": _mg(dosage.get("dose")),
            }

        return self._medication_use(raw, MedicationKind.ADMINISTRATION, fields)

    # -- Observation ---------------------------------------------------------------------

    def observation_index(self, raws: Iterable[dict[str, Any]]) -> ObservationIndex:
        """Observations are the bulk of a record: they are matched by their code element (once per distinct
        code) and read when the rules ask (record/observations.py)."""
        definitions = self.matcher.definitions
        return ObservationIndex(
            raws,
            lambda code: self.matcher.match_element(code, OBSERVATION_KINDS),
            frozenset(d.id for d in definitions.values() if d.kind is ConceptKind.SCORE),
            self.observation,
            lambda raw: self._not_the_patients(raw) is not None,
        )

    def observation(self, raw: dict[str, Any], code: Concept, matches: tuple[ConceptMatch, ...], notes: list[str]) -> ObservationEntry | None:
        """One Observation already matched by its code, read with type-checked accessors (no model
        validation); a malformed element is noted and treated as absent."""
        if raw.get("status") == "entered-in-error":
            notes.append(f"{fj.resource_label(raw)}: entered in error; ignored")
            return None
        if not self._belongs_to_patient(raw, notes):
            return None
        label = fj.resource_label(raw)
        raw_value, raw_unit = _observation_value(raw)
        kept: list[ConceptMatch] = []
        value, unit = raw_value, raw_unit
        for match in matches:
            definition = self.matcher.definitions[match.concept]
            if definition.kind is ConceptKind.SCORE:
                low, high = definition.value_range or (float("-inf"), float("inf"))
                if raw_value is None or not low <= raw_value <= high or not definition.accepts_unit(raw_unit):
                    shown = "no numeric value" if raw_value is None else f"value {raw_value:g} {raw_unit or ''}".rstrip()
                    notes.append(f"{label}: looks like {definition.label} but has {shown}; ignored")
                    continue
            elif definition.canonical_unit is not None:
                converted = definition.convert(raw_value, raw_unit)
                if converted is None and raw_value is not None:
                    notes.append(f"{label}: {definition.label} in unit {raw_unit!r} cannot be compared with thresholds")
                value, unit = converted, (definition.canonical_unit if converted is not None else raw_unit)
            kept.append(match)
        if not kept:
            return None
        status = raw.get("status")
        return ObservationEntry(
            source=label,
            code=code,
            matches=tuple(kept),
            status=status if isinstance(status, str) else None,
            effective=self._date(raw, observation_effective(raw), "effective", notes),
            value=value,
            unit=unit,
            result=_qualitative_result(raw, [d for m in kept if (d := self.matcher.definitions[m.concept]).qualitative]),
            value_date=self._date(raw, raw.get("valueDateTime"), "valueDateTime", notes)
            if any(self.matcher.definitions[m.concept].dated for m in kept) else None,
        )

    # -- draft orders (order-select / order-sign context) ----------------------------------

    def draft_orders(self, bundle: Any, selections: Iterable[str] | None) -> Iterable[DraftOrder]:
        if not isinstance(bundle, dict):
            return
        selected = set(selections) if selections is not None else None
        for entry in _list(bundle.get("entry")):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue
            label = fj.resource_label(resource)
            is_selected = selected is None or label in selected
            medication = None
            matches: tuple[ConceptMatch, ...] = ()
            details: dict[str, Any] = {}
            if resource["resourceType"] in {"MedicationRequest", "MedicationStatement"}:
                medication = self._medication_concept(resource)
                matches = tuple(self._matches(medication, (ConceptKind.DRUG,), _medication_context(resource)))
                dosage = _dosage_details(resource.get("dosageInstruction") or resource.get("dosage"), _product_strength_mg(resource, medication))
                details = {"dose_mg": dosage["dose_mg"], "dose_text": dosage["dose_text"]}
            yield DraftOrder(
                source=label,
                resource_type=resource["resourceType"],
                medication=medication,
                matches=matches,
                selected=is_selected,
                **details,
            )


def _first_bounds_period(dosages: Any) -> dict[str, Any]:
    for dosage in dosages if isinstance(dosages, list) else ():
        bounds = _obj(_obj(_obj(dosage).get("timing")).get("repeat")).get("boundsPeriod")
        if isinstance(bounds, dict):
            return bounds
    return {}


def _text_of(value: Any) -> str | None:
    names = fj.concept(value).names()
    return names[0] if names else None


def _mg(quantity: Any) -> float | None:
    if not isinstance(quantity, dict):
        return None
    value = fj.number(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None:
        return None
    return {"mg": value, "g": value * 1000, "ug": value / 1000, "mcg": value / 1000}.get(unit) if unit else None


def _dosage_details(dosages: Any, strength_mg: float | None = None) -> dict[str, Any]:
    """Route, dose text, dose in mg and dosing interval of the first dosage that has them (lenient: any element
    may be absent).

    The dose is read as EHRs write it: a dose quantity in mg; a count of units (tablets) times the product's
    strength; the dosage text ("30 mg once daily"); else the product's strength alone (one unit)."""
    details: dict[str, Any] = {"route": None, "dose_text": None, "dose_mg": None, "interval_days": None}
    units: float | None = None
    for dosage in dosages if isinstance(dosages, list) else ():
        if not isinstance(dosage, dict):
            continue
        details["route"] = details["route"] or _text_of(dosage.get("route"))
        details["interval_days"] = details["interval_days"] or _timing_interval_days(_obj(_obj(dosage.get("timing")).get("repeat")))
        if details["dose_text"] is None:
            details["dose_text"] = read_text(dosage.get("text"))
        for dose_and_rate in _list(dosage.get("doseAndRate")):
            if details["dose_mg"] is None and isinstance(dose_and_rate, dict):
                quantity = dose_and_rate.get("doseQuantity")
                dose_mg = _mg(quantity)
                details["dose_mg"] = dose_mg
                if dose_mg is None and units is None:
                    units = _unit_count(quantity)
    if details["dose_mg"] is None and units is not None and strength_mg is not None:
        details["dose_mg"] = units * strength_mg
    if details["dose_mg"] is None and details["dose_text"]:
        details["dose_mg"] = _mg_in_text(details["dose_text"])
    if details["dose_mg"] is None and units is None:
        details["dose_mg"] = strength_mg
    if details["interval_days"] is None and details["dose_text"]:
        details["interval_days"] = _text_interval_days(details["dose_text"])
    return details


_DOSE_IN_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b", re.IGNORECASE)
_UNIT_COUNTS = {"tablet", "tablets", "tab", "tabs", "{tablet}", "{tbl}", "tbl", "capsule", "capsules", "{capsule}", "1", "{count}"}


def _mg_in_text(text: str) -> float | None:
    found = _DOSE_IN_TEXT.search(text)
    return float(found.group(1)) if found else None


def _unit_count(quantity: Any) -> float | None:
    """How many tablets or capsules a dose quantity gives (UCUM "1" or "{tbl}", or the unit's name)."""
    if not isinstance(quantity, dict):
        return None
    value = fj.number(quantity.get("value"))
    unit = quantity.get("code") or quantity.get("unit")
    if value is None or not isinstance(unit, str) or unit.lower() not in _UNIT_COUNTS:
        return None
    return value


def _product_strength_mg(resource: dict[str, Any], medication: Concept) -> float | None:
    """The strength of one unit of the ordered product: a contained Medication's single ingredient strength
    (mg per one unit), else the first "N mg" in the product's name or coding displays ("Rinvoq 30 mg",
    "upadacitinib 30 MG 24HR Extended Release Oral Tablet")."""
    for contained in _list(resource.get("contained")):
        if not isinstance(contained, dict) or contained.get("resourceType") != "Medication":
            continue
        ingredients = _list(contained.get("ingredient"))
        if len(ingredients) == 1 and isinstance(ingredients[0], dict):
            strength = _obj(ingredients[0].get("strength"))
            per = _obj(strength.get("denominator"))
            if fj.number(per.get("value")) in (None, 1):
                found = _mg(strength.get("numerator"))
                if found is not None:
                    return found
    for name in medication.names():
        found = _mg_in_text(name)
        if found is not None:
            return found
    return None


# "every 4 weeks", "every 28 days", "q4w", "Q2W": how dosing intervals are written in dosage text.
_INTERVAL_IN_TEXT = re.compile(r"\b(?:every|q)\s*(\d+)\s*(days?|d|weeks?|wks?|w)\b", re.IGNORECASE)
_UNIT_DAYS = {"d": 1, "wk": 7, "mo": 30}  # UCUM units of Timing.repeat.periodUnit (a month as 30 days)


def _timing_interval_days(repeat: dict[str, Any]) -> float | None:
    """Days between doses from Timing.repeat (frequency per period); None when it does not say."""
    period = fj.number(repeat.get("period"))
    period_unit = repeat.get("periodUnit")
    unit = _UNIT_DAYS.get(period_unit) if isinstance(period_unit, str) else None
    frequency = fj.number(repeat.get("frequency")) or 1
    if period is None or unit is None or period <= 0 or frequency <= 0:
        return None
    return period * unit / frequency


def _text_interval_days(text: str) -> float | None:
    found = _INTERVAL_IN_TEXT.search(text)
    if not found:
        return None
    return int(found.group(1)) * (1 if found.group(2).lower().startswith("d") else 7)


def _medication_context(resource: dict[str, Any]) -> tuple[str, ...]:
    """Text beside the medication that can qualify its name: route and dosage text."""
    texts: list[str] = []
    for element in ("dosage", "dosageInstruction"):
        dosages = resource.get(element)
        for dosage in dosages if isinstance(dosages, list) else ([dosages] if isinstance(dosages, dict) else []):
            if isinstance(dosage, dict):
                texts.extend(fj.concept(dosage.get("route")).names())
                text = read_text(dosage.get("text"))
                if text:
                    texts.append(text)
    return tuple(texts)


def _observation_value(resource: dict[str, Any]) -> tuple[float | None, str | None]:
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict):
        unit = quantity.get("code") if isinstance(quantity.get("code"), str) else quantity.get("unit")
        return fj.number(quantity.get("value")), unit if isinstance(unit, str) else None
    if "valueInteger" in resource:
        return fj.number(resource.get("valueInteger")), None
    return None, None


_POSITIVE_CODES = {"POS", "DET", "A", "AA", "RR"}
_NEGATIVE_CODES = {"NEG", "ND", "N", "NR"}
_NEGATIVE_TEXT = re.compile(r"\b(negative|not detected|non-?reactive|undetected)\b", re.IGNORECASE)
_POSITIVE_TEXT = re.compile(r"\b(positive|detected|reactive)\b", re.IGNORECASE)
_INDETERMINATE_TEXT = re.compile(r"\b(indeterminate|equivocal|borderline|inconclusive)\b", re.IGNORECASE)


def _qualitative_result(resource: dict[str, Any], definitions: Sequence[ConceptDefinition]) -> str | None:
    """positive | negative | indeterminate of a qualitative test (`definitions`: the qualitative concepts it
    matched; none: not qualitative), from the interpretation codes, a coded answer the concept lists, the
    value text, or a quantity against its reference range."""
    if not definitions:
        return None
    codes = {c.code for i in fj.concepts(resource.get("interpretation")) for c in i.codings if c.code}
    if codes & _POSITIVE_CODES:
        return "positive"
    if codes & _NEGATIVE_CODES:
        return "negative"
    if "IND" in codes:
        return "indeterminate"
    answer = fj.concept(resource.get("valueCodeableConcept"))
    said = {c.code.lower() for c in answer.codings if c.code} | {n.strip().lower() for n in answer.names()}
    for definition in definitions:
        if said & definition.negative_answers:  # "not pregnant" before "pregnant"
            return "negative"
        if said & definition.positive_answers:
            return "positive"
    texts = list(answer.names())
    value_text = read_text(resource.get("valueString"))
    if value_text:
        texts.append(value_text)
    for text in texts:
        if _INDETERMINATE_TEXT.search(text):
            return "indeterminate"
        if _NEGATIVE_TEXT.search(text):
            return "negative"
        if _POSITIVE_TEXT.search(text):
            return "positive"
    return _against_reference_range(resource)


def _against_reference_range(resource: dict[str, Any]) -> str | None:
    """A quantitative result of a qualitative test (quantitative hCG): positive above the upper limit of its
    reference range in the same unit, negative at or below it; None without a comparable range."""
    value, unit = _observation_value(resource)
    ranges = _list(resource.get("referenceRange"))
    high = _obj(_obj(ranges[0]).get("high")) if ranges else {}
    limit = fj.number(high.get("value"))
    high_unit = high.get("code") if isinstance(high.get("code"), str) else high.get("unit")
    if value is None or limit is None or (unit and high_unit and unit != high_unit):
        return None
    return "positive" if value > limit else "negative"


def _body_site(resource: dict[str, Any]) -> tuple[str, ...]:
    """Names of a Condition's bodySite: "dermatitis" on the face is recognised only with it."""
    return tuple(dict.fromkeys(name for site in fj.concepts(resource.get("bodySite")) for name in site.names()))
