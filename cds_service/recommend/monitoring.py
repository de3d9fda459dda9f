"""Baseline tests missing before a next-line agent (knowledge/monitoring.toml)."""

from __future__ import annotations

from datetime import timedelta

from ..assess.patient import PatientFactors
from ..knowledge import BaselineTest, Knowledge
from .predicates import Situation, holds


def missing_baseline_tests(agent: str, patient: PatientFactors, knowledge: Knowledge, region: str) -> tuple[BaselineTest, ...]:
    """The agent's baseline tests without a final result in their window (latest results: the patient's labs)."""
    monitoring = knowledge.monitoring.get(agent)
    if monitoring is None:
        return ()
    situation = Situation(patient, region, knowledge.lab_lookback_days)
    missing = []
    # One order for every agent (the knowledge file's), so the cards list tests the same way.
    order = list(knowledge.baseline_tests)
    for test in sorted(monitoring.tests, key=lambda t: order.index(t.id)):
        if test.when and holds(test.when, situation) is None:
            continue
        latest = max((patient.labs[c].day for c in test.satisfied_by if c in patient.labs), default=None)
        if latest is None or (test.lookback_days is not None and latest < patient.today - timedelta(days=test.lookback_days)):
            missing.append(test)
    return tuple(missing)


