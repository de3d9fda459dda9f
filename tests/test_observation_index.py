"""Observations read on demand (record/observations.py) give the rules exactly what reading every
Observation first gives them: the latest final result per concept, each score's series, and the notes.
The reference answers here are computed the plain way, over every Observation read."""

from __future__ import annotations

import random
import sys
from datetime import date
from pathlib import Path

import pytest

from clinical import KNOWLEDGE, easi, lab, record
from support import load_scenario, scenario_names

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.synthetic import TODAY, patient_record  # noqa: E402

SCORES = tuple(KNOWLEDGE.response.criteria)
FINAL = {"final", "amended", "corrected"}


def fresh(patient_id, resources):
    """A record nothing has been read from yet: the Observations alone, as sent."""
    return record(*resources, patient_id=patient_id, with_patient=False)


def latest_over_everything(record, today):
    latest = {}
    for entry in record.observations:  # sorted by resource; a later one must be strictly later to win
        if entry.status in FINAL and entry.effective is not None and entry.effective <= today:
            for match in entry.matches:
                current = latest.get(match.concept)
                if current is None or (entry.effective, entry.source) > (current.effective, current.source):
                    latest[match.concept] = entry
    return latest


def series_over_everything(record, concepts):
    return tuple(e for e in record.observations if any(e.is_a(c) for c in concepts))


def baseline_and_since_over_everything(record, concepts, since):
    """Every score from `since` on, and per concept the latest usable one before it (of two on the same day the
    larger label, then the one sent later: the baseline the response rules take)."""
    series = series_over_everything(record, concepts)
    kept = [e for e in series if e.effective is not None and e.effective >= since]
    for concept in concepts:
        usable = [(e.effective, e.source, index, e) for index, e in enumerate(series)
                  if e.is_a(concept) and e.status in FINAL and e.value is not None and e.effective is not None and e.effective < since]
        if usable:
            kept.append(max(usable, key=lambda u: u[:3])[3])
    return tuple(e for e in series if any(e is k for k in kept))


def score(sid, text, day, value):
    return {**easi(day, value), "id": sid, "code": {"text": text}}


def awkward_observations():
    """Observations that make choosing the latest hard: ties, bad statuses, other patients, dates."""
    other_patient = lab("hb-other", "Hemoglobin", "2025-08-30", 6.0, "g/dL")
    other_patient["subject"] = {"reference": "Patient/someone-else"}
    in_error = lab("hb-error", "Hemoglobin", "2025-08-29", 5.0, "g/dL")
    in_error["status"] = "entered-in-error"
    preliminary = lab("hb-prelim", "Hemoglobin", "2025-08-28", 7.0, "g/dL")
    preliminary["status"] = "preliminary"
    amended = lab("plt-amended", "Platelets", "2025-06-01", 90, "10*3/uL")
    amended["status"] = "amended"
    instant = lab("plt-instant", "Platelets", None, 95, "10*3/uL")
    del instant["effectiveDateTime"]
    instant["effectiveInstant"] = "2025-06-01T23:59:00+14:00"
    period = lab("hb-period", "Hemoglobin", None, 12.5, "g/dL")
    del period["effectiveDateTime"]
    period["effectivePeriod"] = {"start": "2025-07-01"}
    return [
        lab("hb-a", "Hemoglobin", "2025-07-01T08:00:00Z", 11.0, "g/dL"),
        lab("hb-b", "Hemoglobin", "2025-07-01", 13.0, "g/dL"),  # same day: the larger label wins
        lab("hb-b", "Hemoglobin", "2025-07-01", 14.0, "g/L"),  # the same label again: the first sent wins
        period,
        lab("hb-month", "Hemoglobin", "2025-07", 10.0, "g/dL"),  # month precision: taken as 2025-07-01
        lab("hb-z", "Hemoglobin", "2025-08-15", 12.0, "g/dL"),  # the latest, sent twice: the first one sent wins
        lab("hb-z", "Hemoglobin", "2025-08-15", 150, "g/L"),
        lab("hb-future", "Hemoglobin", "2025-12-01", 9.0, "g/dL"),  # after today
        lab("hb-bad-date", "Hemoglobin", "2025-13-45", 8.0, "g/dL"),
        lab("hb-odd-unit", "Hemoglobin", "2025-05-01", 8.0, "furlongs"),
        other_patient, in_error, preliminary, amended, instant,
        lab("igra-1", "QuantiFERON", "2025-01-01", result="Negative"),
        lab("igra-2", "QuantiFERON", "2025-02-01", result="Positive"),
        easi("2025-01-06", 30), easi("2025-05-05", 25), easi("2025-05-05", 99),  # 99: outside the EASI range
        {**easi("2025-06-01", 20), "status": "preliminary"},
        # Scores on one day: the larger label is the baseline before a later day, whatever the order sent;
        # the same label twice: the one sent later is the baseline, the one sent first the latest result.
        score("scorad-b", "SCORAD", "2024-11-01", 40), score("scorad-a", "SCORAD", "2024-11-01", 45),
        score("poem-1", "POEM", "2024-11-01", 20), score("poem-1", "POEM", "2024-11-01", 18),
        score("poem-2", "POEM", "2025-08-20", 12), score("poem-2", "POEM", "2025-08-20", 10),
        # A status that is not a string is no result (and no crash).
        {**lab("hb-list-status", "Hemoglobin", "2025-08-31", 4.0, "g/dL"), "status": ["final"]},
        {**score("poem-3", "POEM", "2025-08-30", 2), "status": {"code": "final"}},
        {"resourceType": "Observation", "id": "unrelated", "status": "final", "code": {"text": "Heart rate"},
         "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2025-08-01", "valueQuantity": {"value": 70}},
    ]


