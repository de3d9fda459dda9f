"""Ready-to-send hook requests for the fixture patients, dated as of a day (today by default).

    cds-service fixtures request SCENARIO|PATIENT-ID [--hook patient-view|order-select|order-sign] [--order TEXT] [--dose-mg N]

For trying the order hooks end to end where a client cannot draft the order (the public sandbox's Rx View
offers oral products only): the request carries the scenario's full prefetch and one draft MedicationRequest.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .fixture_dates import materialise, service_today, shift_days
from .hooks.catalog import PREFETCH

SCENARIOS = Path(__file__).resolve().parent.parent / "fhir_fixtures" / "scenarios"
HOOKS = ("patient-view", "order-select", "order-sign")


class DemoRequestError(Exception):
    pass


def scenario_names(directory: Path = SCENARIOS) -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in directory.glob("*.json") if not p.name.endswith(".expected.json"))


def scenario_of(name_or_patient: str, directory: Path = SCENARIOS) -> str:
    """The scenario named so, or the one whose patient has this id."""
    names = scenario_names(directory)
    if name_or_patient in names:
        return name_or_patient
    for name in names:
        bundle = json.loads((directory / f"{name}.json").read_text())
        if any(e["resource"]["resourceType"] == "Patient" and e["resource"].get("id") == name_or_patient for e in bundle["entry"]):
            return name
    raise DemoRequestError(f"no scenario or patient id {name_or_patient!r}; `cds-service fixtures list` names them")


def load_materialised(name: str, today: date, directory: Path = SCENARIOS) -> tuple[dict[str, Any], dict[str, Any]]:
    """(bundle, expected answer) of a scenario with its dates moved so that its evaluate_at falls on `today`."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise DemoRequestError(f"no scenario named {name!r}; `cds-service fixtures list` names them")
    bundle = json.loads(path.read_text())
    expected = json.loads((directory / f"{name}.expected.json").read_text())
    days = shift_days(datetime.fromisoformat(expected["evaluate_at"].replace("Z", "+00:00")), today)
    return materialise(bundle, days), materialise(expected, days)


def searchset(resources: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"fullUrl": f"http://fhir.example.org/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def full_prefetch(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client that fulfils every prefetch template would send (null where there is no data)."""
    prefetch: dict[str, Any] = {}
    for key, template in PREFETCH.items():
        resource_type = template.split("?")[0].split("/")[0]
        found = [r for r in resources if r["resourceType"] == resource_type]
        prefetch[key] = (found[0] if found else None) if key == "Patient" else searchset(found)
    return prefetch


def draft_order(patient_id: str, order_id: str, medication: str, dose_mg: float | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": order_id,
        "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": medication},
        "subject": {"reference": f"Patient/{patient_id}"},
    }
    if dose_mg is not None:
        order["dosageInstruction"] = [{
            "text": f"{dose_mg:g} mg",
            "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}}],
        }]
    return order


def scenario_request(name: str, hook: str = "patient-view", order: str | None = None, dose_mg: float | None = None,
                     today: date | None = None, fhir_server: str = "https://fhir.example.org/r4") -> dict[str, Any]:
    """A hook request for the patient of the scenario `name` (or the patient with that id) as of `today`; order hooks
    draft `order` (default: dupilumab)."""
    if hook not in HOOKS:
        raise DemoRequestError(f"--hook must be one of {', '.join(HOOKS)}, not {hook!r}")
    if order is not None and hook == "patient-view":
        raise DemoRequestError("--order is for order-select and order-sign; add --hook order-select")
    bundle, _ = load_materialised(scenario_of(name), today or service_today())
    resources = [e["resource"] for e in bundle["entry"]]
    patient_id = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    context: dict[str, Any] = {"userId": "Practitioner/demo-dermatologist", "patientId": patient_id}
    if hook != "patient-view":
        drafted = draft_order(patient_id, "draft-1", order or "Dupixent 300 mg/2 mL pen", dose_mg)
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": drafted}]}
        if hook == "order-select":
            context["selections"] = ["MedicationRequest/draft-1"]
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server, "context": context,
            "prefetch": full_prefetch(resources)}
