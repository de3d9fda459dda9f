"""The CDS services this product offers: one per hook, all reading the same FHIR data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..record.model import Section

# Prefetch keys are named after the resource type they return (as many services do): the record's sections.
PREFETCH: Mapping[str, str] = {section.value: section.query for section in Section}

ORDER_HOOKS = frozenset({"order-select", "order-sign"})

_USAGE = (
    "Send the prefetch listed here (absent keys are treated as not fetched; null as no data; "
    "MedicationDispense and MedicationAdministration are optional). "
    "AD severity scores with local codes are recognised by name (EASI, IGA, SCORAD, PP-NRS, POEM, %BSA) "
    "or by codes configured with CDS_SCORE_CODES."
)


@dataclass(frozen=True)
class ServiceDefinition:
    id: str
    hook: str
    title: str
    description: str
    prefetch: Mapping[str, str]
    usage_requirements: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(self.prefetch),
        }
        if self.usage_requirements:
            body["usageRequirements"] = self.usage_requirements
        return body


SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id="dupilumab-next-line-patient-view",
        hook="patient-view",
        title="Dupilumab failure in atopic dermatitis: next-line therapy",
        description=(
            "When a chart opens, recognises dupilumab failure in atopic dermatitis (no adequate response after "
            "an adequate trial) from medication records and severity scores, shows the evidence, and ranks "
            "next-line options for this patient with draft orders."
        ),
        prefetch=PREFETCH,
        usage_requirements=_USAGE,
    ),
    ServiceDefinition(
        id="dupilumab-next-line-order-select",
        hook="order-select",
        title="Dupilumab order after failure: next-line therapy",
        description=(
            "When a dupilumab order is selected for a patient in whom dupilumab has failed for atopic "
            "dermatitis, shows the evidence and offers to replace it with a ranked next-line option."
        ),
        prefetch=PREFETCH,
        usage_requirements=_USAGE,
    ),
    ServiceDefinition(
        id="dupilumab-next-line-order-sign",
        hook="order-sign",
        title="Dupilumab order at signing after failure: next-line therapy",
        description=(
            "When orders including dupilumab are about to be signed for a patient in whom dupilumab has failed "
            "for atopic dermatitis, shows the evidence and offers to replace it with a ranked next-line option."
        ),
        prefetch=PREFETCH,
        usage_requirements=_USAGE,
    ),
)

SERVICES_BY_ID: Mapping[str, ServiceDefinition] = {s.id: s for s in SERVICES}


def discovery_document() -> dict[str, Any]:
    return {"services": [s.to_json() for s in SERVICES]}
