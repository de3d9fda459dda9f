"""The knowledge files are safe to edit: a malformed copy is refused with the file, the entry and the key of
each problem, before the service starts; the reviewer's worksheet (docs/knowledge.md) is what the service applies."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from cds_service.assess.patient import LabResult, PatientFactors
from cds_service.knowledge import KnowledgeError, check_knowledge, load_knowledge, predicates
from cds_service.knowledge.loader import PACKAGED
from cds_service.knowledge.show import describe_when, knowledge_worksheet
from cds_service.recommend.predicates import PREDICATES, Situation, holds
from cds_service.record.model import ConditionEntry, MedicationKind, MedicationUse
from cds_service.terminology import Concept, ConceptMatch
from support import child_env

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = load_knowledge()


@pytest.fixture
def knowledge_copy(tmp_path):
    """A copy of the service's knowledge files to break, and a way to edit one of them."""
    folder = tmp_path / "knowledge"
    shutil.copytree(PACKAGED, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", "schemas"))

    def edit(file: str, old: str, new: str, count: int = 1) -> Path:
        path = folder / file
        text = path.read_text()
        assert old in text, f"{old!r} is not in {file}: the test's premise no longer holds"
        path.write_text(text.replace(old, new, count))
        return folder

    return edit


def problems_of(folder: Path) -> list[str]:
    return [str(p) for p in check_knowledge(folder)]


def test_the_service_s_own_knowledge_files_pass_every_check():
    assert check_knowledge() == []


# One malformed copy per kind of defect: each refusal names the file, the entry and the key.
DEFECTS = [
    pytest.param("safety.toml", 'below = 1000, unit = "/uL"', 'belw = 1000, unit = "/uL"',
                 "safety.toml: rule jak-neutrophils: when.lab.belw: unknown key", id="misspelt-predicate-key"),
    pytest.param("safety.toml", 'when = { finding = "drosd" }', 'when = { findings = "drosd" }',
                 "safety.toml: rule il13-after-drosd: when.findings: unknown key", id="unknown-predicate"),
    pytest.param("therapies.toml", 'label = "Upadacitinib (Rinvoq)"\ndrug_class = "JAK1 inhibitor"',
                 'label = "Upadacitinib (Rinvoq)"\nboxed_warnin = "x"\ndrug_class = "JAK1 inhibitor"',
                 "therapies.toml: option.upadacitinib: boxed_warnin: unknown key", id="unknown-key"),
    pytest.param("response.toml", "weeks = 16", 'weeks = "sixteen"',
                 "response.toml: adequate_trial: weeks: 'sixteen' is not of type 'integer'", id="wrong-type"),
    pytest.param("safety.toml", 'reason = "absolute lymphocyte count {value} {unit} ({date}) is below {below} {unit}"\n', "",
                 "safety.toml: rule jak-lymphocytes: reason: required key is missing", id="missing-required-key"),
    pytest.param("monitoring.toml", 'lookback_days = 90\norder_text = "Hepatic function panel"', 'order_text = "Hepatic function panel"',
                 "monitoring.toml: test.liver", id="window-missing"),
    pytest.param("therapies.toml", 'in JADE EXTEND", status = "V2", sources = ["jade-extend-2022"] }', 'in JADE EXTEND" }',
                 "therapies.toml: option.abrocitinib: evidence.status: required key is missing", id="fact-without-status"),
    pytest.param("advice.toml", 'status = "S"\nsources = ["droracle-2025"]\n\n[advice.continue_basic_therapy]',
                 'status = "S"\n\n[advice.continue_basic_therapy]',
                 "advice.toml: advice.confirm_before_switch: sources: required key is missing", id="fact-without-source"),
    pytest.param("safety.toml", 'sources = ["cibinqo-label", "verification-2026-11"]\n\n[[rule]]\nid = "jak-active-tb"',
                 'sources = ["cibinqo-labl", "verification-2026-11"]\n\n[[rule]]\nid = "jak-active-tb"',
                 "safety.toml: rule abrocitinib-platelets: sources[0]: unknown source 'cibinqo-labl'", id="unknown-source"),
    pytest.param("safety.toml", 'any_of = ["vte"]', 'any_of = ["vtee"]',
                 "safety.toml: rule jak-vte: when.condition.any_of[0]: 'vtee' names no concept", id="unknown-concept"),
    pytest.param("safety.toml", 'agents = ["abrocitinib"]\nwhen = { lab = { test = "platelets"', 'agents = ["abrocitinb"]\nwhen = { lab = { test = "platelets"',
                 "safety.toml: rule abrocitinib-platelets: agents[0]: 'abrocitinb' names no option", id="unknown-option"),
    pytest.param("monitoring.toml", 'tests = ["cbc", "pregnancy"]', 'tests = ["cbc", "pregnancy-test"]',
                 "monitoring.toml: agent.mycophenolate: tests[1]: 'pregnancy-test' names no test", id="unknown-test"),
    pytest.param("safety.toml", '{ test = "hemoglobin", below = 8, unit = "g/dL" }', '{ test = "hemoglobin", below = 8, unit = "g/L" }',
                 "safety.toml: rule jak-hemoglobin: when.lab.unit: 'g/L' is not the unit hemoglobin results are read in (g/dL)",
                 id="threshold-in-another-unit"),
    pytest.param("safety.toml", 'reason = "active tuberculosis ({source})"', 'reason = "active tuberculosis ({sorce})"',
                 "safety.toml: rule jak-active-tb: reason: unknown placeholder {sorce}", id="unknown-placeholder"),
    pytest.param("safety.toml", 'reason = "active tuberculosis ({source})"', 'reason = "active tuberculosis ({value})"',
                 "safety.toml: rule jak-active-tb: reason: unknown placeholder {value} (allowed here: {source})",
                 id="placeholder-of-another-predicate"),
    pytest.param("cards.toml", 'is {trial_weeks} weeks"\nocular-sight-threat', 'is {weeks_of_trial} weeks"\nocular-sight-threat',
                 "cards.toml: summary.switch-too-early: unknown placeholder {weeks_of_trial}", id="card-text-placeholder"),
    pytest.param("safety.toml", 'effect = "contraindicated"\nreason = "absolute neutrophil', 'effect = "contra-indicated"\nreason = "absolute neutrophil',
                 "safety.toml: rule jak-neutrophils: effect: 'contra-indicated' is not one of", id="unknown-effect"),
    pytest.param("safety.toml", 'rank_penalty = 1.5\nreason = "history of malignancy ({source})"\nadvice = "JAK boxed warning"',
                 'reason = "history of malignancy ({source})"\nadvice = "JAK boxed warning"',
                 "safety.toml: rule jak-malignancy: rank_penalty: required key is missing", id="caution-without-penalty"),
    pytest.param("concepts.toml", '[concept.dupilumab]\nkind = "drug"', '[concept.dupilumab]\nkind = "medicine"',
                 "concepts.toml: concept.dupilumab: kind: 'medicine' is not one of", id="unknown-concept-kind"),
    pytest.param("concepts.toml", '[concept.keratitis]\nkind = "condition"\ngroup = "eye"', '[concept.keratitis]\nkind = "condition"\ngroup = "eyes"',
                 "concepts.toml: concept.keratitis: group: 'eyes' is not one of", id="unknown-group"),
    pytest.param("concepts.toml", '[concept.atopic_dermatitis]', '[concept.atopic_eczema]',
                 "concepts.toml: concept.atopic_dermatitis: the service reads this concept", id="concept-the-code-names"),
    pytest.param("response.toml", 'instruments = ["EASI", "IGA", "SCORAD"]', 'instruments = ["EASI", "IGA", "SCORADD"]',
                 "response.toml: failure: instruments[2]: 'SCORADD' names no criterion", id="unknown-criterion"),
    pytest.param("response.toml", 'rule = "at_most"\nvalue = 1', 'rule = "at_most"\npercent = 1',
                 "response.toml: criterion.IGA: value: required key is missing", id="threshold-of-another-rule"),
    pytest.param("drosd.toml", "[management.moderate]", "[management.moderat]",
                 "drosd.toml: management.moderat: unknown key", id="grade-misspelt"),
    pytest.param("therapies.toml", '[option.lebrikizumab.approval.US]\ndecision = "approved"\nmin_age_years = 12\nmin_weight_kg = 40',
                 '[option.lebrikizumab.approval.US]\ndecision = "approved"\nmin_age_years = 12\nmin_weight_kg = -40',
                 "therapies.toml: option.lebrikizumab: approval.US.min_weight_kg: -40 is less than or equal to the minimum of 0", id="out-of-range"),
    pytest.param("therapies.toml", "[boxed_on_cards.jak]", "[boxed_on_cards.jaks]",
                 "therapies.toml: boxed_on_cards.jaks: 'jaks' names no rank group", id="boxed-warning-of-no-group"),
    pytest.param("therapies.toml", "[boxed_on_cards.jak]", "[boxed_on_cards.biologic]",
                 "therapies.toml: boxed_on_cards.biologic: no option of rank group 'biologic' has a boxed warning",
                 id="boxed-warning-of-a-group-without-one"),
    pytest.param("therapies.toml", 'with the reason shown", status = "S", sources = ["droracle-2025"] }', 'with the reason shown", status = "S" }',
                 "therapies.toml: ranking: order.sources: required key is missing", id="ranking-without-source"),
]


@pytest.mark.parametrize("file, old, new, expected", DEFECTS)
def test_a_malformed_copy_is_refused_naming_file_entry_and_key(knowledge_copy, file, old, new, expected):
    folder = knowledge_copy(file, old, new)
    problems = problems_of(folder)
    assert any(p.startswith(expected) for p in problems), problems
    with pytest.raises(KnowledgeError) as refused:
        load_knowledge(folder=str(folder))
    assert any(str(p).startswith(expected) for p in refused.value.problems)


def test_a_file_that_is_not_toml_is_refused_with_its_line(knowledge_copy):
    folder = knowledge_copy("safety.toml", "[agent_sets]", "[agent_sets")
    assert any(p.startswith("safety.toml: not valid TOML") and "line" in p for p in problems_of(folder))


def test_the_misspelt_threshold_that_once_fired_on_normal_counts_can_no_longer_load(knowledge_copy):
    """`belw = 1000` used to load silently and contraindicate JAK inhibitors on any neutrophil count."""
    folder = knowledge_copy("safety.toml", 'below = 1000, unit = "/uL"', 'belw = 1000, unit = "/uL"')
    with pytest.raises(KnowledgeError):
        load_knowledge(folder=str(folder))


def test_knowledge_check_on_the_command_line(knowledge_copy, tmp_path):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cds_service.cli", "knowledge", "check", *args],
                              capture_output=True, text=True, timeout=60, env=child_env(tmp_path))

    ok = run()
    assert ok.returncode == 0 and ok.stdout == ""
    folder = knowledge_copy("safety.toml", 'any_of = ["vte"]', 'any_of = ["vtee"]')
    knowledge_copy("safety.toml", 'reason = "active tuberculosis ({source})"', 'reason = "active tuberculosis ({sorce})"')
    bad = run(str(folder))
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("safety.toml: rule jak-") for line in lines)
    assert "Traceback" not in bad.stderr
    missing = run(str(folder / "nowhere"))
    assert missing.returncode == 64 and "is not a folder" in missing.stderr and "Traceback" not in missing.stderr


