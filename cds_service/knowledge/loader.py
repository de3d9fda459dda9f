"""Read a folder of knowledge files, check them, and build the typed view (`Knowledge`).

Three checks, each problem named by file, entry and key:
1. every file against its JSON Schema (schemas/): unknown keys, wrong types, missing keys, values out of range;
2. every reference: source ids, concept / option / test / criterion ids, units of lab thresholds, the
   concepts the code itself names;
3. every text's {placeholders} against those its schema allows.
Nothing is built until all three pass, so the service never starts on a knowledge base that fails them.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
from jsonschema.exceptions import ValidationError, best_match

from .concepts import ConceptMatcher, build_concepts
from .model import (
    Advice,
    AgentMonitoring,
    Approval,
    ApprovalDecision,
    BaselineTest,
    BoxedOnCards,
    CardTexts,
    ChangeScale,
    Claim,
    CriterionRule,
    DosingInterval,
    DrosdGrade,
    DrosdKnowledge,
    DrosdManagement,
    DrugWarning,
    Effect,
    EvidenceStatus,
    Explained,
    Knowledge,
    OrderTemplate,
    OrderVariant,
    OverrideKind,
    PartialResponse,
    PregnancyEvidence,
    PreSwitchStep,
    PreSwitchWhen,
    RankGroup,
    Ranking,
    Region,
    ResponseCriterion,
    ResponseKnowledge,
    SafetyRule,
    SeverityBands,
    SmokingEvidence,
    Source,
    TherapyOption,
    WarningKind,
    fill,
    number_text,
    placeholders,
)
from .vocabulary import CONCEPTS_NAMED_IN_CODE

PACKAGED = Path(__file__).resolve().parent
SCHEMAS = PACKAGED / "schemas"
_CARD_SECTIONS = ("summary", "opening", "course", "change", "plan", "brief", "evidence")  # cards.toml sections of texts with placeholders
FILES = ("sources", "concepts", "response", "therapies", "safety", "monitoring", "drosd", "advice", "cards")
# Top-level tables whose keys (or array items) are entries of their own; other top-level tables are one entry.
_COLLECTIONS = frozenset({
    "option", "rank_groups", "concept", "criterion", "test", "agent", "rule", "advice", "override_reasons",
    "management", "agent_sets", "systems", "region", "topics", "summary", "opening", "course", "grading", "change", "plan", "boxed_on_cards",
})


@dataclass(frozen=True)
class KnowledgeProblem:
    file: str
    entry: str
    key: str
    message: str

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.file, self.entry, self.key) if part)
        return f"{where}: {self.message}"


class KnowledgeError(ValueError):
    """The knowledge files fail their checks; raised when the service starts."""

    def __init__(self, problems: Iterable[KnowledgeProblem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(map(str, self.problems)))


@dataclass(frozen=True)
class Predicate:
    """One predicate of the condition language (schemas/safety.schema.json, $defs.predicates)."""

    name: str
    description: str
    facts: tuple[str, ...]  # what a rule's text may use when the predicate is in its `when`


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validators() -> Mapping[str, jsonschema.protocols.Validator]:
    schemas = {name: _schema(name) for name in (*FILES, "common")}
    registry: referencing.Registry = referencing.Registry().with_resources(
        (schema["$id"], referencing.Resource.from_contents(schema)) for schema in schemas.values()
    )
    return {name: jsonschema.Draft202012Validator(schemas[name], registry=registry) for name in FILES}


@lru_cache(maxsize=1)
def predicates() -> Mapping[str, Predicate]:
    specs = _schema("safety")["$defs"]["predicates"]["properties"]
    return {name: Predicate(name, spec["description"], tuple(spec["x-facts"])) for name, spec in specs.items()}


@lru_cache(maxsize=1)
def card_placeholders() -> Mapping[str, Mapping[str, frozenset[str]]]:
    sections = _schema("cards")["properties"]
    return {
        section: {name: frozenset(spec["x-placeholders"]) for name, spec in sections[section]["properties"].items()}
        for section in _CARD_SECTIONS
    }


# -- locating a problem ------------------------------------------------------------------------


def _locate(file: str, data: Any, path: Iterable[Any]) -> tuple[str, str]:
    """(entry, key) of a place in a file's data: `option.upadacitinib` and `approval.US.min_age_years`;
    an item of an array of tables is named by its id (`rule jak-neutrophils`)."""
    path = list(path)
    depth = 1 if file == "sources" or (path and path[0] not in _COLLECTIONS) else 2
    head, rest = path[:depth], path[depth:]
    if len(head) == 2 and isinstance(head[1], int):
        items = data.get(head[0])
        item = items[head[1]] if isinstance(items, list) and head[1] < len(items) else None
        entry = f"{head[0]} {item['id']}" if isinstance(item, dict) and isinstance(item.get("id"), str) else f"{head[0]}[{head[1]}]"
    else:
        entry = ".".join(str(p) for p in head)
    return entry, _dotted(rest)


def _dotted(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_problems(file: str, data: dict[str, Any]) -> list[KnowledgeProblem]:
    problems = []
    for error in sorted(_validators()[file].iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        error = _most_telling(error)
        path = list(error.absolute_path)
        message = error.message
        named: list[str | None] = []
        if error.validator == "required":
            named = re.findall(r"^'([^']+)' is a required property", message)
            message = "required key is missing"
        elif error.validator == "additionalProperties":
            found = re.search(r"\((.*) (?:was|were) unexpected\)", message)
            named = re.findall(r"'([^']+)'", found.group(1)) if found else []
            message = "unknown key (see the schema for the keys allowed here)"
        elif error.validator == "dependentRequired":
            message = f"{message} (these keys go together)"
        for name in named or [None]:
            entry, key = _locate(file, data, path if name is None else [*path, name])
            problems.append(KnowledgeProblem(f"{file}.toml", entry, key, message))
    return problems


def _most_telling(error: ValidationError) -> ValidationError:
    """For a value that fits none of several shapes (oneOf / anyOf), the complaint of the shape it was meant
    to have: not "is not of type array" for a table, but the table's unknown or missing key."""
    while error.context:
        # A shape chosen by a constant (a criterion's `rule`) that the value does not have is not the one meant.
        other_shapes = {e.relative_schema_path[0] for e in error.context if e.validator == "const" and e.relative_path}
        meant = [e for e in error.context if e.relative_schema_path[0] not in other_shapes] or list(error.context)
        fitting = [e for e in meant if not (e.validator == "type" and not e.relative_path)]
        telling = [e for e in fitting if e.validator in {"additionalProperties", "required", "enum", "const"}]
        deeper = best_match(telling or fitting or meant)
        if deeper is None or deeper is error:
            break
        error = deeper
    return error


