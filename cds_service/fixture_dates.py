"""Fixture dates are relative: each scenario is written as of its `evaluate_at` day (its anchor) and is
materialised to another day by shifting every date in it by the same number of days. The story a demo
patient tells (weeks on drug, age, how recent a result is) is then the same whatever the calendar says.

Shifted: every string that is a FHIR date, dateTime or instant, and every full date (YYYY-MM-DD) written
inside a longer string (narrative text, a scenario's expected texts). Partial dates (YYYY, YYYY-MM) move
with the day their first day moves to.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

_FULL_DATE = re.compile(r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d])")
_PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def service_today() -> date:
    """Today as the service's clock counts it (UTC): the day demo stories are told as of."""
    return datetime.now(UTC).date()


def shift_days(anchor: date | datetime, today: date) -> int:
    """Days to add to the scenario's dates so that its anchor falls on `today`."""
    day = anchor.date() if isinstance(anchor, datetime) else anchor
    return (today - day).days


def materialise(value: Any, days: int) -> Any:
    """A copy of a JSON value with every date moved by `days` (0: an identical copy)."""
    if isinstance(value, dict):
        return {key: materialise(item, days) for key, item in value.items()}
    if isinstance(value, list):
        return [materialise(item, days) for item in value]
    if isinstance(value, str) and days:
        return _shift_text(value, days)
    return value


def _shift_text(text: str, days: int) -> str:
    partial = _PARTIAL_DATE.match(text)
    if partial and len(text) in (4, 7) and _plausible_year(int(partial.group(1))):
        moved = date(int(partial.group(1)), int(partial.group(2) or 1), 1) + timedelta(days=days)
        return f"{moved.year:04d}" if len(text) == 4 else f"{moved.year:04d}-{moved.month:02d}"
    return _FULL_DATE.sub(lambda m: _shift_match(m, days), text)


def _shift_match(match: re.Match[str], days: int) -> str:
    try:
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)  # not a date (a code or an identifier that looks like one)
    if not _plausible_year(day.year):
        return match.group(0)
    return (day + timedelta(days=days)).isoformat()


def _plausible_year(year: int) -> bool:
    return 1900 <= year <= 2100