def cases():
    for name in scenario_names():
        scenario = load_scenario(name)
        yield name, scenario.patient_id, scenario.of_type("Observation"), scenario.evaluate_at.date()
    for size, seed in ((100, 1), (1000, 2)):
        resources = patient_record(size, seed=seed, patient_id=f"synth-{seed}")
        yield f"synthetic-{size}", f"synth-{seed}", [r for r in resources if r["resourceType"] == "Observation"], TODAY
    yield "awkward", "p", awkward_observations(), date(2025, 9, 1)


CASES = list(cases())


@pytest.mark.parametrize("name, patient_id, observations, today", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("order", ["as sent", "shuffled", "reversed"])
def test_reading_on_demand_answers_as_reading_everything(name, patient_id, observations, today, order):
    sent = list(observations)
    if order == "shuffled":
        random.Random(name).shuffle(sent)
    elif order == "reversed":
        sent.reverse()
    everything = fresh(patient_id, sent)
    on_demand = fresh(patient_id, sent)
    # The rules' questions, asked first of a record nothing has been read from.
    assert on_demand.latest_final_results(today) == latest_over_everything(everything, today)
    assert on_demand.observations_of(SCORES) == series_over_everything(everything, SCORES)
    assert on_demand.latest_final_results(date(2025, 6, 1)) == latest_over_everything(everything, date(2025, 6, 1))
    assert on_demand.notes == everything.notes
    assert on_demand.observations == everything.observations
    for since in (date(2024, 6, 1), date(2025, 1, 6), date(2025, 5, 5), today):
        assert fresh(patient_id, sent).observations_since(SCORES, since) == baseline_and_since_over_everything(everything, SCORES, since)


def test_the_awkward_cases_pick_the_results_a_clinician_would_expect():
    latest = fresh("p", awkward_observations()).latest_final_results(date(2025, 9, 1))
    assert latest["hemoglobin"].source == "Observation/hb-z" and latest["hemoglobin"].value == 12.0
    assert latest["platelets"].source == "Observation/plt-instant" and latest["platelets"].value == 95_000
    assert latest["igra"].result == "positive"
    assert latest["EASI"].value == 25  # 99 is out of range; the preliminary 20 is not a result
    assert latest["POEM"].value == 12  # the same label twice on the latest day: the first sent
    baseline = {e.value for e in fresh("p", awkward_observations()).observations_since(SCORES, date(2025, 1, 1))
                if e.effective < date(2025, 1, 1)}
    assert baseline == {40, 18}  # SCORAD: the larger label (b); POEM: the same label twice, the one sent later