# -- checking references and texts ------------------------------------------------------------


class _Checker:
    def __init__(self, data: Mapping[str, dict[str, Any]]):
        self.data = data
        self.problems: list[KnowledgeProblem] = []

    def problem(self, file: str, path: Iterable[Any], message: str) -> None:
        entry, key = _locate(file, self.data[file], path)
        self.problems.append(KnowledgeProblem(f"{file}.toml", entry, key, message))

    def template(self, file: str, path: list[Any], text: str, allowed: Iterable[str]) -> None:
        allowed = set(allowed)
        try:
            used = placeholders(text)
        except ValueError as error:
            self.problem(file, path, f"malformed placeholder ({error}); write {{{{ and }}}} for literal braces")
            return
        for name in sorted(used - allowed):
            shown = ", ".join(f"{{{a}}}" for a in sorted(allowed)) or "none"
            self.problem(file, path, f"unknown placeholder {{{name}}} (allowed here: {shown})")

    def check(self) -> list[KnowledgeProblem]:
        self.sources()
        self.concepts_named_in_code()
        self.therapies()
        self.safety()
        self.monitoring()
        self.response()
        self.texts()
        return self.problems

    def sources(self) -> None:
        for file, path, ids in _cited_sources(self.data):
            for index, source in enumerate(ids):
                if source not in self.data["sources"]:
                    self.problem(file, [*path, index] if path[-1] == "sources" else path, f"unknown source {source!r} (not in sources.toml)")

    def concept(self, file: str, path: list[Any], concept_id: str, kinds: set[str]) -> None:
        found = self.data["concepts"]["concept"].get(concept_id)
        if found is None:
            self.problem(file, path, f"{concept_id!r} names no concept of concepts.toml")
        elif found["kind"] not in kinds:
            self.problem(file, path, f"{concept_id!r} is a concept of kind {found['kind']}, not {' or '.join(sorted(kinds))}")

    def concepts_named_in_code(self) -> None:
        concepts = self.data["concepts"]["concept"]
        for concept_id, kind in CONCEPTS_NAMED_IN_CODE.items():
            if concept_id not in concepts:
                self.problem("concepts", ["concept", concept_id], f"the service reads this concept (kind {kind}); it must be defined")
            elif concepts[concept_id]["kind"] != kind:
                self.problem("concepts", ["concept", concept_id, "kind"], f"the service reads this concept as kind {kind}")

    def therapies(self) -> None:
        therapies = self.data["therapies"]
        for name, group in therapies["rank_groups"].items():
            for index, other in enumerate(group.get("not_combined_with", ())):
                if other not in therapies["rank_groups"]:
                    self.problem("therapies", ["rank_groups", name, "not_combined_with", index], f"{other!r} names no rank group of [rank_groups]")
        for name in therapies["boxed_on_cards"]:
            if name not in therapies["rank_groups"]:
                self.problem("therapies", ["boxed_on_cards", name], f"{name!r} names no rank group of [rank_groups]")
            elif not any(o["rank_group"] == name and any(w["kind"] == "boxed" for w in o.get("warnings", ()))
                         for o in therapies["option"].values()):
                self.problem("therapies", ["boxed_on_cards", name], f"no option of rank group {name!r} has a boxed warning to state")
        regions = therapies["region"]
        systems = self.data["concepts"]["systems"]
        for code, region in regions.items():
            for index, system in enumerate(region["order_code_systems"]):
                if system not in systems:
                    self.problem("therapies", ["region", code, "order_code_systems", index], f"{system!r} names no system of concepts.toml [systems]")
        for option_id, option in therapies["option"].items():
            if option["rank_group"] not in therapies["rank_groups"]:
                self.problem("therapies", ["option", option_id, "rank_group"], f"{option['rank_group']!r} names no rank group of [rank_groups]")
            for index, warning in enumerate(option.get("warnings", ())):
                self.regions_named("therapies", ["option", option_id, "warnings", index, "regions"], warning.get("regions", ()))
            for code, approval in option["approval"].items():
                where = ["option", option_id, "approval", code]
                if code not in regions:
                    self.problem("therapies", where, f"{code!r} names no region of [region]")
                    continue
                if "order" in approval:
                    self.order(option_id, where + ["order"], approval["order"], regions[code])

    def order(self, option_id: str, where: list[Any], order: Mapping[str, Any], region: Mapping[str, Any]) -> None:
        """A draft order: of a drug concept, its texts' placeholders, and codes only of the systems that hold in its region."""
        if self.data["concepts"]["concept"].get(option_id, {}).get("kind") != "drug":
            self.problem("therapies", where,
                         "an option with a draft order must have the id of a drug concept of concepts.toml (orders are recognised by it)")
        for index, coding in enumerate(order.get("codings", ())):
            if coding["system"] not in region["order_code_systems"]:
                self.problem("therapies", [*where, "codings", index, "system"],
                             f"{coding['system']!r} is not a code system of this region's draft orders ({', '.join(region['order_code_systems'])})")
        for key in ("text", "instruction"):
            self.template("therapies", [*where, key], order[key], {"dose_mg"} if "dose_mg" in order else set())
        for index, variant in enumerate(order.get("for_patients", ())):
            if not any(k in variant for k in ("age_below", "age_at_least", "weight_below_kg", "weight_at_least_kg")):
                self.problem("therapies", [*where, "for_patients", index], "names no patients: give an age or a weight bound")
            has_dose = "dose_mg" in variant or ("dose_mg" in order and "text" not in variant)
            for key in ("text", "instruction"):
                if key in variant:
                    self.template("therapies", [*where, "for_patients", index, key], variant[key], {"dose_mg"} if has_dose else set())

    def regions_named(self, file: str, path: list[Any], named: Iterable[str]) -> None:
        for index, code in enumerate(named):
            if code not in self.data["therapies"]["region"]:
                self.problem(file, [*path, index], f"{code!r} names no region of therapies.toml [region]")

    def safety(self) -> None:
        safety, options = self.data["safety"], self.data["therapies"]["option"]
        for set_name, members in safety["agent_sets"].items():
            for index, member in enumerate(members):
                if member not in options:
                    self.problem("safety", ["agent_sets", set_name, index], f"{member!r} names no option of therapies.toml")
        specs = predicates()
        for index, rule in enumerate(safety["rule"]):
            where: list[Any] = ["rule", index]
            for position, agent in enumerate(rule["agents"]):
                if agent not in options and agent not in safety["agent_sets"]:
                    self.problem("safety", [*where, "agents", position], f"{agent!r} names no option of therapies.toml and no agent set")
            self.predicates("safety", [*where, "when"], rule["when"])
            self.regions_named("safety", [*where, "regions"], rule.get("regions", ()))
            facts = {fact for name in rule["when"] for fact in specs[name].facts}
            self.template("safety", [*where, "reason"], rule["reason"], facts)
            if "advice" in rule:
                self.template("safety", [*where, "advice"], rule["advice"], facts)
        self.template("safety", ["lab_lookback", "explain"], safety["lab_lookback"]["explain"], {"days"})
        pregnancy = safety["pregnancy"]
        self.template("safety", ["pregnancy", "explain"], pregnancy["explain"], {"within_days"})
        self.template("safety", ["stale_result", "text"], safety["stale_result"]["text"], {"finding"})
        self.evidence_concepts("smoking", safety["smoking"], {"tests": "qualitative"})
        self.evidence_concepts("pregnancy", pregnancy, {"tests": "qualitative", "due_dates": "date"})

    def evidence_concepts(self, section: str, entry: Mapping[str, Any], results: Mapping[str, str]) -> None:
        """What shows a patient state (safety.toml [pregnancy], [smoking]): `conditions` are condition concepts;
        each key of `results` lists lab concepts whose result is of that kind."""
        concepts = self.data["concepts"]["concept"]
        for index, concept_id in enumerate(entry["conditions"]):
            self.concept("safety", [section, "conditions", index], concept_id, {"condition"})
        for key, result in results.items():
            for index, concept_id in enumerate(entry[key]):
                self.concept("safety", [section, key, index], concept_id, {"lab"})
                if concepts.get(concept_id, {}).get("kind") == "lab" and concepts[concept_id].get("result") != result:
                    self.problem("safety", [section, key, index], f"{concept_id!r} must be a lab concept with result = \"{result}\"")

    def monitoring(self) -> None:
        monitoring, options = self.data["monitoring"], self.data["therapies"]["option"]
        for test_id, test in monitoring["test"].items():
            for index, lab in enumerate(test["satisfied_by"]):
                self.concept("monitoring", ["test", test_id, "satisfied_by", index], lab, {"lab", "vital"})
            if "when" in test:
                self.predicates("monitoring", ["test", test_id, "when"], test["when"])
        for agent, entry in monitoring["agent"].items():
            if agent not in options:
                self.problem("monitoring", ["agent", agent], f"{agent!r} names no option of therapies.toml")
            for index, test_id in enumerate(entry["tests"]):
                if test_id not in monitoring["test"]:
                    self.problem("monitoring", ["agent", agent, "tests", index], f"{test_id!r} names no test of [test]")

    def response(self) -> None:
        response = self.data["response"]
        criteria = response["criterion"]
        for instrument, criterion in criteria.items():
            self.concept("response", ["criterion", instrument], instrument, {"score"})
            own = {"relative_reduction": "percent", "absolute_reduction": "points", "at_most": "value"}[criterion["rule"]]
            self.template("response", ["criterion", instrument, "explain"], criterion["explain"], {own})
        for index, instrument in enumerate(response["failure"]["instruments"]):
            if instrument not in criteria:
                self.problem("response", ["failure", "instruments", index], f"{instrument!r} names no criterion of [criterion]")
        self.template("response", ["adequate_trial", "explain"], response["adequate_trial"]["explain"], {"weeks"})
        self.template("response", ["adherence", "explain"], response["adherence"]["explain"], {"gap_days"})
        self.template("response", ["loss_of_response", "explain"], response["loss_of_response"]["explain"], set())
        self.template("response", ["baseline", "explain"], response["baseline"]["explain"], {"within_days"})
        severity = response["severity"]
        self.template("response", ["severity", "explain"], severity["explain"], {"instrument", "value"})
        self.template("response", ["severity", "rule", "explain"], severity["rule"]["explain"], set())
        for instrument in severity["mild_at_most"]:
            if instrument not in response["failure"]["instruments"]:
                self.problem("response", ["severity", "mild_at_most", instrument], f"{instrument!r} names no instrument of [failure]")
        partial = response["partial_response"]
        self.template("response", ["partial_response", "explain"], partial["explain"], {"improvement", "criterion"})
        for instrument in partial["improvement"]:
            if instrument not in criteria:
                self.problem("response", ["partial_response", "improvement", instrument], f"{instrument!r} names no criterion of [criterion]")
            elif criteria[instrument]["rule"] == "at_most":
                self.problem("response", ["partial_response", "improvement", instrument],
                             f"{instrument!r} is judged by a highest score (at_most): an improvement from baseline has no unit here")
        for index, step in enumerate(partial["step"]):
            allowed = {"interval", "sources", "labelled"} if step["when"] == "interval_stretched" else set()
            self.template("response", ["partial_response", "step", index, "text"], step["text"], allowed)
        self.template("response", ["dupilumab_interval", "explain"], response["dupilumab_interval"]["explain"], {"weeks"})

    def texts(self) -> None:
        """The placeholders of the texts of drosd.toml, advice.toml and cards.toml."""
        drosd = self.data["drosd"]
        for name in ("steroid_drops", "persistent_severe"):
            self.template("drosd", ["grading", name, "explain"], drosd["grading"][name]["explain"], {"weeks"})
        for grade, entry in drosd["management"].items():
            self.template("drosd", ["management", grade, "text"], entry["text"], {"treatment", "referral", "steroid_weeks", "red_flag_hours"})
        self.template("drosd", ["while_switching", "text"], drosd["while_switching"]["text"], {"treatment", "referral"})
        self.template("drosd", ["restart", "text"], drosd["restart"]["text"], {"grade", "treatment", "referral"})
        self.template("drosd", ["restart", "window", "explain"], drosd["restart"]["window"]["explain"], {"weeks"})
        for name in ("incidence", "referral", "pitfall"):
            self.template("drosd", [name, "text"], drosd[name]["text"], set())
        self.template("drosd", ["red_flags", "text"], drosd["red_flags"]["text"], {"hours"})
        self.template("drosd", ["red_flags", "management", "text"], drosd["red_flags"]["management"]["text"], {"hours"})
        for name, entry in self.data["advice"]["advice"].items():
            self.template("advice", ["advice", name, "text"], entry["text"], {"adequate_trial_weeks"})
        for section, names in card_placeholders().items():
            for name, allowed in names.items():
                self.template("cards", [section, name], self.data["cards"][section][name], allowed)

    def predicates(self, file: str, path: list[Any], when: Mapping[str, Any]) -> None:
        """The concepts a `when` names, and the units its thresholds are written in."""
        concepts = self.data["concepts"]["concept"]
        for index, concept_id in enumerate(when.get("condition", {}).get("any_of", ())):
            self.concept(file, [*path, "condition", "any_of", index], concept_id, {"condition"})
        for index, concept_id in enumerate(when.get("taking", {}).get("any_of", ())):
            self.concept(file, [*path, "taking", "any_of", index], concept_id, {"drug"})
        for name in ("lab", "lab_result"):
            items = when.get(name)
            for index, item in enumerate(items if isinstance(items, list) else [items] if items else []):
                where = [*path, name, index] if isinstance(items, list) else [*path, name]
                found = concepts.get(item["test"])
                if found is None or found["kind"] not in {"lab", "vital"}:
                    self.concept(file, [*where, "test"], item["test"], {"lab", "vital"})
                elif name == "lab" and found.get("canonical_unit") != item["unit"]:
                    self.problem(file, [*where, "unit"], f"{item['unit']!r} is not the unit {item['test']} results are read in "
                                 f"({found.get('canonical_unit') or 'none: its results carry no comparable value'})")
                elif name == "lab_result" and found.get("result") != "qualitative":
                    self.problem(file, [*where, "test"], f"{item['test']!r} is not a qualitative test (concepts.toml result = \"qualitative\")")