def test_the_reviewer_s_worksheet_in_docs_is_what_the_service_applies():
    written = (ROOT / "docs" / "knowledge.md").read_text()
    assert written == knowledge_worksheet(KNOWLEDGE), "docs/knowledge.md is stale: run `cds-service knowledge show > docs/knowledge.md`"


def test_the_worksheet_shows_each_agent_s_rules_with_their_status_and_sources():
    sheet = knowledge_worksheet(KNOWLEDGE)
    upadacitinib = sheet.split("### Upadacitinib (Rinvoq)")[1].split("### ")[0]
    assert "**US**: approved (from 12 years; from 40 kg under 18 years; since 2022-01" in upadacitinib
    assert "neutrophils (absolute) below 1,000 /uL (within 365 days)" in upadacitinib
    assert "Boxed warning (US only): serious infections" in upadacitinib
    assert "Special warning (EU only): use only if no suitable treatment alternative" in upadacitinib
    assert "[V; Rinvoq US label" in upadacitinib
    lebrikizumab = sheet.split("### Lebrikizumab (Ebglyss)")[1].split("### ")[0]
    assert "from 40 kg under 18 years" in lebrikizumab
    assert "Adequate trial: an adequate trial of dupilumab is at least 16 weeks [S; Dr.Oracle overview 2025]" in sheet


