"""Baseline tests missing before a next-line agent (knowledge/monitoring.toml)."""

from __future__ import annotations

from datetime import date, timedelta

from ..assess.patient import PatientFactors
from ..knowledge import BaselineTest, Knowledge
from ..record.model import PatientRecord


def missing_baseline_tests(agent: str, record: PatientRecord, patient: PatientFactors, knowledge: Knowledge) -> tuple[BaselineTest, ...]:
    monitoring = knowledge.monitoring.get(agent)
    if monitoring is None:
        return ()
    latest = {concept: o.effective for concept, o in record.latest_final_results(patient.today).items()}
    missing = []
    # One order for every agent (the knowledge file's), so the cards list tests the same way.
    order = list(knowledge.baseline_tests)
    for test in sorted(monitoring.tests, key=lambda t: order.index(t.id)):
        if test.only_if == "childbearing-potential" and not patient.childbearing_potential:
            continue
        since = patient.today - timedelta(days=test.lookback_days)
        if max((latest.get(concept, date.min) for concept in test.satisfied_by), default=date.min) < since:
            missing.append(test)
    return tuple(missing)