def _cited_sources(data: Mapping[str, Any]) -> Iterator[tuple[str, list[Any], list[str]]]:
    """Every `sources` list and concept-code `source` of every file but sources.toml: (file, path, ids)."""

    def walk(node: Any, path: list[Any]) -> Iterator[tuple[list[Any], list[str]]]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "sources" and isinstance(value, list):
                    yield [*path, key], value
                elif key == "source" and isinstance(value, str):
                    yield [*path, key], [value]
                else:
                    yield from walk(value, [*path, key])
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, [*path, index])

    for file, content in data.items():
        if file != "sources":
            for path, ids in walk(content, []):
                yield file, path, ids


# -- reading and building ---------------------------------------------------------------------


def read_files(folder: Path) -> tuple[dict[str, dict[str, Any]], list[KnowledgeProblem]]:
    data: dict[str, dict[str, Any]] = {}
    problems: list[KnowledgeProblem] = []
    for name in FILES:
        path = folder / f"{name}.toml"
        try:
            data[name] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems.append(KnowledgeProblem(f"{name}.toml", "", "", f"missing from {folder}"))
            continue
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            problems.append(KnowledgeProblem(f"{name}.toml", "", "", f"not valid TOML ({error})"))
            continue
        problems += _schema_problems(name, data[name])
    return data, problems