# -- the condition language --------------------------------------------------------------------


def test_every_predicate_of_the_schema_has_an_evaluator_a_description_and_no_more():
    assert set(PREDICATES) == set(predicates())
    for spec in predicates().values():
        assert "Example:" in spec.description and spec.facts
        example = {spec.name: _EXAMPLES[spec.name][0]}
        assert describe_when(example, KNOWLEDGE)  # the worksheet can say it in words


def _condition(concept: str, status: str = "active") -> ConditionEntry:
    return ConditionEntry(f"Condition/{concept}", Concept(text=concept), (ConceptMatch(concept, "test"),), status, None, date(2020, 1, 1), None, None)


def _situation(**overrides) -> Situation:
    patient = PatientFactors(
        today=date(2025, 9, 1), age_years=overrides.pop("age", 40), gender=overrides.pop("gender", "female"), weight_kg=None,
        weight_source=None, conditions=overrides.pop("conditions", ()), labs=overrides.pop("labs", {}), source="Patient/p",
        pregnancy=overrides.pop("pregnancy", ()), smoking=overrides.pop("smoking", ()),
        medicines_now=overrides.pop("medicines_now", ()),
    )
    return Situation(patient, "US", 365, **overrides)


def _medicine(name: str, concept: str) -> MedicationUse:
    return MedicationUse(f"MedicationStatement/{name}", MedicationKind.STATEMENT, Concept(text=name), (ConceptMatch(concept, "test"),),
                         "active", date(2025, 1, 1), None, date(2025, 1, 1))


