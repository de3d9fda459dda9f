"""The course on a timeline: drug exposure bars, a chart per severity score, and eye events.

Each lane is its own SVG strip, 100% wide with x in percent and y in pixels and no viewBox, so nothing is
scaled: text keeps its size in a 400 px panel and a 1,600 px screen alike. Lane names and long labels are
HTML beside the strips, where they can wrap. Every mark is also a row of a table (see course.html).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import Any

from ..assess.findings import Assessment
from ..assess.patient import conditions_in_group
from ..assess.response import SeverityScore, severity_scores
from ..knowledge import Knowledge, vocabulary
from ..record.model import PatientRecord

LEFT = 10.0  # percent of the width left of the plot: the score charts' y-axis values
RIGHT = 97.0  # the plot ends here (percent): room for the last date label
DRUG = "#1a5fb4"  # blue
OTHER_DRUG = "#3d6b5a"  # green-grey: next-line agents on record
SCORE = "#26282b"
BASELINE = "#5e5c64"
GRID = "#d0d3d8"
TARGET = "#1c7a3a"  # green
EYE = "#b5420a"  # orange
RED_FLAG = "#c01c28"
STEROID = "#7a3fbf"  # purple
FONT = 12  # px; the smallest text of the page is 11 px
CHART_HEIGHT = 130
EYE_ROW = 22
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Exposure:
    """A drug over a span of time: a bar, and a row of the treatments table."""

    lane: str  # dupilumab | eye-steroid | next-line
    drug: str
    start: date | None  # None: not on record (a table row, no bar)
    end: date | None  # None: taken now
    end_text: str
    why_stopped: str = ""

    @property
    def colour(self) -> str:
        return {"dupilumab": DRUG, "eye-steroid": STEROID}.get(self.lane, OTHER_DRUG)


@dataclass(frozen=True)
class EyeEvent:
    label: str  # drawn beside the mark
    day: date
    condition: str
    status: str
    red_flag: bool


@dataclass
class ScoreSeries:
    instrument: str
    label: str
    scores: list[SeverityScore]
    baseline: SeverityScore | None = None
    target: float | None = None
    target_label: str | None = None
    svg: str = ""  # its chart


@dataclass
class Timeline:
    start: date
    end: date
    today: date
    axis_svg: str
    exposures: list[tuple[Exposure, str]]  # each with its bar's strip ("" without a start: in the table only)
    series: list[ScoreSeries]
    eye_events: list[EyeEvent]
    eye_svg: str
    course_start: date | None

    @property
    def drawn(self) -> set[str]:
        """What kinds of mark are drawn: the legend names only those."""
        kinds = {exposure.lane for exposure, strip in self.exposures if strip}
        kinds |= {"red-flag" if e.red_flag else "eye" for e in self.eye_events if e.day >= self.start}
        if any(s.baseline for s in self.series):
            kinds.add("baseline")
        if any(s.target is not None for s in self.series):
            kinds.add("target")
        return kinds

    def week_of(self, day: date) -> str:
        """The week of the dupilumab course a day falls in ("" before the course)."""
        if self.course_start is None or day < self.course_start:
            return ""
        return str((day - self.course_start).days // 7)


class _Scale:
    def __init__(self, start: date, end: date):
        self.start, self.end = start, end
        self.days = max((end - start).days, 1)

    def x(self, day: date) -> float:
        fraction = min(max((day - self.start).days / self.days, 0.0), 1.0)
        return LEFT + (RIGHT - LEFT) * fraction


def _pc(value: float) -> str:
    return f"{value:.2f}%"


def _text(x: str, y: float, content: str, **attributes: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(str(v))}"' for k, v in attributes.items())
    return f'<text x="{x}" y="{y:.1f}" font-size="{FONT}"{extra}>{escape(content)}</text>'


def _strip(height: int, label: str, body: str) -> str:
    return (f'<svg class="strip" role="img" aria-label="{escape(label)}" width="100%" height="{height}" '
            f'font-family="system-ui, sans-serif"><title>{escape(label)}</title>{body}</svg>')


def _grid(scale: _Scale, today: date, top: float, bottom: float) -> str:
    """The month lines of the axis and the dashed line of today, drawn in every strip so the strips line up."""
    lines = [f'<line x1="{_pc(scale.x(t))}" y1="{top}" x2="{_pc(scale.x(t))}" y2="{bottom}" stroke="{GRID}"/>'
             for t, _, _ in _ticks(scale)]
    x = _pc(scale.x(today))
    lines.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="{SCORE}" stroke-dasharray="2 3" data-line="today"/>')
    return "".join(lines)


def _ticks(scale: _Scale) -> list[tuple[date, str, bool]]:
    """(day, label, minor): a tick per month for a short span, else per calendar quarter. Years are labelled at
    January (and at the first tick when no January is near); with more than six ticks, minor labels are hidden
    in a narrow panel (course.html) so that the labels left never collide."""
    step = 1 if scale.days < 300 else 3
    tick = date(scale.start.year, scale.start.month, 1)
    while (tick.month - 1) % step:
        tick = date(tick.year + tick.month // 12, tick.month % 12 + 1, 1)
    days = []
    while tick <= scale.end:
        if tick >= scale.start:
            days.append(tick)
        month = tick.month - 1 + step
        tick = date(tick.year + month // 12, month % 12 + 1, 1)
    few = len(days) <= 6
    ticks: list[tuple[date, str, bool]] = []
    for number, day in enumerate(days):
        name = _MONTHS[day.month - 1]
        if day.month == 1:
            ticks.append((day, str(day.year), False))
        elif number == 0 and not any(d.month == 1 for d in days[1:3]):
            ticks.append((day, f"{name} {day.year}", False))
        else:
            ticks.append((day, name, not few and (step == 3 or number % 2 == 1)))
    return ticks


def _axis(scale: _Scale, today: date) -> str:
    parts = []
    for tick, label, minor in _ticks(scale):
        at = scale.x(tick)
        parts.append(f'<line x1="{_pc(at)}" y1="20" x2="{_pc(at)}" y2="28" stroke="{BASELINE}"/>')
        anchor = "end" if at > 90 else "middle"  # a label at the right edge stays inside the strip
        year = label.isdigit()
        parts.append(_text(_pc(at), 14, label, fill=SCORE if year else BASELINE, text_anchor=anchor,
                           font_weight="bold" if year else "normal", **{"class": "tick minor" if minor else "tick"}))
    parts.append(f'<line x1="{_pc(LEFT)}" y1="28" x2="{_pc(RIGHT)}" y2="28" stroke="{BASELINE}"/>')
    now = _pc(scale.x(today))
    parts.append(f'<line x1="{now}" y1="18" x2="{now}" y2="30" stroke="{SCORE}" stroke-dasharray="2 3"/>')
    return _strip(30, f"Dates from {scale.start.isoformat()} to {scale.end.isoformat()}", "".join(parts))


def _bar(scale: _Scale, today: date, exposure: Exposure) -> str:
    if exposure.start is None:
        return ""
    x1, x2 = scale.x(exposure.start), scale.x(exposure.end or today)
    title = f"{exposure.drug} from {exposure.start.isoformat()} {exposure.end_text}"
    body = (_grid(scale, today, 0, 18) +
            f'<rect x="{_pc(x1)}" y="2" width="{_pc(max(x2 - x1, 0.4))}" height="14" rx="3" fill="{exposure.colour}" '
            f'data-lane="{exposure.lane}"><title>{escape(title)}</title></rect>')
    return _strip(18, title, body)


def nice_ticks(highest: float) -> list[float]:
    """0 and 3 to 5 round values up to at least `highest`: the y-axis of a score chart."""
    if highest <= 0:
        return [0.0, 1.0]
    raw = highest / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if highest <= 10 and step < 1:
        step = 1.0  # grades and 0-10 ratings in whole numbers
    count = math.ceil(highest / step - 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def _chart(scale: _Scale, today: date, item: ScoreSeries) -> str:
    top_y, bottom_y = 10, CHART_HEIGHT - 12
    values = [s.value for s in item.scores] + [v for v in (item.target, item.baseline.value if item.baseline else None) if v is not None]
    ticks = nice_ticks(max(values, default=1))
    highest = ticks[-1]

    def y(value: float) -> float:
        return bottom_y - (bottom_y - top_y) * value / highest

    parts = [_grid(scale, today, top_y, bottom_y)]
    for tick in ticks:
        parts.append(f'<line x1="{_pc(LEFT)}" y1="{y(tick):.1f}" x2="{_pc(RIGHT)}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        parts.append(_text(_pc(LEFT), y(tick) + 4, f"{tick:g}", dx="-4", text_anchor="end", fill=SCORE, **{"class": "y-tick"}))
    if item.baseline is not None:
        by = y(item.baseline.value)
        parts.append(f'<line x1="{_pc(LEFT)}" y1="{by:.1f}" x2="{_pc(RIGHT)}" y2="{by:.1f}" stroke="{BASELINE}" '
                     'stroke-width="1.5" stroke-dasharray="6 4" data-line="baseline"/>')
        # the label above its line, or below it when the line is at the top of the chart
        parts.append(_text(_pc(RIGHT), by - 4 if by > top_y + 12 else by + 14, f"baseline {item.baseline.value:g}",
                           fill=BASELINE, text_anchor="end"))
    if item.target is not None:
        ty = y(item.target)
        parts.append(f'<line x1="{_pc(LEFT)}" y1="{ty:.1f}" x2="{_pc(RIGHT)}" y2="{ty:.1f}" stroke="{TARGET}" stroke-width="2" '
                     'stroke-dasharray="3 3" data-line="target"/>')
        parts.append(_text(_pc(RIGHT), ty + (14 if item.baseline and abs(ty - y(item.baseline.value)) < 16 else -4),
                           f"target {item.target:g}", fill=TARGET, text_anchor="end"))
    visible = [s for s in item.scores if s.day >= scale.start]
    for a, b in zip(visible, visible[1:], strict=False):
        parts.append(f'<line x1="{_pc(scale.x(a.day))}" y1="{y(a.value):.1f}" x2="{_pc(scale.x(b.day))}" y2="{y(b.value):.1f}" '
                     f'stroke="{SCORE}" stroke-width="2"/>')
    for score in visible:
        parts.append(f'<circle cx="{_pc(scale.x(score.day))}" cy="{y(score.value):.1f}" r="4" fill="{SCORE}" data-mark="score">'
                     f"<title>{escape(f'{item.label} {score.value:g} on {score.day.isoformat()}')}</title></circle>")
    return _strip(CHART_HEIGHT, f"{item.label} over time, 0 to {highest:g}", "".join(parts))


def _eyes(scale: _Scale, today: date, events: list[EyeEvent]) -> str:
    parts = [_grid(scale, today, 0, EYE_ROW * len(events) + 4)]
    for row, event in enumerate(events):
        x, cy = scale.x(event.day), EYE_ROW * row + EYE_ROW / 2 + 2
        title = f"<title>{escape(f'{event.condition} from {event.day.isoformat()}, {event.status}')}</title>"
        if event.red_flag:
            # a triangle drawn in pixels around a point placed in percent: a nested svg carries the offset
            parts.append(f'<svg x="{_pc(x)}" y="{cy:.1f}" overflow="visible"><path d="M0,-7 l7,13 h-14 z" fill="{RED_FLAG}" '
                         f'data-mark="red-flag">{title}</path></svg>')
        else:
            colour = EYE if event.status == "active" else BASELINE
            parts.append(f'<circle cx="{_pc(x)}" cy="{cy:.1f}" r="6" fill="{colour}" data-mark="eye">{title}</circle>')
        # the label goes on the side with more room, so it stays inside the strip
        left_side = x > (LEFT + RIGHT) / 2
        parts.append(_text(_pc(x), cy + 4, event.label, dx="-10" if left_side else "10", text_anchor="end" if left_side else "start",
                           fill=SCORE, data_label="eye"))
    return _strip(EYE_ROW * len(events) + 4, "Eye events: " + "; ".join(f"{e.condition} from {e.day.isoformat()}" for e in events),
                  "".join(parts))


# -- what is drawn ------------------------------------------------------------------------------


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


def exposures(record: PatientRecord, assessment: Assessment, knowledge: Knowledge, today: date) -> list[Exposure]:
    """Dupilumab, steroid eye drops and the next-line agents on record, each with its span and why it stopped."""
    found = []
    course = assessment.course
    if course is not None:
        found.append(Exposure("dupilumab", "Dupilumab", course.start, course.end, _until(course.end, course.end_recorded),
                              "; ".join(r.text for r in course.stop_reasons)))
    for use in record.medications_:
        if use.is_a(vocabulary.OPHTHALMIC_CORTICOSTEROID) and use.start:
            last = use.last_day(today)
            ongoing = use.ongoing and (use.end is None or use.end >= today)
            found.append(Exposure("eye-steroid", use.medication.label(), use.start, None if ongoing else last,
                                  _until(None if ongoing else last, True)))
    for agent in assessment.history.uses:
        found.append(Exposure("next-line", knowledge.option(agent.agent).label, agent.start, agent.end,
                              _until(agent.end, True), "; ".join(r.text for r in agent.stop_reasons)))
    return found


def _until(end: date | None, recorded: bool) -> str:
    if end is None:
        return "ongoing"
    return f"to {end.isoformat()}" if recorded else f"to at least {end.isoformat()} (end not recorded)"


def eye_events(record: PatientRecord, knowledge: Knowledge) -> list[EyeEvent]:
    events = []
    for condition in conditions_in_group(record, knowledge, vocabulary.EYE):
        if condition.began:
            status = "active" if condition.active else (f"ended {condition.abatement.isoformat()}" if condition.abatement else "ended")
            events.append(EyeEvent(_short(condition.code.label()), condition.began, condition.code.label(), status, False))
    for group in (vocabulary.EYE_RED_FLAG, vocabulary.EYE_SIGHT_THREAT):
        for flag in conditions_in_group(record, knowledge, group):
            if flag.began:
                events.append(EyeEvent(_short("Red flag: " + flag.code.label()), flag.began, flag.code.label(),
                                       "active" if flag.active else "ended", True))
    return sorted(events, key=lambda e: e.day)


def _short(label: str, limit: int = 24) -> str:
    """A mark's label fits half a 400 px panel; the table beside it holds the whole name."""
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def build_timeline(record: PatientRecord, assessment: Assessment, knowledge: Knowledge, today: date) -> Timeline:
    series = score_series(record, assessment, knowledge)
    drugs = exposures(record, assessment, knowledge, today)
    eyes = eye_events(record, knowledge)
    course = assessment.course
    days = [s.day for item in series for s in item.scores] + [d.start for d in drugs if d.start] + [e.day for e in eyes]
    if course is not None:
        days.append(course.start - timedelta(weeks=8))
    start = min(days, default=today - timedelta(weeks=52))
    start = max(start, today - timedelta(weeks=156))  # three years at most: older history is in the tables
    scale = _Scale(start, today + timedelta(weeks=2))
    for item in series:
        item.svg = _chart(scale, today, item)
    shown = [e for e in eyes if e.day >= start]
    return Timeline(
        start=start, end=scale.end, today=today, axis_svg=_axis(scale, today),
        exposures=[(d, _bar(scale, today, d)) for d in drugs],
        series=series, eye_events=eyes, eye_svg=_eyes(scale, today, shown) if shown else "",
        course_start=course.start if course else None,
    )
