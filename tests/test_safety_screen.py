"""Ranking after the safety screen: contraindicated agents are not offered, cautions lower the rank."""

from __future__ import annotations

import pytest

from cds_service.assess.findings import assess_patient
from cds_service.recommend.ranking import rank_next_line_options
from clinical import KNOWLEDGE, NON_RESPONSE, TODAY, condition, lab, record


def plan(*extra, birth="1980-01-01", gender="female", region="US"):
    assessment = assess_patient(record(*NON_RESPONSE, *extra, birth=birth, gender=gender), TODAY, KNOWLEDGE)
    return rank_next_line_options(assessment, KNOWLEDGE, region)


def offered(result):
    return [o.option.id for o in result.offered]


def excluded(result):
    return {e.option.id: e.reason for e in result.excluded}


def test_an_adult_without_cautions_gets_the_seed_order():
    result = plan()
    assert offered(result)[:5] == ["upadacitinib", "abrocitinib", "tralokinumab", "lebrikizumab", "nemolizumab"]
    drafted = [o.option.id for o in result.suggested()]
    assert drafted == ["upadacitinib", "abrocitinib", "tralokinumab", "lebrikizumab", "nemolizumab"]
    assert set(excluded(result)) == {"baricitinib"}


def test_in_the_eu_baricitinib_is_offered():
    result = plan(region="EU")
    assert "baricitinib" in offered(result)


@pytest.mark.parametrize(
    "observation",
    [
        lab("anc", "Neutrophils [#/volume] in Blood", "2025-07-01", 0.8, "10*3/uL"),
        lab("anc", "Absolute neutrophil count", "2025-07-01", 800, "/uL"),
        lab("hb", "Hemoglobin", "2025-07-01", 75, "g/L"),
        lab("alc", "Absolute lymphocyte count", "2025-07-01", 0.4, "10^9/L"),
    ],
)
def test_low_blood_counts_exclude_jak_inhibitors_in_any_unit(observation):
    reasons = excluded(plan(observation))
    assert {"upadacitinib", "abrocitinib"} <= set(reasons)
    assert "2025-07-01" in reasons["upadacitinib"]


def test_a_count_in_an_unknown_unit_is_not_compared():
    result = plan(lab("anc", "Absolute neutrophil count", "2025-07-01", 0.8, "furlongs"))
    assert "upadacitinib" in offered(result)


def test_a_lab_older_than_the_lookback_is_not_used():
    result = plan(lab("anc", "Absolute neutrophil count", "2023-07-01", 0.8, "10*3/uL"))
    assert "upadacitinib" in offered(result)


def test_low_platelets_exclude_abrocitinib_only():
    result = plan(lab("plt", "Platelet count", "2025-08-01", 120, "10*3/uL"))
    assert "abrocitinib" in excluded(result) and "upadacitinib" in offered(result)


@pytest.mark.parametrize(
    "finding, agents",
    [
        (condition("tb", "Pulmonary tuberculosis", icd="A15.0"), {"upadacitinib", "abrocitinib"}),
        (condition("hbv", "Chronic hepatitis B", icd="B18.1"), {"upadacitinib", "abrocitinib"}),
        (lab("hbs", "HBsAg", "2025-08-01", result="Positive"), {"upadacitinib", "abrocitinib"}),
        (condition("preg", "Pregnant state, incidental", onset="2025-06-01", icd="Z33.1"), {"upadacitinib", "abrocitinib", "methotrexate", "mycophenolate"}),
        (lab("tpmt", "TPMT activity", "2024-01-01", 4.1, "U/mL"), {"azathioprine"}),
        (lab("egfr", "eGFR", "2025-08-01", 22, "mL/min/{1.73_m2}"), {"abrocitinib"}),
        (condition("hf", "Hepatic failure", icd="K72.10"), {"upadacitinib", "abrocitinib"}),
        (lab("hb", "Hemoglobin", "2025-08-01", 4.4, "mmol/L"), {"upadacitinib", "abrocitinib"}),
    ],
)
def test_contraindications_remove_the_agent(finding, agents):
    assert agents <= set(excluded(plan(finding)))


def test_a_resolved_tb_or_a_negative_hbsag_is_no_contraindication():
    result = plan(condition("tb", "Pulmonary tuberculosis", status="resolved"), lab("hbs", "HBsAg", "2025-08-01", result="Negative"))
    assert "upadacitinib" in offered(result)