def _lab(concept: str, value: float | None, day: date = date(2025, 8, 1), result: str | None = None) -> dict[str, LabResult]:
    return {concept: LabResult(concept, value, None, result, day, f"Observation/{concept}")}


# Per predicate: its value, a situation where it holds (with the facts expected), and one where it does not.
_EXAMPLES = {
    "age_at_least": (50, _situation(age=50), {"age": "50", "age_at_least": "50"}, _situation(age=49)),
    "age_at_most": (50, _situation(age=50), {"age": "50", "age_at_most": "50"}, _situation(age=51)),
    "sex": ("female", _situation(gender="female"), {"sex": "female"}, _situation(gender="male")),
    "condition": ({"any_of": ["vte"], "state": "ever"}, _situation(conditions=(_condition("vte", "resolved"),)),
                  {"source": "vte, since 2020-01-01"}, _situation(conditions=(_condition("mace"),))),
    "lab": ({"test": "neutrophils", "below": 1000, "unit": "/uL"}, _situation(labs=_lab("neutrophils", 800)),
            {"value": "800", "unit": "/uL", "date": "2025-08-01", "source": "2025-08-01", "below": "1,000", "at_least": ""},
            _situation(labs=_lab("neutrophils", 800, date(2024, 5, 1)))),  # out of the look-back window
    "lab_result": ({"test": "hbsag", "result": "positive"}, _situation(labs=_lab("hbsag", None, result="positive")),
                   {"date": "2025-08-01", "source": "2025-08-01", "result": "positive"},
                   _situation(labs=_lab("hbsag", None, result="negative"))),
    "finding": ("prior-eye-disease", _situation(prior_eye_disease=("Allergic conjunctivitis, since 2019-04-01",)), {"source": "Allergic conjunctivitis, since 2019-04-01"}, _situation(drosd=True)),
    "ordered_dose_above_mg": (15, _situation(ordered_dose_mg=30), {"dose": "30", "ordered_dose_above_mg": "15"}, _situation(ordered_dose_mg=15)),
    "smoker": (True, _situation(smoking=("Tobacco use, since 2010-01-01",)), {"source": "Tobacco use, since 2010-01-01"}, _situation()),
    "taking": ({"any_of": ["antiplatelet"]}, _situation(medicines_now=(_medicine("clopidogrel 75 mg tablet", "antiplatelet"),)),
               {"medicine": "clopidogrel 75 mg tablet", "source": "since 2025-01-01"},
               _situation(medicines_now=(_medicine("aspirin 81 mg tablet", "raises_methotrexate_exposure"),))),
    "pregnant": (True, _situation(pregnancy=("pregnancy test (hCG) positive on 2025-08-18",)),
                 {"source": "pregnancy test (hCG) positive on 2025-08-18"}, _situation()),
}


