"""Codes as FHIR sends them and the knowledge-base concepts they denote: plain values shared by the
record (which reads them) and the knowledge base (which matches them). A leaf: imports nothing of the
package, so neither side depends on the other for these types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Free text (a CodeableConcept's text, a coding's display, dosage text) is read to its first TEXT_LIMIT characters:
# names and instructions are far shorter, and every name rule is a regular expression run over the text, so a
# megabyte of text would cost seconds per call. A code longer than CODE_LIMIT is no code of any terminology
# (SNOMED CT ids have at most 18 digits; LOINC, RxNorm and ICD-10 codes are shorter) and is not read.
TEXT_LIMIT = 1000
CODE_LIMIT = 100


def read_text(value: Any) -> str | None:
    """A free-text value as read: a string, clipped to TEXT_LIMIT; anything else is None."""
    return value[:TEXT_LIMIT] if isinstance(value, str) else None


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


def concept_from_json(value: Any) -> Concept:
    """A CodeableConcept (or a bare Coding) as sent, as a Concept; malformed parts are skipped."""
    if not isinstance(value, dict):
        return Concept()
    raw_codings = value.get("coding")
    if isinstance(raw_codings, dict):
        raw_codings = [raw_codings]
    codings: list[Coding] = []
    if isinstance(raw_codings, list):
        codings.extend(c for c in (coding_from_json(item) for item in raw_codings) if c is not None)
    elif "code" in value or "system" in value:
        single = coding_from_json(value)
        if single is not None:
            codings.append(single)
    return Concept(codings=tuple(codings), text=read_text(value.get("text")))


def coding_from_json(value: Any) -> Coding | None:
    if not isinstance(value, dict):
        return None
    system = value.get("system") if isinstance(value.get("system"), str) else None
    code = value.get("code") if isinstance(value.get("code"), str) and len(value["code"]) <= CODE_LIMIT else None
    display = read_text(value.get("display"))
    if not (code or display):
        return None
    return Coding(system=system, code=code, display=display)