@pytest.mark.parametrize(
    "extra, birth",
    [
        ((condition("pe", "Pulmonary embolism", onset="2019-01-01", status="resolved", icd="I26.99"),), "1980-01-01"),
        ((condition("bc", "Personal history of breast cancer", icd="Z85.3"),), "1980-01-01"),
        ((condition("htn", "Essential hypertension", icd="I10"),), "1960-01-01"),
    ],
)
def test_boxed_warning_populations_push_jak_inhibitors_below_the_biologics(extra, birth):
    result = plan(*extra, birth=birth)
    ids = offered(result)
    assert ids.index("tralokinumab") < ids.index("upadacitinib")
    upadacitinib = next(o for o in result.offered if o.option.id == "upadacitinib")
    assert any("boxed warning" in c or "JAK boxed warning" in c for c in upadacitinib.cautions)
    assert result.suggested()[0].option.id == "tralokinumab"


def test_hypertension_under_50_is_no_boxed_warning_population():
    result = plan(condition("htn", "Essential hypertension", icd="I10"), birth="1990-01-01")
    assert offered(result)[0] == "upadacitinib"


def test_family_history_of_cancer_is_not_a_history_of_malignancy():
    result = plan(condition("fh", "Family history of breast cancer"))
    assert offered(result)[0] == "upadacitinib"


def test_the_40_kg_minimum_binds_adolescents_not_adults():
    adult_without_weight = plan()
    assert "lebrikizumab" in [o.option.id for o in adult_without_weight.suggested()]
    adolescent_without_weight = plan(birth="2011-01-01")
    assert {"lebrikizumab", "upadacitinib"} <= set(offered(adolescent_without_weight))
    assert not {"lebrikizumab", "upadacitinib"} & {o.option.id for o in adolescent_without_weight.suggested()}
    heavy = plan(lab("wt", "Body weight", "2025-08-01", 70, "kg"), birth="2011-01-01")
    assert {"lebrikizumab", "upadacitinib"} <= {o.option.id for o in heavy.suggested()}
    light = plan(lab("wt", "Body weight", "2025-08-01", 80, "[lb_av]"), birth="2012-01-01")  # 36 kg at 13
    assert "lebrikizumab" in excluded(light) and "upadacitinib" in excluded(light)
    assert "under 18 years from 40 kg; patient weighs 36 kg" in excluded(light)["upadacitinib"]


def test_an_adolescent_is_drafted_the_adolescent_tralokinumab_dose():
    adolescent = next(o for o in plan(birth="2010-01-01").offered if o.option.id == "tralokinumab")
    adult = next(o for o in plan().offered if o.option.id == "tralokinumab")
    assert adolescent.order is not None and adult.order is not None
    assert adolescent.order.instruction.startswith("300 mg subcutaneously once, then 150 mg")
    assert adult.order.instruction.startswith("600 mg subcutaneously once, then 300 mg")


def test_eye_disease_before_dupilumab_is_a_caution_on_il13_blockers_naming_the_condition():
    result = plan(condition("conj", "Chronic allergic conjunctivitis", onset="2019-04-01", icd="H10.45"))
    tralokinumab = next(o for o in result.offered if o.option.id == "tralokinumab")
    caution = next(c for c in tralokinumab.cautions if c.startswith("prior eye surface disease"))
    assert "Chronic allergic conjunctivitis, since 2019-04-01" in caution
    upadacitinib = next(o for o in result.offered if o.option.id == "upadacitinib")
    assert not any("eye surface" in c for c in upadacitinib.cautions)


def test_phototherapy_moves_down_after_skin_cancer_or_with_a_photosensitive_disorder():
    for history in (condition("mel", "Malignant melanoma of skin", onset="2015-03-01", status="resolved"),
                    condition("sle", "Systemic lupus erythematosus")):
        result = plan(history)
        nbuvb = next(o for o in result.offered if o.option.id == "nb-uvb")
        assert any("before phototherapy" in c and history["code"]["text"] in c for c in nbuvb.cautions)
        assert nbuvb.score > 4  # behind its group rank


def test_breastfeeding_rules_out_jak_inhibitors_methotrexate_and_mycophenolate():
    result = excluded(plan(condition("bf", "Breastfeeding")))
    for agent in ("upadacitinib", "abrocitinib", "methotrexate", "mycophenolate"):
        assert agent in result and "breastfeeding" in result[agent]
    assert "tralokinumab" not in result


def test_a_former_smoker_by_smoking_status_moves_jak_inhibitors_behind_the_biologics():
    smoker = lab("smk", "Tobacco smoking status", "2025-06-01", result="Former smoker")
    result = plan(smoker)
    assert offered(result)[:3] == ["tralokinumab", "lebrikizumab", "nemolizumab"]
    upadacitinib = next(o for o in result.offered if o.option.id == "upadacitinib")
    assert any(c.startswith("current or past smoker") and "2025-06-01" in c for c in upadacitinib.cautions)
    never = lab("smk", "Tobacco smoking status", "2025-06-01", result="Never smoker")
    assert offered(plan(never))[0] == "upadacitinib"
