"""Recognising a drug, condition or score in a CodeableConcept: by any code, or by name.

Codes in EHR data are often local, missing or wrong; names are often the only
signal. Each match records how it was made, so the card can say so.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..terminology import Concept, ConceptMatch, concept_from_json

_CACHE_LIMIT = 20_000  # distinct codes seen; records repeat the same few hundred codes thousands of times


class ConceptKind(enum.StrEnum):
    DRUG = "drug"
    CONDITION = "condition"
    SCORE = "score"
    LAB = "lab"
    VITAL = "vital"
    STOP_REASON = "stop-reason"


@dataclass(frozen=True)
class KnownCode:
    system: str  # full URL; "" means any system (local codes sent without one)
    code: str
    status: str
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class QualifiedName:
    name: str
    pattern: re.Pattern[str]
    qualifiers: re.Pattern[str]


@dataclass(frozen=True)
class ConceptDefinition:
    id: str
    kind: ConceptKind
    label: str
    group: str | None = None
    codes: tuple[KnownCode, ...] = ()
    code_prefixes: tuple[KnownCode, ...] = ()
    ndc_products: tuple[tuple[str, str], ...] = ()  # (labeler padded to 5, product padded to 4)
    ndc_claims: tuple[KnownCode, ...] = ()  # the same products as the file gives them, with status and source
    names: tuple[str, ...] = ()
    case_sensitive: bool = False
    exclude_names: tuple[str, ...] = ()
    qualified_names: tuple[QualifiedName, ...] = ()
    value_range: tuple[float, float] | None = None
    units: tuple[str, ...] = ()  # scores: units a score may carry
    canonical_unit: str | None = None  # labs and vitals: values are converted to this unit
    unit_factors: Mapping[str, float] = field(default_factory=dict)
    qualitative: bool = False  # read as positive | negative | indeterminate
    dated: bool = False  # its value is a date
    positive_answers: frozenset[str] = frozenset()  # codes and words (lower case) of a coded answer meaning positive
    negative_answers: frozenset[str] = frozenset()
    _name_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    _exclude_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def all_codes(self) -> Iterable[KnownCode]:
        return (*self.codes, *self.code_prefixes)

    def accepts_unit(self, unit: str | None) -> bool:
        return not unit or unit in self.units

    def convert(self, value: float | None, unit: str | None) -> float | None:
        """A lab or vital value in the canonical unit, or None when the unit is unknown."""
        if value is None or self.canonical_unit is None:
            return None
        factor = self.unit_factors.get(unit or "")
        if factor is None:
            factor = self.unit_factors.get((unit or "").strip())
        return None if factor is None else value * factor


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
        return KnownCode(systems[item["system"]], item[key], item["status"], item.get("source"), item.get("note"))

    unknown_local = set(local_codes) - {k.upper() for k, e in entries.items() if e["kind"] == ConceptKind.SCORE}
    if unknown_local:
        raise ValueError(f"CDS_SCORE_CODES names unknown instruments {sorted(unknown_local)}")
    result = []
    for concept_id, entry in entries.items():
        codes = [known(c, "code") for c in entry.get("codes", ())]
        codes += [KnownCode(system, code, "local") for system, code in local_codes.get(concept_id.upper(), ())]
        exclude = entry.get("exclude_names", ())
        qualified = tuple(
            QualifiedName(q["name"], _words([q["name"]], False), _words(q["with_any"], False))  # type: ignore[arg-type]
            for q in entry.get("qualified_names", ())
        )
        result.append(
            ConceptDefinition(
                id=concept_id,
                kind=ConceptKind(entry["kind"]),
                label=entry["label"],
                group=entry.get("group"),
                codes=tuple(codes),
                code_prefixes=tuple(known(c, "prefix") for c in entry.get("code_prefixes", ())),
                ndc_products=tuple((p["labeler"].zfill(5), p["product"].zfill(4)) for p in entry.get("ndc_products", ())),
                ndc_claims=tuple(KnownCode(systems["ndc"], f"{p['labeler']}-{p['product']}", p["status"], p["source"], p.get("note"))
                                 for p in entry.get("ndc_products", ())),
                names=tuple(entry.get("names", ())),
                case_sensitive=bool(entry.get("case_sensitive_names")),
                exclude_names=tuple(exclude),
                qualified_names=qualified,
                value_range=(float(entry["range"][0]), float(entry["range"][1])) if "range" in entry else None,
                units=tuple(entry.get("units", ())),
                canonical_unit=entry.get("canonical_unit"),
                unit_factors=dict(entry.get("unit_factors", {})),
                qualitative=entry.get("result") == "qualitative",
                dated=entry.get("result") == "date",
                positive_answers=frozenset(a.lower() for a in entry.get("answers", {}).get("positive", ())),
                negative_answers=frozenset(a.lower() for a in entry.get("answers", {}).get("negative", ())),
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
        self._matched: dict[tuple[Any, ...], list[ConceptMatch]] = {}
        self._elements: dict[tuple[Any, ...], tuple[Concept, tuple[ConceptMatch, ...]]] = {}
        self.definitions = {d.id: d for d in definitions}
        groups: dict[str, set[str]] = {}
        self._by_code: dict[tuple[str, str], list[tuple[ConceptDefinition, KnownCode]]] = {}
        self._any_system: dict[str, list[tuple[ConceptDefinition, KnownCode]]] = {}
        for definition in self.definitions.values():
            if definition.group:
                groups.setdefault(definition.group, set()).add(definition.id)
            for code in definition.codes:
                target = self._any_system.setdefault(code.code, []) if not code.system else self._by_code.setdefault((code.system, code.code), [])
                target.append((definition, code))
        self._groups = {group: frozenset(ids) for group, ids in groups.items()}

    def in_group(self, group: str) -> frozenset[str]:
        """The ids of the concepts of a group ("eye", "confounder", ...)."""
        return self._groups.get(group, frozenset())

    def match_element(
        self, element: Any, kinds: tuple[str, ...], context: tuple[str, ...] = ()
    ) -> tuple[Concept, tuple[ConceptMatch, ...]]:
        """Match a CodeableConcept as sent (JSON), with `context` as for `match`; the same element text is
        read and matched once per process (records repeat a few hundred codes thousands of times)."""
        try:
            key = (orjson.dumps(element), kinds, context)
        except TypeError:
            concept = concept_from_json(element)
            return concept, tuple(self.match(concept, kinds, context))
        found = self._elements.get(key)
        if found is None:
            concept = concept_from_json(element)
            found = (concept, tuple(self.match(concept, kinds, context)))
            if len(self._elements) < _CACHE_LIMIT:
                self._elements[key] = found
        return found

    def match(self, concept: Concept, kind: str | Iterable[str] | None = None, context: Iterable[str] = ()) -> list[ConceptMatch]:
        """Every known concept (of `kind`, if given) this CodeableConcept denotes, each once.

        `context` is other text about the same record (route, dosage): it can qualify a
        name (prednisolone + ophthalmic) or exclude one, never match on its own.
        """
        key = (concept, kind if kind is None or isinstance(kind, str) else tuple(kind), tuple(context))
        cached = self._matched.get(key)
        if cached is None:
            cached = self._match(concept, kind, context)
            if len(self._matched) < _CACHE_LIMIT:
                self._matched[key] = cached
        return list(cached)

    def _match(self, concept: Concept, kind: str | Iterable[str] | None, context: Iterable[str]) -> list[ConceptMatch]:
        kinds = None if kind is None else ({kind} if isinstance(kind, str) else set(kind))
        found: dict[str, ConceptMatch] = {}
        candidates = [d for d in self.definitions.values() if kinds is None or d.kind in kinds]

        def add(definition: ConceptDefinition, how: str) -> None:
            if (kinds is None or definition.kind in kinds) and definition.id not in found:
                found[definition.id] = ConceptMatch(definition.id, how)

        for c in concept.codings:
            if not c.code:
                continue
            for definition, known in self._by_code.get((c.system or "", c.code), ()):
                add(definition, f"code {known.system}|{known.code} [{known.status}]")
            for definition, _ in self._any_system.get(c.code, ()):
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
            surrounding = " | ".join((*names, *context))
            for definition in candidates:
                if definition.id in found:
                    continue
                excluded = definition._exclude_pattern is not None and definition._exclude_pattern.search(surrounding)
                if excluded:
                    continue
                how = self._name_match(definition, names, surrounding)
                if how:
                    add(definition, how)
        return list(found.values())

    @staticmethod
    def _name_match(definition: ConceptDefinition, names: tuple[str, ...], surrounding: str) -> str | None:
        for name in names:
            if definition._name_pattern is not None:
                hit = definition._name_pattern.search(name)
                if hit:
                    return f"name '{hit.group(0)}' in \"{_clip(name)}\""
            for qualified in definition.qualified_names:
                hit = qualified.pattern.search(name)
                qualifier = qualified.qualifiers.search(surrounding) if hit else None
                if hit and qualifier:
                    return f"name '{hit.group(0)}' with '{qualifier.group(0)}' in \"{_clip(name)}\""
        return None

    def matches(self, concept: Concept, concept_id: str) -> ConceptMatch | None:
        definition = self.definitions[concept_id]
        return next((m for m in self.match(concept, definition.kind) if m.concept == concept_id), None)


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