def check_knowledge(folder: Path | str | None = None) -> list[KnowledgeProblem]:
    """Every problem of a folder of knowledge files (none: it loads)."""
    data, problems = read_files(Path(folder) if folder else PACKAGED)
    if problems:
        return problems
    return _Checker(data).check()


@lru_cache(maxsize=8)
def load_knowledge(
    local_score_codes: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (), folder: str | None = None
) -> Knowledge:
    """Load and check the knowledge files (the packaged ones, or those of `folder`); `local_score_codes`
    adds a deployment's local score codes. Raises KnowledgeError listing every problem."""
    data, problems = read_files(Path(folder) if folder else PACKAGED)
    if not problems:
        problems = _Checker(data).check()
    if problems:
        raise KnowledgeError(problems)
    try:
        return _build(data, dict(local_score_codes))
    except ValueError as error:  # CDS_SCORE_CODES naming an unknown instrument
        raise KnowledgeError([KnowledgeProblem("concepts.toml", "", "", str(error))]) from None


def _claim(entry: Mapping[str, Any]) -> Claim:
    return Claim(EvidenceStatus(entry["status"]), tuple(entry["sources"]))


def _advice(entry: Mapping[str, Any], **values: Any) -> Advice:
    return Advice(fill(entry["text"], **values) if values else entry["text"], _claim(entry))


