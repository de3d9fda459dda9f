"""Synthetic, realistic R4 patient records of a chosen size, and hook requests carrying them.

A record of N resources: one adult with atopic dermatitis on dupilumab for 30 weeks without an
adequate response (so the whole pipeline runs and a card fires), plus years of history: a problem
list, a medication list, AD severity scores every 4-8 weeks, blood counts, liver and lipid panels,
renal function and vital signs. Deterministic for a given size and seed.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LOCAL = "http://hospital.example.org/fhir/CodeSystem/derm-scores"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
TODAY = date(2025, 9, 1)

_CONDITIONS = [
    ("J45.909", "Asthma, uncomplicated"), ("J30.9", "Allergic rhinitis"), ("K21.9", "Gastro-esophageal reflux disease"),
    ("M54.5", "Low back pain"), ("F41.1", "Generalized anxiety disorder"), ("E03.9", "Hypothyroidism"),
    ("G43.909", "Migraine"), ("R51", "Headache"), ("J06.9", "Acute upper respiratory infection"), ("N39.0", "Urinary tract infection"),
]
_MEDICATIONS = [
    ("197361", "amlodipine 5 MG Oral Tablet"), ("310965", "ibuprofen 200 MG Oral Tablet"), ("313782", "acetaminophen 325 MG Oral Tablet"),
    ("966247", "levothyroxine 0.05 MG Oral Tablet"), ("1049221", "cetirizine 10 MG Oral Tablet"), ("746763", "fluticasone nasal spray"),
    ("197696", "hydrocortisone 1 % Topical Cream"), ("1361615", "triamcinolone 0.1 % Topical Ointment"),
]
# (LOINC code, display, unit, low, high)
_LABS = [
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL", 2.0, 7.0),
    ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL", 1.0, 3.5),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 16.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 160, 380),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 40),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.1),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 150, 230),
]
_VITALS = [
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 105, 135),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 65, 85),
    ("8867-4", "Heart rate", "/min", 55, 95),
    ("29463-7", "Body weight", "kg", 60, 75),
    ("8310-5", "Body temperature", "Cel", 36.2, 37.4),
]


class _Ids:
    def __init__(self, prefix: str):
        self.prefix, self.count = prefix, 0

    def __call__(self, kind: str) -> str:
        self.count += 1
        return f"{self.prefix}-{kind}-{self.count}"


def patient_record(size: int, seed: int = 7, patient_id: str | None = None) -> list[dict[str, Any]]:
    """`size` FHIR resources (at least 10) for one patient."""
    if size < 10:
        raise ValueError("a record has at least 10 resources")
    rng = random.Random(seed * 1_000_003 + size)
    pid = patient_id or f"synth-{size}"
    ids = _Ids(pid)
    subject = {"reference": f"Patient/{pid}"}
    start = TODAY - timedelta(weeks=30)
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1984-06-15", "name": [{"family": "Synthetic", "given": [str(size)]}]},
        {"resourceType": "Condition", "id": ids("ad"), "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
         "code": {"coding": [{"system": SNOMED, "code": "24079001", "display": "Atopic dermatitis"}, {"system": ICD, "code": "L20.9"}]},
         "subject": subject, "onsetDateTime": "2003-01-01"},
        {"resourceType": "MedicationStatement", "id": ids("dupi"), "status": "active", "subject": subject,
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "1876376", "display": "dupilumab"}], "text": "Dupixent 300 mg pen"},
         "effectivePeriod": {"start": start.isoformat()}},
    ]
    for week, value in ((-1, 31.0), (12, 27.0), (20, 26.5), (28, 25.0)):
        resources.append(_score(ids("easi"), subject, "easi-total", "EASI total score", value, start + timedelta(weeks=week)))

    budget = size - len(resources)
    conditions = max(1, budget // 25)
    medications = max(1, budget // 15)
    labs_and_vitals = budget - conditions - medications
    for _ in range(conditions):
        code, display = rng.choice(_CONDITIONS)
        onset = TODAY - timedelta(days=rng.randint(30, 6000))
        status = rng.choice(["active", "resolved", "inactive"])
        resources.append({"resourceType": "Condition", "id": ids("cond"), "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
                          "code": {"coding": [{"system": ICD, "code": code, "display": display}], "text": display},
                          "subject": subject, "onsetDateTime": onset.isoformat()})
    for _ in range(medications):
        code, display = rng.choice(_MEDICATIONS)
        begun = TODAY - timedelta(days=rng.randint(30, 4000))
        if rng.random() < 0.5:
            resources.append({"resourceType": "MedicationStatement", "id": ids("med"), "status": rng.choice(["active", "completed", "stopped"]),
                              "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display},
                              "subject": subject, "effectivePeriod": {"start": begun.isoformat(), "end": (begun + timedelta(days=90)).isoformat()}})
        else:
            resources.append({"resourceType": "MedicationRequest", "id": ids("rx"), "status": rng.choice(["active", "completed", "stopped"]),
                              "intent": "order", "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": display}], "text": display},
                              "subject": subject, "authoredOn": begun.isoformat(),
                              "dosageInstruction": [{"text": "as directed", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]})
    for index in range(labs_and_vitals):
        day = TODAY - timedelta(days=rng.randint(1, 3650))
        if index % 9 == 0:
            resources.append(_score(ids("score"), subject, "easi-total", "EASI total score", round(rng.uniform(18, 35), 1), day,
                                    before=start))
            continue
        code, display, unit, low, high = rng.choice(_LABS if index % 2 else _VITALS)
        category = "laboratory" if (code, display, unit, low, high) in _LABS else "vital-signs"
        resources.append({"resourceType": "Observation", "id": ids("obs"), "status": "final",
                          "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}],
                          "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                          "subject": subject, "effectiveDateTime": day.isoformat(),
                          "valueQuantity": {"value": round(rng.uniform(low, high), 2), "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    return resources[:size]


def _score(rid: str, subject: dict, code: str, display: str, value: float, day: date, before: date | None = None) -> dict[str, Any]:
    if before is not None and day >= before:
        day = before - timedelta(days=(day - before).days % 700 + 1)  # older scores only: the course's own scores decide
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": LOCAL, "code": code, "display": display}], "text": display},
            "subject": subject, "effectiveDateTime": day.isoformat(),
            "valueQuantity": {"value": value, "unit": "{score}", "system": "http://unitsofmeasure.org", "code": "{score}"}}


def hook_request(
    resources: list[dict[str, Any]], hook: str = "order-select", hook_instance: str | None = None, other_orders: int = 0,
    select_other: bool = False,
) -> dict[str, Any]:
    """A complete request with full prefetch (one searchset per key) and, for order hooks, a dupilumab draft
    (selected) beside `other_orders` drafts of other medicines (orders the clinician added earlier). With
    `select_other`, order-select selects the first of those instead (an order this service has no advice on)."""
    from cds_service.hooks.catalog import PREFETCH

    patient = next(r for r in resources if r["resourceType"] == "Patient")
    prefetch: dict[str, Any] = {}
    for key, template in PREFETCH.items():
        kind = template.split("?")[0].split("/")[0]
        found = [r for r in resources if r["resourceType"] == kind]
        prefetch[key] = patient if key == "Patient" else {
            "resourceType": "Bundle", "type": "searchset", "total": len(found),
            "entry": [{"fullUrl": f"https://fhir.example.org/{r['resourceType']}/{r['id']}", "resource": r} for r in found],
        }
    context: dict[str, Any] = {"userId": "Practitioner/bench", "patientId": patient["id"]}
    if hook in {"order-select", "order-sign"}:
        draft = {"resourceType": "MedicationRequest", "id": "draft-dupilumab", "status": "draft", "intent": "order",
                 "medicationCodeableConcept": {"text": "Dupixent 300 mg pen"}, "subject": {"reference": f"Patient/{patient['id']}"}}
        others = [{"resourceType": "MedicationRequest", "id": f"draft-{index}", "status": "draft", "intent": "order",
                   "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code, "display": name}], "text": name},
                   "subject": {"reference": f"Patient/{patient['id']}"}}
                  for index, (code, name) in enumerate((_MEDICATIONS * (1 + other_orders // len(_MEDICATIONS)))[:other_orders])]
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": order} for order in (*others, draft)]}
        if hook == "order-select":
            if select_other and not others:
                raise ValueError("select_other needs other_orders")
            context["selections"] = ["MedicationRequest/draft-0" if select_other else "MedicationRequest/draft-dupilumab"]
    instance = hook_instance or str(uuid.UUID(int=len(resources)))
    return {"hook": hook, "hookInstance": instance, "context": context, "prefetch": prefetch}
