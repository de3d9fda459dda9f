"""Normalising real-world FHIR: malformed or unknown optional elements are tolerated and noted
(here with model validation on, as `CDS_VALIDATE_RESOURCES=read` and `evaluate --explain` run it)."""

from __future__ import annotations

from cds_service.record.fhir_json import checked_resource
from clinical import record as patient_record


def build(resources):
    """The record of `resources` alone (no Patient resource), with model validation on."""
    return patient_record(*resources, with_patient=False, validate=True)


def sandbox_request(**changes):
    """A MedicationRequest as the CDS Hooks sandbox sends it: category an object, no intent."""
    resource = {"resourceType": "MedicationRequest", "id": "rx", "status": "active", "category": {"text": "Outpatient"},
                "medicationCodeableConcept": {"text": "Dupixent 300 MG/2ML"}, "subject": {"reference": "Patient/p"},
                "authoredOn": "2025-01-06"}
    resource.update(changes)
    return resource


def test_a_malformed_optional_element_is_dropped_and_noted_and_the_resource_kept():
    record = build([sandbox_request()])
    (use,) = record.medications
    assert use.start.isoformat() == "2025-01-06"
    assert any("element category ignored" in n for n in record.notes)
    assert any("required element intent is missing" in n for n in record.notes)


def test_an_unknown_element_is_dropped_and_noted():
    record = build([sandbox_request(vendorFlag=True)])
    assert len(record.medications) == 1
    assert any("vendorFlag ignored" in n for n in record.notes)


def test_a_bad_nested_element_is_dropped_without_losing_its_siblings():
    resource = sandbox_request(dosageInstruction=[{"text": "300 mg q2w", "timing": {"repeat": {"boundsPeriod": {"start": "2025-01-06", "end": "soon"}}}}])
    record = build([resource])
    (use,) = record.medications
    assert use.start.isoformat() == "2025-01-06" and use.end is None
    assert any("dosageInstruction[0].timing.repeat.boundsPeriod.end ignored" in n for n in record.notes)


def test_a_bad_date_on_an_element_the_logic_uses_does_not_invent_one():
    record = build([sandbox_request(authoredOn="2025-13-45")])
    (use,) = record.medications
    assert use.start is None
    assert any("authoredOn ignored" in n for n in record.notes)


def test_partial_dates_are_read_with_a_note():
    record = build([sandbox_request(authoredOn="2025-01")])
    assert record.medications[0].start.isoformat() == "2025-01-01"
    assert any("month-precise" in n for n in record.notes)


def test_resources_the_rules_cannot_use_are_not_checked_or_kept():
    record = build([{"resourceType": "Observation", "id": "bp", "status": "final", "code": {"text": "Blood pressure"},
                     "subject": {"reference": "Patient/p"}, "valueQuantity": {"value": "not a number"}}])
    assert record.observations == () and record.notes == ()


def test_a_score_out_of_its_range_or_with_a_lab_unit_is_not_a_score():
    record = build([
        {"resourceType": "Observation", "id": "easi-big", "status": "final", "code": {"text": "EASI"}, "subject": {"reference": "Patient/p"},
         "effectiveDateTime": "2025-01-01", "valueQuantity": {"value": 80}},
        {"resourceType": "Observation", "id": "iga-lab", "status": "final", "code": {"text": "IGA"}, "subject": {"reference": "Patient/p"},
         "effectiveDateTime": "2025-01-01", "valueQuantity": {"value": 2, "unit": "g/L", "code": "g/L"}},
    ])
    assert record.observations == ()
    assert len([n for n in record.notes if "ignored" in n]) == 2


def test_unrepairable_garbage_is_ignored_with_a_note():
    notes: list[str] = []
    assert checked_resource({"resourceType": "Nonsense", "id": "x"}, notes) is None
    assert notes == ["Nonsense/x: resource type not readable as FHIR R4; ignored"]


def test_entered_in_error_records_are_dropped_with_a_note():
    record = build([sandbox_request(status="entered-in-error")])
    assert record.medications == ()
    assert any("entered in error" in n for n in record.notes)


def test_without_model_validation_malformed_elements_are_still_tolerated():
    resource = sandbox_request(authoredOn={"not": "a date"}, status=["active"], dosageInstruction="daily",
                               dispenseRequest={"validityPeriod": "soon"}, statusReason=7)
    record = patient_record(resource, with_patient=False)
    (use,) = record.medications
    assert use.start is None and use.status is None
    assert any("start is not a FHIR date" in n for n in record.notes)
