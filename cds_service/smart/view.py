"""What the app shows: the course on a timeline (inline SVG) beside the cards the service would show.

Pure functions of the patient record, its assessment and the rendered cards: the same engine as the
CDS service. Every drawn mark has a text equivalent (SVG title and description, and data tables).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from typing import Any

from markdown_it import MarkdownIt

from ..assess.findings import Assessment
from ..assess.patient import conditions_in_group
from ..assess.response import SeverityScore, severity_scores
from ..knowledge import Knowledge, vocabulary
from ..recommend.ranking import NextLinePlan
from ..record.model import PatientRecord

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")  # FHIR text is data: never raw HTML

WIDTH = 960
LEFT = 150  # room for lane labels
RIGHT = 20
DRUG = "#1a5fb4"  # blue
SCORE = "#26282b"
BASELINE = "#5e5c64"
TARGET = "#1c7a3a"  # green
EYE = "#b5420a"  # orange
RED_FLAG = "#c01c28"
STEROID = "#7a3fbf"  # purple


@dataclass
class ScoreSeries:
    instrument: str
    label: str
    scores: list[SeverityScore]
    baseline: SeverityScore | None = None
    target: float | None = None
    target_label: str | None = None


@dataclass
class CourseView:
    patient_label: str
    today: date
    svg: str
    series: list[ScoreSeries]
    cards: list[dict[str, Any]]
    plan: NextLinePlan | None
    findings: list[str]
    reasoning: list[str]
    eye_events: list[tuple[str, str, str]] = field(default_factory=list)  # (date, what, source)


def card_html(markdown: str) -> str:
    return _MARKDOWN.render(markdown)


def score_series(record: PatientRecord, assessment: Assessment, knowledge: Knowledge) -> list[ScoreSeries]:
    course = assessment.course
    series = []
    for instrument, scores in severity_scores(record, knowledge).items():
        definition = knowledge.concepts.definitions[instrument]
        criterion = knowledge.response.criteria[instrument]
        baseline = None
        if course is not None:
            before = [s for s in scores if s.day <= course.start]
            baseline = before[-1] if before else None
        target = criterion.target(baseline.value if baseline else None)
        series.append(ScoreSeries(instrument, definition.label, scores, baseline, target,
                                  f"{criterion.explain}: {target:g}" if target is not None else None))
    return series


def build_view(record: PatientRecord, assessment: Assessment, cards: list[dict[str, Any]], plan: NextLinePlan | None,
               knowledge: Knowledge, today: date) -> CourseView:
    demographics = record.demographics_
    parts = [f"Patient/{record.patient_id}"]
    if assessment.patient and assessment.patient.age_years is not None:
        parts.append(f"{assessment.patient.age_years} years")
    if demographics and demographics.gender:
        parts.append(demographics.gender)
    series = score_series(record, assessment, knowledge)
    eye = [(c.began, c.code.label(), c.source) for c in conditions_in_group(record, knowledge, vocabulary.EYE)]
    for group in (vocabulary.EYE_RED_FLAG, vocabulary.EYE_SIGHT_THREAT):
        eye += [(c.began, c.code.label() + " (red flag)", c.source) for c in conditions_in_group(record, knowledge, group)]
    eye_events = sorted(((d.isoformat(), what, source) for d, what, source in eye if d), key=lambda e: e[0])
    return CourseView(
        patient_label=", ".join(parts),
        today=today,
        svg=timeline_svg(record, assessment, series, knowledge, today),
        series=series,
        cards=[{**card, "detail_html": card_html(card.get("detail", ""))} for card in cards],
        plan=plan,
        findings=[f.kind.value for f in assessment.findings],
        reasoning=list(assessment.reasoning),
        eye_events=eye_events,
    )


# -- the timeline ----------------------------------------------------------------------------


class _Scale:
    def __init__(self, start: date, end: date):
        self.start, self.end = start, end
        self.days = max((end - start).days, 1)

    def x(self, day: date) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (day - self.start).days / self.days


def _text(x: float, y: float, content: str, **attributes: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(content)}</text>'


def timeline_svg(record: PatientRecord, assessment: Assessment, series: list[ScoreSeries], knowledge: Knowledge, today: date) -> str:
    course = assessment.course
    days = [s.day for item in series for s in item.scores]
    if course is not None:
        days += [course.start - timedelta(weeks=8)]
    start = min(days, default=today - timedelta(weeks=52))
    start = max(start, today - timedelta(weeks=156))  # three years at most: older history is in the tables
    scale = _Scale(start, today + timedelta(weeks=2))
    parts: list[str] = []
    y = 30

    # axis: a tick per quarter (per month when the span is short)
    step_months = 1 if scale.days < 240 else 3
    tick = date(start.year, start.month, 1)
    while tick <= scale.end:
        if tick >= start:
            x = scale.x(tick)
            parts.append(f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="HEIGHT" stroke="#d0d3d8" stroke-width="1"/>')
            parts.append(_text(x + 2, 14, tick.strftime("%Y-%m"), font_size="11", fill=BASELINE))
        month = tick.month - 1 + step_months
        tick = date(tick.year + month // 12, month % 12 + 1, 1)
    today_x = scale.x(today)
    parts.append(f'<line x1="{today_x:.1f}" y1="20" x2="{today_x:.1f}" y2="HEIGHT" stroke="{SCORE}" stroke-dasharray="2 3"/>')

    # dupilumab
    parts.append(_text(8, y + 18, "Dupilumab", font_size="13", font_weight="bold", fill=SCORE))
    if course is not None:
        x1, x2 = scale.x(max(course.start, start)), scale.x(course.end or today)
        status = "ongoing" if course.end is None else f"stopped {course.end.isoformat()}"
        reasons = "; ".join(r.text for r in course.stop_reasons)
        label = f"from {course.start.isoformat()}, {status}" + (f" ({reasons})" if reasons else "")
        parts.append(f'<rect x="{x1:.1f}" y="{y + 4}" width="{max(x2 - x1, 2):.1f}" height="22" rx="3" fill="{DRUG}" '
                     f'data-lane="dupilumab"><title>{escape("Dupilumab " + label)}</title></rect>')
        parts.append(_text(x1 + 4, y + 42, label, font_size="12", fill=SCORE))
    else:
        parts.append(_text(LEFT, y + 20, "no dupilumab course on record", font_size="12", fill=BASELINE))
    y += 60

    # one chart per score instrument
    for item in series:
        height = 110
        values = [s.value for s in item.scores] + [v for v in (item.target, item.baseline.value if item.baseline else None) if v is not None]
        top = max(values) * 1.15 or 1

        def scale_y(value: float, y: int = y, height: int = height, top: float = top) -> float:
            return y + height - 10 - (height - 20) * value / top

        parts.append(_text(8, y + 18, item.label, font_size="13", font_weight="bold", fill=SCORE))
        parts.append(f'<line x1="{LEFT}" y1="{y + height - 10}" x2="{WIDTH - RIGHT}" y2="{y + height - 10}" stroke="#d0d3d8"/>')
        if item.baseline is not None:
            by = scale_y(item.baseline.value)
            parts.append(f'<line x1="{LEFT}" y1="{by:.1f}" x2="{WIDTH - RIGHT}" y2="{by:.1f}" stroke="{BASELINE}" '
                         'stroke-dasharray="6 4" data-line="baseline"/>')
            parts.append(_text(WIDTH - RIGHT - 4, by - 4, f"baseline {item.baseline.value:g}", font_size="11", fill=BASELINE, text_anchor="end"))
        if item.target is not None:
            ty = scale_y(item.target)
            parts.append(f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{WIDTH - RIGHT}" y2="{ty:.1f}" stroke="{TARGET}" stroke-width="2" '
                         'stroke-dasharray="3 3" data-line="target"/>')
            parts.append(_text(WIDTH - RIGHT - 4, ty - 4, f"response target {item.target:g}", font_size="11", fill=TARGET, text_anchor="end"))
        visible = [s for s in item.scores if s.day >= start]
        if len(visible) > 1:
            points = " ".join(f"{scale.x(s.day):.1f},{scale_y(s.value):.1f}" for s in visible)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{SCORE}" stroke-width="2"/>')
        for score in visible:
            parts.append(f'<circle cx="{scale.x(score.day):.1f}" cy="{scale_y(score.value):.1f}" r="4" fill="{SCORE}">'
                         f"<title>{escape(f'{item.label} {score.value:g} on {score.day.isoformat()} ({score.source})')}</title></circle>")
        y += height + 10

    # eye events and ocular treatments
    eye_conditions = conditions_in_group(record, knowledge, vocabulary.EYE)
    red_flags = tuple(c for group in (vocabulary.EYE_RED_FLAG, vocabulary.EYE_SIGHT_THREAT) for c in conditions_in_group(record, knowledge, group))
    steroids = [u for u in record.medications_ if u.is_a(vocabulary.OPHTHALMIC_CORTICOSTEROID) and u.start]
    if eye_conditions or red_flags or steroids:
        parts.append(_text(8, y + 18, "Eyes", font_size="13", font_weight="bold", fill=SCORE))
        for use in steroids:
            assert use.start is not None  # steroids are those with a start
            x1 = scale.x(max(use.start, start))
            x2 = scale.x(use.last_day(today) or use.start)
            parts.append(f'<rect x="{x1:.1f}" y="{y + 30}" width="{max(x2 - x1, 2):.1f}" height="10" fill="{STEROID}" data-lane="eye-steroid">'
                         f"<title>{escape(f'{use.medication.label()} from {use.start.isoformat()} ({use.source})')}</title></rect>")
        for condition in eye_conditions:
            day = condition.began
            if day and day >= start:
                x = scale.x(day)
                colour = EYE if condition.active else BASELINE
                parts.append(f'<circle cx="{x:.1f}" cy="{y + 18}" r="6" fill="{colour}" data-mark="eye">'
                             f"<title>{escape(f'{condition.code.label()} from {day.isoformat()} ({condition.source})')}</title></circle>")
        for flag in red_flags:
            day = flag.began
            if day and day >= start:
                x = scale.x(day)
                parts.append(f'<path d="M{x:.1f},{y + 8} l7,13 h-14 z" fill="{RED_FLAG}" data-mark="red-flag">'
                             f"<title>{escape(f'Red flag: {flag.code.label()} from {day.isoformat()} ({flag.source})')}</title></path>")
        y += 50

    height = y + 10
    body = "".join(parts).replace("HEIGHT", str(height - 5))
    description = ("Dupilumab exposure, severity scores with baseline and response target, and eye events over time. "
                   "The tables below list the same data.")
    return (f'<svg role="img" aria-labelledby="timeline-title timeline-desc" viewBox="0 0 {WIDTH} {height}" '
            f'width="100%" preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif">'
            f'<title id="timeline-title">Dupilumab course timeline</title><desc id="timeline-desc">{description}</desc>'
            f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#ffffff"/>{body}</svg>')
