"""Recognising a drug, condition or score in a CodeableConcept: by any code, or by name.

Codes in EHR data are often local, missing or wrong; names are often the only
signal. Each match records how it was made, so the card can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from ..record.model import Concept, ConceptMatch


@dataclass(frozen=True)
class KnownCode:
    system: str  # full URL; "" means any system (local codes sent without one)
    code: str
    status: str
    source: str | None = None


@dataclass(frozen=True)
class ConceptDefinition:
    id: str
    kind: str  # drug | condition | score
    label: str
    codes: tuple[KnownCode, ...] = ()
    code_prefixes: tuple[KnownCode, ...] = ()
    ndc_products: tuple[tuple[str, str], ...] = ()  # (labeler padded to 5, product padded to 4)
    names: tuple[str, ...] = ()
    value_range: tuple[float, float] | None = None
    units: tuple[str, ...] = ()
    _name_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _exclude_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def all_codes(self) -> Iterable[KnownCode]:
        return (*self.codes, *self.code_prefixes)

    def accepts_unit(self, unit: str | None) -> bool:
        return not unit or unit in self.units


def _words(names: Iterable[str], case_sensitive: bool) -> re.Pattern[str] | None:
    names = [n for n in names if n]
    if not names:
        return None
    alternatives = "|".join(sorted((re.escape(n) for n in names), key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", 0 if case_sensitive else re.IGNORECASE)


def build_concepts(
    entries: Mapping[str, Mapping[str, Any]],
    systems: Mapping[str, str],
    local_codes: Mapping[str, tuple[tuple[str, str], ...]],
) -> tuple[ConceptDefinition, ...]:
    def known(item: Mapping[str, Any], key: str) -> KnownCode:
        if item["system"] not in systems:
            raise ValueError(f"unknown system alias {item['system']!r}")
        return KnownCode(systems[item["system"]], item[key], item["status"], item.get("source"))

    unknown_local = set(local_codes) - {k.upper() for k, e in entries.items() if e["kind"] == "score"}
    if unknown_local:
        raise ValueError(f"CDS_SCORE_CODES names unknown instruments {sorted(unknown_local)}")
    result = []
    for concept_id, entry in entries.items():
        codes = [known(c, "code") for c in entry.get("codes", ())]
        codes += [KnownCode(system, code, "local") for system, code in local_codes.get(concept_id.upper(), ())]
        exclude = entry.get("exclude_names", ())
        result.append(
            ConceptDefinition(
                id=concept_id,
                kind=entry["kind"],
                label=entry["label"],
                codes=tuple(codes),
                code_prefixes=tuple(known(c, "prefix") for c in entry.get("code_prefixes", ())),
                ndc_products=tuple((p["labeler"].zfill(5), p["product"].zfill(4)) for p in entry.get("ndc_products", ())),
                names=tuple(entry.get("names", ())),
                value_range=tuple(entry["range"]) if "range" in entry else None,  # type: ignore[arg-type]
                units=tuple(entry.get("units", ())),
                _name_pattern=_words(entry.get("names", ()), bool(entry.get("case_sensitive_names"))),
                _exclude_pattern=re.compile("|".join(f"(?:{p})" for p in exclude), re.IGNORECASE) if exclude else None,
            )
        )
    return tuple(result)


_NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"


def ndc_product(code: str) -> tuple[str, str] | None:
    """Labeler and product of an NDC in 4-4-2, 5-3-2, 5-4-1 or 11-digit 5-4-2 form."""
    parts = code.strip().split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return parts[0].zfill(5), parts[1].zfill(4)
    if len(parts) == 1 and parts[0].isdigit() and len(parts[0]) == 11:
        return parts[0][:5], parts[0][5:9]
    return None


class ConceptMatcher:
    def __init__(self, definitions: Iterable[ConceptDefinition]):
        self.definitions = {d.id: d for d in definitions}
        self._by_code: dict[tuple[str, str], list[tuple[ConceptDefinition, KnownCode]]] = {}
        self._any_system: dict[str, list[tuple[ConceptDefinition, KnownCode]]] = {}
        for definition in self.definitions.values():
            for code in definition.codes:
                target = self._any_system.setdefault(code.code, []) if not code.system else self._by_code.setdefault((code.system, code.code), [])
                target.append((definition, code))

    def of_kind(self, kind: str) -> tuple[ConceptDefinition, ...]:
        return tuple(d for d in self.definitions.values() if d.kind == kind)

    def match(self, concept: Concept, kind: str | None = None) -> list[ConceptMatch]:
        """Every known concept (of `kind`, if given) this CodeableConcept denotes, each once."""
        found: dict[str, ConceptMatch] = {}
        candidates = [d for d in self.definitions.values() if kind is None or d.kind == kind]

        def add(definition: ConceptDefinition, how: str) -> None:
            if (kind is None or definition.kind == kind) and definition.id not in found:
                found[definition.id] = ConceptMatch(definition.id, how)

        for c in concept.codings:
            if not c.code:
                continue
            for definition, known in self._by_code.get((c.system or "", c.code), ()):
                add(definition, f"code {known.system}|{known.code} [{known.status}]")
            for definition, known in self._any_system.get(c.code, ()):
                add(definition, f"local code {c.code}")
            for definition in candidates:
                for prefix in definition.code_prefixes:
                    if c.system == prefix.system and c.code.upper().startswith(prefix.code):
                        add(definition, f"code {c.system}|{c.code} in block {prefix.code} [{prefix.status}]")
                if definition.ndc_products and c.system == _NDC_SYSTEM:
                    product = ndc_product(c.code)
                    if product in definition.ndc_products:
                        add(definition, f"NDC {c.code} (product {product[0]}-{product[1]}) [V]")
        names = concept.names()
        if names:
            for definition in candidates:
                if definition.id in found or definition._name_pattern is None:
                    continue
                for name in names:
                    hit = definition._name_pattern.search(name)
                    if hit and not (definition._exclude_pattern and definition._exclude_pattern.search(name)):
                        add(definition, f"name '{hit.group(0)}' in \"{_clip(name)}\"")
                        break
        return list(found.values())

    def matches(self, concept: Concept, concept_id: str) -> ConceptMatch | None:
        definition = self.definitions[concept_id]
        return next((m for m in self.match(concept, definition.kind) if m.concept == concept_id), None)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
