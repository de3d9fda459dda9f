"""Baseline tests missing before a next-line agent (knowledge/monitoring.toml)."""

from __future__ import annotations

from datetime import date, timedelta

from ..assess.patient import PatientFactors, final_results
from ..knowledge import BaselineTest, Knowledge
from ..record.model import PatientRecord


def missing_baseline_tests(agent: str, record: PatientRecord, patient: PatientFactors, knowledge: Knowledge) -> tuple[BaselineTest, ...]:
    monitoring = knowledge.monitoring.get(agent)
    if monitoring is None:
        return ()
    latest: dict[str, date] = {}  # concept -> latest result up to today, indexed once
    for observation in final_results(record):
        if observation.effective <= patient.today:  # type: ignore[operator]
            for match in observation.matches:
                if observation.effective > latest.get(match.concept, date.min):  # type: ignore[operator]
                    latest[match.concept] = observation.effective  # type: ignore[assignment]
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