@pytest.mark.parametrize("name", sorted(_EXAMPLES))
def test_each_predicate_holds_where_its_description_says_and_gives_its_facts(name):
    value, holding, facts, failing = _EXAMPLES[name]
    assert holds({name: value}, holding) == facts
    assert holds({name: value}, failing) is None
    assert set(facts) <= set(predicates()[name].facts)  # a rule's text may use every fact given


def test_every_predicate_has_its_example_case():
    assert set(_EXAMPLES) == set(PREDICATES)


def test_a_list_of_lab_predicates_must_all_hold():
    both = {"lab_result": [{"test": "anti_hbc", "result": "positive"}, {"test": "hbsag", "result": "negative"}]}
    labs = {**_lab("anti_hbc", None, result="positive"), **_lab("hbsag", None, result="negative")}
    assert holds(both, _situation(labs=labs)) is not None
    assert holds(both, _situation(labs={**labs, **_lab("hbsag", None, result="positive")})) is None


def test_a_never_expiring_result_counts_however_old():
    tpmt = {"lab": {"test": "tpmt", "below": 6.3, "unit": "U/mL", "never_expires": True}}
    assert holds(tpmt, _situation(labs=_lab("tpmt", 5.0, date(2001, 1, 1)))) is not None
    assert holds({"lab": {**tpmt["lab"], "never_expires": False}}, _situation(labs=_lab("tpmt", 5.0, date(2001, 1, 1)))) is None


def test_no_clinical_number_of_the_rules_is_written_in_the_card_code():
    """The numbers the issue found in Python (16 weeks, the never-expiring 36500 days, 12-50 years) live in the files."""
    code = "\n".join(p.read_text() for p in (ROOT / "cds_service").rglob("*.py"))
    assert not re.search(r"\b36500\b", code)
    assert not re.search(r"\b16 weeks\b", code)
    assert "12 <= " not in code and "<= 50" not in code


# -- a deployment's own knowledge folder (CDS_KNOWLEDGE_DIR) ----------------------------------------


def _cli(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cds_service.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env=child_env(tmp_path, CDS_AUTH="off", **settings))


def test_the_service_answers_from_the_knowledge_folder_it_is_given(knowledge_copy, tmp_path):
    """An adequate trial of 30 weeks in the deployment's copy: the adult 26 weeks into dupilumab is not yet a failure."""
    request = str(ROOT / "fhir_fixtures" / "requests" / "ad-primary-nonresponse-adult.patient-view.json")
    packaged = _cli(tmp_path, "evaluate", request, "--now", "2025-09-01T12:00:00Z")
    assert [c["source"]["topic"]["code"] for c in json_cards(packaged)] == ["dupilumab-inadequate-response"]
    folder = knowledge_copy("response.toml", "weeks = 16", "weeks = 30")
    edited = _cli(tmp_path, "evaluate", request, "--now", "2025-09-01T12:00:00Z", CDS_KNOWLEDGE_DIR=str(folder))
    assert edited.returncode == 0 and json_cards(edited) == []


def json_cards(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return json.loads(result.stdout)["cards"]


@pytest.mark.server
def test_the_service_does_not_start_on_a_broken_knowledge_folder(knowledge_copy, tmp_path):
    folder = knowledge_copy("safety.toml", 'below = 1000, unit = "/uL"', 'belw = 1000, unit = "/uL"')
    for command in (["serve", "--port", "1"], ["evaluate", str(ROOT / "fhir_fixtures" / "requests" / "ad-dupilumab-responder.patient-view.json")]):
        result = _cli(tmp_path, *command, CDS_KNOWLEDGE_DIR=str(folder))
        assert result.returncode == 78, result.stderr
        assert "fails its checks" in result.stderr and "safety.toml: rule jak-neutrophils: when.lab.belw: unknown key" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""


def test_a_knowledge_folder_that_does_not_exist_is_a_settings_error(tmp_path):
    result = _cli(tmp_path, "evaluate", "-", CDS_KNOWLEDGE_DIR=str(tmp_path / "nowhere"))
    assert result.returncode == 64 and "CDS_KNOWLEDGE_DIR" in result.stderr and "Traceback" not in result.stderr
