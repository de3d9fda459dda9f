"""Small builders of FHIR resources, and the one builder of patient records, for the pure-function tests
of the clinical core."""

from __future__ import annotations

from datetime import date

from cds_service.knowledge import load_knowledge
from cds_service.record.normalise import build_patient_record

KNOWLEDGE = load_knowledge()
TODAY = date(2025, 9, 1)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def condition(cid, text, onset="2020-01-01", status="active", icd=None, severity=None):
    resource = {"resourceType": "Condition", "id": cid, "clinicalStatus": {"coding": [{"code": status}]},
                "code": {"text": text, **({"coding": [{"system": ICD, "code": icd}]} if icd else {})},
                "subject": {"reference": "Patient/p"}, "onsetDateTime": onset}
    if severity:
        resource["severity"] = {"text": severity}
    return resource


AD = condition("ad", "Atopic dermatitis")


def dupilumab(start="2025-01-06", status="active", end=None, reason=None):
    resource = {"resourceType": "MedicationStatement", "id": f"dupi-{start}", "status": status,
                "medicationCodeableConcept": {"text": "dupilumab"}, "subject": {"reference": "Patient/p"},
                "effectivePeriod": {"start": start, **({"end": end} if end else {})}}
    if reason:
        resource["statusReason"] = [{"text": reason}]
    return resource


def medication(mid, text, start, end=None, status="active"):
    return {"resourceType": "MedicationStatement", "id": mid, "status": status, "medicationCodeableConcept": {"text": text},
            "subject": {"reference": "Patient/p"}, "effectivePeriod": {"start": start, **({"end": end} if end else {})}}


def easi(day, value):
    return {"resourceType": "Observation", "id": f"easi-{day}", "status": "final", "code": {"text": "EASI"},
            "subject": {"reference": "Patient/p"}, "effectiveDateTime": day, "valueQuantity": {"value": value}}


def lab(lid, text, day, value=None, unit=None, result=None):
    resource = {"resourceType": "Observation", "id": lid, "status": "final", "code": {"text": text},
                "subject": {"reference": "Patient/p"}, "effectiveDateTime": day}
    if value is not None:
        resource["valueQuantity"] = {"value": value, "unit": unit, "code": unit}
    if result is not None:
        resource["valueCodeableConcept"] = {"text": result}
    return resource


def record(*resources, patient_id="p", birth="1980-01-01", gender="female", with_patient=True, unavailable=None, validate=False):
    """The patient record the service builds from `resources` (sent in this order), for Patient/`patient_id`.
    With `with_patient`, a Patient resource goes first: born `birth`, of `gender` (None: no gender element).
    `unavailable`: sections a client could not send, with the reason; `validate`: check against the R4 models."""
    by_type: dict[str, list] = {}
    if with_patient:
        patient = {"resourceType": "Patient", "id": patient_id, "birthDate": birth, **({"gender": gender} if gender is not None else {})}
        by_type["Patient"] = [patient]
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    return build_patient_record(patient_id, by_type, unavailable or {}, KNOWLEDGE.concepts, validate=validate)


NON_RESPONSE = (AD, dupilumab(), easi("2025-01-06", 30), easi("2025-05-05", 25))
