"""Response to dupilumab, from AD severity scores recorded as Observations.

Baseline: the last score on or before the day dupilumab started, within the window of
response.toml [baseline]; an older one is kept only to show why no reduction was judged. A criterion
(knowledge/response.toml) is met when any on-drug score meets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ..knowledge import Knowledge, ResponseCriterion
from ..knowledge.model import CriterionRule
from ..record.model import PatientRecord
from ..record.observations import RESULT_STATUSES
from .course import DupilumabCourse


@dataclass(frozen=True)
class SeverityScore:
    instrument: str
    value: float
    day: date
    source: str
    recognised_by: str


@dataclass(frozen=True)
class InstrumentResponse:
    instrument: str
    criterion: ResponseCriterion
    baseline: SeverityScore | None
    on_drug: tuple[SeverityScore, ...]  # by date
    meeting: tuple[SeverityScore, ...]  # on-drug scores that meet the criterion
    old_baseline: SeverityScore | None = None  # the last score before the start, too old to be the baseline

    @property
    def reached(self) -> bool:
        return bool(self.meeting)

    @property
    def latest(self) -> SeverityScore | None:
        return self.on_drug[-1] if self.on_drug else None

    def meets(self, score: SeverityScore) -> bool | None:
        """Whether `score` meets the criterion from this baseline; None when it cannot be judged."""
        return self.criterion.meets(score.value, self.baseline.value if self.baseline else None)

    def change_from_baseline(self, score: SeverityScore) -> float | None:
        if self.baseline is None:
            return None
        return score.value - self.baseline.value

    def percent_change(self, score: SeverityScore) -> float | None:
        if self.baseline is None or self.baseline.value == 0:
            return None
        return 100 * (score.value - self.baseline.value) / self.baseline.value

    def improvement(self, score: SeverityScore) -> float | None:
        """How far `score` is below the baseline in the criterion's own unit (percent of the baseline for a
        relative reduction, points for an absolute one); None for a highest-score criterion or no baseline."""
        rule = self.criterion.rule
        if rule is CriterionRule.RELATIVE_REDUCTION:
            percent = self.percent_change(score)
            return None if percent is None else -percent
        if rule is CriterionRule.ABSOLUTE_REDUCTION:
            change = self.change_from_baseline(score)
            return None if change is None else -change
        return None


@dataclass(frozen=True)
class ResponseAssessment:
    instruments: tuple[InstrumentResponse, ...]

    @property
    def any_response(self) -> bool:
        return any(i.reached for i in self.instruments)


def severity_scores(record: PatientRecord, knowledge: Knowledge, since: date | None = None) -> dict[str, list[SeverityScore]]:
    """Scores by instrument, oldest first; only final results with a date and a value. With `since`, only
    those from that day on and the latest one before it (the baseline of a course starting then)."""
    scores: dict[str, list[SeverityScore]] = {}
    criteria = knowledge.response.criteria
    observations = record.observations_of(criteria) if since is None else record.observations_since(criteria, since)
    for observation in observations:
        if observation.status not in RESULT_STATUSES or observation.effective is None or observation.value is None:
            continue
        for match in observation.matches:
            if match.concept in knowledge.response.criteria:
                scores.setdefault(match.concept, []).append(
                    SeverityScore(match.concept, observation.value, observation.effective, observation.source, match.how)
                )
    for series in scores.values():
        series.sort(key=lambda s: (s.day, s.source))
    return scores


def assess_response(course: DupilumabCourse, record: PatientRecord, knowledge: Knowledge) -> ResponseAssessment:
    results = []
    window = knowledge.response.baseline_window.value
    # Only the course's scores and the baseline before it count: years of earlier scores are not read.
    for instrument, series in severity_scores(record, knowledge, since=course.start).items():
        criterion = knowledge.response.criteria[instrument]
        before = [s for s in series if s.day <= course.start]
        baseline = before[-1] if before else None
        old_baseline = None
        if baseline is not None and (course.start - baseline.day).days > window:
            baseline, old_baseline = None, baseline  # it no longer describes the disease dupilumab was started for
        on_drug = tuple(s for s in series if course.on_drug(s.day))
        if not on_drug:
            continue
        meeting = tuple(s for s in on_drug if criterion.meets(s.value, baseline.value if baseline else None))
        results.append(InstrumentResponse(instrument, criterion, baseline, on_drug, meeting, old_baseline))
    order = list(knowledge.response.criteria)
    results.sort(key=lambda r: order.index(r.instrument))
    return ResponseAssessment(tuple(results))
