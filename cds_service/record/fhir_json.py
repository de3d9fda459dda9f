"""Lenient reading of FHIR R4 JSON from EHRs.

Real clients send resources with small defects (the CDS Hooks sandbox sends
`MedicationRequest.category` as an object, not an array). A defect in an
element the logic does not need must not cost the card, so malformed or
unknown elements are removed and noted, never fatal. The `fhir.resources`
R4B models are the judge of what is malformed; only resources the rules read
are checked, so the cost is paid where it buys something.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..terminology import Concept, coding_from_json, concept_from_json
from .model import Section

_MAX_REPAIR_ROUNDS = 4
# Real resources nest about 10 deep; far deeper ones only serve to exhaust recursion in model validation.
# (The request body as a whole is limited to 1024 levels by the JSON parser.)
MAX_DEPTH = 64


def nested_deeper_than(document: Any, limit: int) -> bool:
    stack = [(document, 1)] if isinstance(document, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def checked_resource(raw: dict[str, Any], notes: list[str]) -> dict[str, Any] | None:
    """Return `raw`, or a copy with malformed elements removed, or None.

    Each removal appends a note naming the resource and the element. None
    means the resource could not be repaired (it is ignored and noted).
    """
    model = _model_class(raw.get("resourceType"))
    label = resource_label(raw)
    if model is None:
        notes.append(f"{label}: resource type not readable as FHIR R4; ignored")
        return None
    if nested_deeper_than(raw, MAX_DEPTH):
        notes.append(f"{label}: nested deeper than {MAX_DEPTH} levels; ignored")
        return None
    data = raw
    for _ in range(_MAX_REPAIR_ROUNDS):
        try:
            model.model_validate(data)
            return data
        except ValidationError as error:
            errors = error.errors(include_url=False, include_input=False)
            absent = [e for e in errors if _is_missing(e)]
            if len(absent) == len(errors):
                # Required elements are absent (the sandbox omits MedicationRequest.intent): readers cope.
                for e in absent:
                    notes.append(f"{label}: required element {'.'.join(map(str, e['loc']))} is missing")
                return data
            if data is raw:
                data = copy.deepcopy(raw)
            removed = _remove_bad_elements(data, errors)
            if not removed:
                break
            for path, message in removed:
                notes.append(f"{label}: element {path} ignored ({message})")
        except (TypeError, ValueError, RecursionError) as error:  # model-level validators outside pydantic's errors
            notes.append(f"{label}: not valid FHIR ({type(error).__name__}); ignored")
            return None
    notes.append(f"{label}: could not be read as FHIR R4; ignored")
    return None


READ_TYPES = (*(s.value for s in Section if not s.optional), "Medication")


def warm_up() -> None:
    """Import and build the FHIR models the rules read, so the first hook call does not pay for it."""
    for resource_type in READ_TYPES:
        checked_resource({"resourceType": resource_type, "id": "warm-up"}, [])


@cache
def _model_class(resource_type: object):
    if not isinstance(resource_type, str) or not resource_type.isalpha():
        return None
    from fhir.resources.R4B import get_fhir_model_class

    try:
        return get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None


def _remove_bad_elements(data: dict[str, Any], errors: list[ErrorDetails]) -> list[tuple[str, str]]:
    removed: list[tuple[str, str]] = []
    # Deepest paths first, and list items from the end, so earlier removals do not shift later paths.
    for error in sorted(errors, key=lambda e: [str(p).zfill(8) for p in e["loc"]], reverse=True):
        if _is_missing(error):
            continue  # a required element is absent: nothing to remove; the reader copes with absence
        path = _resolve(data, error["loc"])
        if path is None:
            continue
        container, key, shown = path
        try:
            del container[key]
        except (KeyError, IndexError, TypeError):
            continue
        removed.append((shown, _short(error.get("msg", "invalid"))))
    return removed


def _is_missing(error: ErrorDetails) -> bool:
    # pydantic says "missing"; fhir.resources' own required-field check says "model_field_validation.missing"
    return error["type"] == "missing" or error["type"].endswith(".missing")


def _resolve(data: Any, loc: Iterable[Any]) -> tuple[Any, Any, str] | None:
    """Follow a pydantic error location to (container, key, dotted path)."""
    node = data
    steps: list[tuple[Any, Any]] = []
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            steps.append((node, part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            steps.append((node, part))
            node = node[part]
        elif isinstance(part, str):
            continue  # a union tag or model name pydantic adds to the location
        else:
            break
    if not steps:
        return None
    container, key = steps[-1]
    shown = ""
    for _, step in steps:
        shown += f"[{step}]" if isinstance(step, int) else (f".{step}" if shown else step)
    return container, key, shown


def _short(message: str) -> str:
    message = message.removeprefix("Value error, ")
    return message if len(message) <= 80 else message[:77] + "..."


def resource_label(raw: dict[str, Any]) -> str:
    kind = raw.get("resourceType") if isinstance(raw.get("resourceType"), str) else "Resource"
    rid = raw.get("id")
    return f"{kind}/{rid}" if isinstance(rid, str) and rid else f"{kind} (no id)"


# --- small typed readers over checked JSON --------------------------------------------------

concept = concept_from_json
coding = coding_from_json


def concepts(values: Any) -> tuple[Concept, ...]:
    if isinstance(values, dict):
        values = [values]
    if not isinstance(values, list):
        return ()
    return tuple(c for c in (concept(v) for v in values) if c.codings or c.text)


def code_of(value: Any) -> str | None:
    """The first code of a CodeableConcept (status-like elements such as clinicalStatus)."""
    for c in concept(value).codings:
        if c.code:
            return c.code
    return None


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def fhir_date(value: Any) -> tuple[date, str] | None:
    """Parse a FHIR date/dateTime to (date, precision) where precision is year/month/day.

    A dateTime keeps its own local date (the clinician's calendar day).
    """
    if not isinstance(value, str):
        return None
    common = _common_day(value)
    if common is not None:
        return common, "day"
    match = _DATE.match(value.strip())
    if not match:
        return None
    year, month, day = match.groups()
    try:
        if day:
            return date(int(year), int(month), int(day)), "day"
        if month:
            return date(int(year), int(month), 1), "month"
        return date(int(year), 1, 1), "year"
    except ValueError:
        return None


def fhir_day(value: Any) -> date | None:
    """The day of a FHIR date/dateTime as `fhir_date` reads it, without the precision (for loops over many)."""
    day = _common_day(value)
    if day is not None:
        return day
    parsed = fhir_date(value)
    return parsed[0] if parsed is not None else None


def _common_day(value: Any) -> date | None:
    """The common "YYYY-MM-DD..." form, read in C; None for anything else (read by the full rules)."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def fhir_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def reference_target(value: Any) -> tuple[str, str] | None:
    """`{"reference": "Patient/123"}` (relative or absolute, with or without _history) -> ("Patient", "123")."""
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return None
    parts = value["reference"].split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] and parts[-1]:
        return parts[-2], parts[-1]
    return None


# `Patient/{id}`, relative or on any server, optionally with a version; ids as FHIR R4 defines them.
_PATIENT_REFERENCE = re.compile(r"(?:https?://[^\s]+/)?Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?")


def patient_reference_id(reference: Any) -> str | None:
    """The patient id of a reference of the one form a subject may take (`Patient/{id}`, relative or absolute);
    None for any other value: another type (`Group/1`), a lowercase type, `urn:uuid:...`, an empty string."""
    if not isinstance(reference, str):
        return None
    found = _PATIENT_REFERENCE.fullmatch(reference)
    return found.group(1) if found else None


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None
