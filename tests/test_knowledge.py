"""The knowledge files: every entry sourced, every code recognised the ways codes.md describes."""

from __future__ import annotations

import pytest

from cds_service.knowledge import load_knowledge
from cds_service.terminology import Coding, Concept
from cds_service.settings import SettingsError, parse_score_codes

KNOWLEDGE = load_knowledge()
RXNORM, ATC, NDC = "http://www.nlm.nih.gov/research/umls/rxnorm", "http://www.whocc.no/atc", "http://hl7.org/fhir/sid/ndc"
SNOMED, ICD = "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"


def concepts_of(*codings, text=None):
    return {m.concept for m in KNOWLEDGE.concepts.match(Concept(codings=tuple(Coding(*c) for c in codings), text=text))}


@pytest.mark.parametrize(
    "codings, text",
    [
        ([(RXNORM, "1876376")], None),
        ([(RXNORM, "1876366")], None),  # the conflicting RxNorm code (C) is matched too
        ([(ATC, "D11AH05")], None),
        ([(NDC, "0024-5911-01")], None),
        ([(NDC, "00024591901")], None),
        ([], "DUPIXENT 300 MG/2ML SOSY"),
        ([(None, None, "Dupilumab 200 mg pen")], None),
    ],
)
def test_dupilumab_is_recognised_by_any_code_or_name(codings, text):
    assert concepts_of(*codings, text=text) == {"dupilumab"}


@pytest.mark.parametrize("code", ["L20.0", "L20.81", "L20.84", "L20.89", "L20.9"])
def test_atopic_dermatitis_icd10_codes_are_recognised(code):
    assert concepts_of((ICD, code)) == {"atopic_dermatitis"}


@pytest.mark.parametrize("text", ["Contact dermatitis", "Seborrheic dermatitis", "Dupuytren contracture", "Eczema herpeticum"])
def test_lookalikes_are_not_atopic_dermatitis_or_dupilumab(text):
    assert not concepts_of(text=text) & {"atopic_dermatitis", "dupilumab"}


def test_a_serum_iga_is_not_an_iga_score():
    assert concepts_of(text="IgA, serum") == set()
    assert concepts_of(text="IGA SERUM") == set()
    assert concepts_of(text="vIGA-AD") == {"IGA"}


def test_easi_responder_flags_are_not_easi_scores():
    assert concepts_of(text="EASI-75 achieved") == set()
    assert concepts_of(text="EASI percent improvement") == set()
    assert concepts_of(text="Eczema Area and Severity Index") == {"EASI"}


def test_local_score_codes_from_settings_are_recognised():
    local = parse_score_codes("EASI=http://hospital.example/codes|easi-tot;IGA=|iga")
    knowledge = load_knowledge(tuple(sorted(local.items())))
    match = lambda *c: {m.concept for m in knowledge.concepts.match(Concept(codings=(Coding(*c),)))}
    assert match("http://hospital.example/codes", "easi-tot") == {"EASI"}
    assert match("http://other.example", "iga") == {"IGA"}
    assert match("http://other.example", "easi-tot") == set()


@pytest.mark.parametrize("value", ["EASI", "EASI=code-without-bar", "=x|y"])
def test_malformed_score_code_settings_are_refused(value):
    with pytest.raises(SettingsError):
        parse_score_codes(value)


def test_every_claim_cites_known_sources_with_a_status():
    for option in KNOWLEDGE.therapies:
        for approval in option.approvals.values():
            for claim in (approval.claim, *([approval.dose.claim] if approval.dose else [])):
                assert claim.sources and claim.status in {"V", "V2", "S"}
                assert all(s in KNOWLEDGE.sources for s in claim.sources)
    for criterion in KNOWLEDGE.response.criteria.values():
        assert criterion.claim.sources and criterion.claim.status in {"V", "V2", "S"}


def test_orders_only_carry_verified_codes_of_their_region():
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    for option in KNOWLEDGE.therapies:
        for region, approval in option.approvals.items():
            if approval.order:
                codings = [approval.order.codings, *(v.template.codings for v in approval.order.variants)]
                assert all("2196092" not in {code for _, code, _ in c} for c in codings)
                if region == "EU":  # RxNorm is a US terminology: no RxNorm code in a European draft order
                    assert all(system != rxnorm for c in codings for system, _, _ in c)


def test_the_specified_ranking_puts_jak_inhibitors_first_and_baricitinib_is_not_us_approved():
    ordered = sorted(KNOWLEDGE.therapies, key=lambda o: (o.group_rank, o.position))
    assert [o.id for o in ordered[:3]] == ["upadacitinib", "abrocitinib", "baricitinib"]
    baricitinib = next(o for o in KNOWLEDGE.therapies if o.id == "baricitinib")
    assert baricitinib.approvals["US"].decision == "not-approved"
    lebrikizumab = next(o for o in KNOWLEDGE.therapies if o.id == "lebrikizumab")
    assert lebrikizumab.approvals["US"].decision == "approved"  # the overview's "not yet approved" is out of date