def _explained(entry: Mapping[str, Any], number: str) -> Explained:
    return Explained(int(entry[number]), fill(entry["explain"], **{number: entry[number]}), _claim(entry))


def _order_template(order: Mapping[str, Any], systems: Mapping[str, str]) -> OrderTemplate:
    """A draft-order template, with the orders for named patients (`for_patients`) that replace its dose and text."""
    def filled(entry: Mapping[str, Any], key: str, dose_mg: Any) -> str:
        return fill(entry[key], dose_mg=number_text(dose_mg)) if dose_mg is not None else entry[key]

    base = OrderTemplate(
        text=filled(order, "text", order.get("dose_mg")),
        codings=_codings(order.get("codings", ()), systems),
        dose_mg=order.get("dose_mg"),
        frequency_per_day=order.get("frequency_per_day"),
        instruction=filled(order, "instruction", order.get("dose_mg")),
    )
    variants = []
    for entry in order.get("for_patients", ()):
        dose_mg = entry.get("dose_mg", base.dose_mg if "text" not in entry else None)
        text = filled(entry if "text" in entry else order, "text", dose_mg)  # the variant's dose in the product text too
        template = replace(base, text=text, dose_mg=dose_mg, instruction=filled(entry, "instruction", dose_mg))
        variants.append(OrderVariant(template, _claim(entry), entry.get("age_below"), entry.get("age_at_least"),
                                     entry.get("weight_below_kg"), entry.get("weight_at_least_kg")))
    return replace(base, variants=tuple(variants))


def _approval(entry: Mapping[str, Any], systems: Mapping[str, str]) -> Approval:
    return Approval(
        decision=ApprovalDecision(entry["decision"]),
        claim=_claim(entry),
        dose=_advice(entry["dose"]) if "dose" in entry else None,
        order=_order_template(entry["order"], systems) if "order" in entry else None,
        min_age_years=entry.get("min_age_years"),
        min_weight_kg=entry.get("min_weight_kg"),
        since=entry.get("since"),
        note=entry.get("note"),
        min_weight_below_age_years=entry.get("min_weight_below_age_years"),
    )


def _codings(entries: Iterable[Mapping[str, Any]], systems: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    return tuple((systems[c["system"]], c["code"], c["display"]) for c in entries)


def _build(data: Mapping[str, dict[str, Any]], local_score_codes: Mapping[str, tuple[tuple[str, str], ...]]) -> Knowledge:
    systems: dict[str, str] = data["concepts"]["systems"]
    definitions = build_concepts(data["concepts"]["concept"], systems, local_score_codes)
    sources = {key: Source(id=key, title=v["title"], short=v["short"], kind=v["kind"], url=v.get("url"), note=v.get("note"))
               for key, v in data["sources"].items()}

    response_file = data["response"]
    adequate_trial = _explained(response_file["adequate_trial"], "weeks")
    criteria = {}
    for instrument, entry in response_file["criterion"].items():
        rule = CriterionRule(entry["rule"])
        own = {CriterionRule.RELATIVE_REDUCTION: "percent", CriterionRule.ABSOLUTE_REDUCTION: "points", CriterionRule.AT_MOST: "value"}[rule]
        explain = fill(entry["explain"], **{own: number_text(entry[own])})
        criteria[instrument] = ResponseCriterion(instrument, rule, float(entry[own]), explain, _claim(entry), ChangeScale(entry["change"]))
    severity = response_file["severity"]
    partial = response_file["partial_response"]
    interval = response_file["dupilumab_interval"]
    response = ResponseKnowledge(
        adequate_trial=adequate_trial,
        adequate_trial_note=response_file["adequate_trial"].get("note"),
        criteria=criteria,
        failure_instruments=tuple(response_file["failure"]["instruments"]),
        failure_claim=_claim(response_file["failure"]),
        loss_of_response=Advice(response_file["loss_of_response"]["explain"], _claim(response_file["loss_of_response"])),
        adherence_gap=_explained(response_file["adherence"], "gap_days"),
        baseline_window=_explained(response_file["baseline"], "within_days"),
        change_claim=_claim(response_file["change"]),
        partial_response=PartialResponse(
            improvement={name: float(value) for name, value in partial["improvement"].items()},
            explain=partial["explain"],
            claim=_claim(partial),
            steps=tuple(PreSwitchStep(step["id"], PreSwitchWhen(step["when"]), step["text"], _claim(step)) for step in partial["step"]),
        ),
        severity=SeverityBands(
            mild_at_most={name: float(value) for name, value in severity["mild_at_most"].items()},
            explain=severity["explain"],
            claim=_claim(severity),
            rule=Advice(severity["rule"]["explain"], _claim(severity["rule"])),
        ),
        dupilumab_interval=DosingInterval(
            int(interval["weeks"]), int(interval["adult_age_years"]), fill(interval["explain"], weeks=interval["weeks"]), _claim(interval)
        ),
    )

    therapy_file = data["therapies"]
    groups = {
        name: RankGroup(name, int(g["rank"]), g["label"], _claim(g), g.get("note"), bool(g.get("exclusive")),
                        frozenset(g.get("not_combined_with", ())), bool(g.get("replaces_dupilumab")))
        for name, g in therapy_file["rank_groups"].items()
    }
    regions = {
        code: Region(code, r["name"], r["regulator"], frozenset(r["order_code_systems"]), _claim(r))
        for code, r in therapy_file["region"].items()
    }
    therapies = []
    for position, (option_id, entry) in enumerate(therapy_file["option"].items()):
        therapies.append(TherapyOption(
            id=option_id,
            label=entry["label"],
            drug_class=entry["drug_class"],
            group=groups[entry["rank_group"]],
            approvals={region: _approval(a, systems) for region, a in entry["approval"].items()},
            position=position,
            evidence=_advice(entry["evidence"]) if "evidence" in entry else None,
            evidence_brief=entry["evidence"]["brief"] if "evidence" in entry else None,
            warnings=tuple(DrugWarning(WarningKind(w["kind"]), w["text"], _claim(w), frozenset(w.get("regions", ())), w.get("brief"))
                           for w in entry.get("warnings", ())),
            note=entry.get("note"),
        ))

    advice_file = data["advice"]
    advice = {key: _advice(entry, adequate_trial_weeks=adequate_trial.value) for key, entry in advice_file["advice"].items()}

    drosd_file = data["drosd"]
    grading = drosd_file["grading"]
    steroid_drops = _explained(grading["steroid_drops"], "weeks")
    referral = _advice(drosd_file["referral"])
    red_flag_hours = int(drosd_file["red_flags"]["hours"])
    drosd = DrosdKnowledge(
        steroid_drops=steroid_drops,
        persistent_severe=_explained(grading["persistent_severe"], "weeks"),
        severity_words={grade: frozenset(w.lower() for w in grading["severity_codes"][grade]) for grade in ("mild", "moderate", "severe")},
        severity_claim=_claim(grading["severity_codes"]),
        management={
            DrosdGrade(grade): DrosdManagement(
                bool(entry["keep_dupilumab"]), entry["treatment"],
                fill(entry["text"], treatment=entry["treatment"], referral=referral.text, steroid_weeks=steroid_drops.value,
                     red_flag_hours=red_flag_hours), _claim(entry))
            for grade, entry in drosd_file["management"].items()
        },
        while_switching=_advice(drosd_file["while_switching"]),
        referral=referral,
        red_flags=_advice(drosd_file["red_flags"], hours=red_flag_hours),
        red_flag_hours=red_flag_hours,
        red_flag_management=_advice(drosd_file["red_flags"]["management"], hours=red_flag_hours),
        pitfall=_advice(drosd_file["pitfall"]),
        incidence=_advice(drosd_file["incidence"]),
        restart=_advice(drosd_file["restart"]),
        restart_window=_explained(drosd_file["restart"]["window"], "weeks"),
    )

    safety_file = data["safety"]
    agent_sets = {name: set(members) for name, members in safety_file["agent_sets"].items()}
    rules = tuple(
        SafetyRule(
            id=entry["id"],
            agents=frozenset(a for name in entry["agents"] for a in agent_sets.get(name, {name})),
            when=entry["when"],
            effect=Effect(entry["effect"]),
            rank_penalty=float(entry.get("rank_penalty", 0)),
            reason=entry["reason"],
            advice=entry.get("advice"),
            claim=_claim(entry),
            note=entry.get("note"),
            draft=bool(entry.get("draft", True)),
            regions=frozenset(entry.get("regions", ())),
            penalty_group=entry.get("penalty_group"),
        )
        for entry in safety_file["rule"]
    )

    pregnancy = safety_file["pregnancy"]
    monitoring_file = data["monitoring"]
    tests = {
        test_id: BaselineTest(
            id=test_id,
            label=entry["label"],
            short=entry["short"],
            satisfied_by=tuple(entry["satisfied_by"]),
            lookback_days=entry.get("lookback_days"),
            order_text=entry["order_text"],
            order_codings=_codings(entry.get("order_codings", ()), systems),
            when=entry.get("when", {}),
            when_label=entry.get("when_label"),
        )
        for test_id, entry in monitoring_file["test"].items()
    }
    monitoring = {
        agent: AgentMonitoring(agent, tuple(tests[t] for t in entry["tests"]), _claim(entry), entry.get("note"))
        for agent, entry in monitoring_file["agent"].items()
    }
    windows = monitoring_file["windows"]

    cards_file = data["cards"]
    return Knowledge(
        sources=sources,
        regions=regions,
        concepts=ConceptMatcher(definitions),
        response=response,
        therapies=tuple(therapies),
        advice=advice,
        override_reasons={OverrideKind(kind): dict(reasons) for kind, reasons in advice_file["override_reasons"].items()},
        drosd=drosd,
        safety_rules=rules,
        lab_lookback=_explained(safety_file["lab_lookback"], "days"),
        failed_group_penalty=float(therapy_file["history"]["failed_group_penalty"]),
        history_claim=_claim(therapy_file["history"]),
        combination=Advice(therapy_file["combination"]["explain"], _claim(therapy_file["combination"])),
        ranking=Ranking(_advice(therapy_file["ranking"]["guideline"]), _advice(therapy_file["ranking"]["order"])),
        boxed_on_cards={name: BoxedOnCards(name, entry["label"], _claim(entry), entry.get("note"))
                        for name, entry in therapy_file["boxed_on_cards"].items()},
        pregnancy=PregnancyEvidence(
            conditions=tuple(pregnancy["conditions"]), tests=tuple(pregnancy["tests"]), due_dates=tuple(pregnancy["due_dates"]),
            within_days=int(pregnancy["within_days"]), explain=fill(pregnancy["explain"], within_days=pregnancy["within_days"]),
            claim=_claim(pregnancy),
        ),
        stale_result=Advice(safety_file["stale_result"]["text"], _claim(safety_file["stale_result"])),
        smoking=SmokingEvidence(
            conditions=tuple(safety_file["smoking"]["conditions"]), tests=tuple(safety_file["smoking"]["tests"]),
            explain=safety_file["smoking"]["explain"], claim=_claim(safety_file["smoking"]),
        ),
        monitoring=monitoring,
        monitoring_windows=Advice(windows["explain"], _claim(windows)),
        baseline_tests=tests,
        cards=CardTexts(dict(cards_file["topics"]), {s: dict(cards_file[s]) for s in _CARD_SECTIONS}),
    )
