"""A patient's Observations, indexed once by the concepts their code denotes and read on demand.

Observations are most of a record (years of labs and vital signs), and the rules read few of them:
every score of an instrument, and the latest result of a lab or vital sign. Reading each one into an
`ObservationEntry` cost more than parsing the request (1,000-resource record: 4 ms against 2.5 ms),
so the index only sorts raw resources by their code (once per distinct code element) and reads:

- a concept's whole series when asked for it (`of`: the SMART app's score timeline);
- a score's series from a day on and the latest usable one before it (`baseline_and_since`: judging a
  dupilumab course needs its scores and one baseline, not years of earlier ones);
- the latest final result per concept (`latest_final`): each candidate's status, subject and date
  are looked at, and only the latest one is read (scores, which reading may drop, from the latest back
  until each has one);
- everything, for `all` and for the notes of a record being explained.

The answers are those of reading every resource first: `tests/test_record.py` checks them against
each other on every fixture and on synthetic records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson

from ..knowledge.concepts import ConceptKind
from . import fhir_json as fj
from .model import Concept, ConceptMatch, ObservationEntry

RESULT_STATUSES = frozenset({"final", "amended", "corrected"})  # FHIR ObservationStatus values of a usable result
OBSERVATION_KINDS = (ConceptKind.SCORE, ConceptKind.LAB, ConceptKind.VITAL)

# Reads one raw Observation already matched to (concept, matches): an entry or None, and the notes it made.
ReadObservation = Callable[[dict[str, Any], Concept, tuple[ConceptMatch, ...], list[str]], "ObservationEntry | None"]


def _is_result(raw: Mapping[str, Any]) -> bool:
    """A usable result's status (checked as sent: any element may be malformed)."""
    status = raw.get("status")
    return isinstance(status, str) and status in RESULT_STATUSES


def observation_effective(raw: Mapping[str, Any]) -> Any:
    """The element that dates an Observation, as sent (a FHIR date/dateTime string, or something malformed)."""
    period = raw.get("effectivePeriod")
    return raw.get("effectiveDateTime") or (period.get("start") if isinstance(period, dict) else None) \
        or raw.get("effectiveInstant") or raw.get("issued")


@dataclass
class _CodeGroup:
    """Observations sharing one code element: the same concept and matches."""

    concept: Concept
    matches: tuple[ConceptMatch, ...]
    read_whole: bool  # a score may be dropped or keep fewer matches when read: such groups are read in full
    members: list[int] = field(default_factory=list)  # positions in ObservationIndex._raws


class ObservationIndex:
    def __init__(
        self,
        raws: Iterable[dict[str, Any]],
        match_element: Callable[[Any], tuple[Concept, tuple[ConceptMatch, ...]]],
        score_concepts: frozenset[str],
        read: ReadObservation,
        foreign_patient: Callable[[dict[str, Any]], bool],
    ):
        """`match_element(code)` matches a code element; `foreign_patient(raw)` says (without noting) that a
        resource names another patient; `read` turns a raw resource into an entry, as reading all would."""
        self._read = read
        self._foreign_patient = foreign_patient
        self._raws: list[dict[str, Any]] = []
        self._groups: list[_CodeGroup] = []
        self._by_concept: dict[str, list[_CodeGroup]] = {}
        self._entries: dict[int, ObservationEntry | None] = {}
        self._notes: dict[int, list[str]] = {}
        self._all: tuple[ObservationEntry, ...] | None = None
        self._latest: dict[date, dict[str, ObservationEntry]] = {}  # by day: asked by the factors and by monitoring
        by_code: dict[bytes, _CodeGroup] = {}
        for raw in raws:
            code = raw.get("code")
            try:
                key = orjson.dumps(code)
            except TypeError:  # not JSON-serialisable (cannot come from a parsed request): matched on its own
                key = None
            group = by_code.get(key) if key is not None else None
            if group is None:
                concept, matches = match_element(code)
                group = _CodeGroup(concept, matches, any(m.concept in score_concepts for m in matches))
                if key is not None:
                    by_code[key] = group
                if matches:
                    self._groups.append(group)
                    for match in matches:
                        self._by_concept.setdefault(match.concept, []).append(group)
            if group.matches:
                group.members.append(len(self._raws))
                self._raws.append(raw)

    def _read_members(self, group: _CodeGroup, positions: Iterable[int]) -> None:
        """Read the members not read yet."""
        for position in positions:
            if position not in self._entries:
                notes: list[str] = []
                self._entries[position] = self._read(self._raws[position], group.concept, group.matches, notes)
                if notes:
                    self._notes[position] = notes

    def _read_group(self, group: _CodeGroup) -> list[tuple[int, ObservationEntry]]:
        self._read_members(group, group.members)
        return [(p, e) for p in group.members if (e := self._entries[p]) is not None]

    def all(self) -> tuple[ObservationEntry, ...]:
        """Every Observation the rules could use, sorted by resource."""
        if self._all is None:
            self._all = _sorted(found for g in self._groups for found in self._read_group(g))
        return self._all

    def notes(self) -> list[str]:
        """What reading every Observation noted, in the order they were sent."""
        self.all()
        return [note for position in sorted(self._notes) for note in self._notes[position]]

    def of(self, concepts: Iterable[str]) -> tuple[ObservationEntry, ...]:
        """The Observations matching any of `concepts`, sorted by resource."""
        groups = {id(g): g for c in concepts for g in self._by_concept.get(c, ())}
        return _sorted(found for g in groups.values() for found in self._read_group(g))

    def baseline_and_since(self, concepts: Iterable[str], since: date) -> tuple[ObservationEntry, ...]:
        """The Observations of `concepts` dated from `since` on and, per concept, the latest usable one before
        it (final, with a value; of two on the same day the larger resource label, then the one sent later),
        sorted by resource: what judging a response from `since` needs, without reading years of history.
        Undated ones are left out (they are never usable)."""
        wanted = set(concepts)
        groups = {id(g): g for c in wanted for g in self._by_concept.get(c, ())}
        found: list[tuple[int, ObservationEntry]] = []
        raws = self._raws
        for group in groups.values():
            recent: list[int] = []
            earlier: list[tuple[date, str, int]] = []
            for position in group.members:
                day = fj.fhir_day(observation_effective(raws[position]))
                if day is None:
                    continue
                if day >= since:
                    recent.append(position)
                else:
                    earlier.append((day, fj.resource_label(raws[position]), position))
            self._read_members(group, recent)
            found.extend((p, e) for p in recent if (e := self._entries[p]) is not None)
            found += self._first_read(
                group, (p for _, _, p in sorted(earlier, reverse=True)),  # the latest first; of equals, the last sent
                {m.concept for m in group.matches} & wanted,
                lambda entry: entry.status in RESULT_STATUSES and entry.value is not None,
            )
        return _sorted(found)

    def latest_final(self, today: date) -> dict[str, ObservationEntry]:
        """Per concept, the latest result with a final status dated up to `today`; of two on the same day the
        larger resource label, then the one sent first: the same choice as over every Observation read."""
        found = self._latest.get(today)
        if found is None:
            found = self._latest[today] = self._latest_final(today)
        return found

    def _latest_final(self, today: date) -> dict[str, ObservationEntry]:
        best: dict[str, tuple[date, str, int, ObservationEntry]] = {}

        def offer(day: date, label: str, position: int, entry: ObservationEntry) -> None:
            for match in entry.matches:
                current = best.get(match.concept)
                if current is None or (day, label, -position) > (current[0], current[1], -current[2]):
                    best[match.concept] = (day, label, position, entry)

        for group in self._groups:
            if group.read_whole:
                for position, entry in self._latest_read(group, today):
                    offer(entry.effective, entry.source, position, entry)  # type: ignore[arg-type]
                continue
            top = self._latest_candidate(group, today)
            if top is None:
                continue
            self._read_members(group, (top[2],))
            latest = self._entries[top[2]]
            if latest is not None:  # always, for a lab or vital that passed the candidate checks
                offer(*top, latest)
        return {concept: found[3] for concept, found in best.items()}

    def _latest_read(self, group: _CodeGroup, today: date) -> list[tuple[int, ObservationEntry]]:
        """Scores: reading may drop a member or some of its matches (a value out of range), so candidates are
        read from the latest back until each of the group's concepts has its latest final result."""
        raws = self._raws
        candidates = []
        for position in group.members:
            raw = raws[position]
            if not _is_result(raw):
                continue
            day = fj.fhir_day(observation_effective(raw))
            if day is not None and day <= today:
                candidates.append((day, fj.resource_label(raw), -position))
        return self._first_read(
            group, (-negative for _, _, negative in sorted(candidates, reverse=True)),  # of equals, the first sent
            {m.concept for m in group.matches},
            lambda entry: True,  # the status and date were checked on the raw resource
        )

    def _first_read(
        self, group: _CodeGroup, positions: Iterable[int], needed: set[str], usable: Callable[[ObservationEntry], bool]
    ) -> list[tuple[int, ObservationEntry]]:
        """Read members in the order given until each of the `needed` concepts has one usable entry, kept; an
        entry counts for the concepts its matches still kept once read."""
        found = []
        for position in positions:
            if not needed:
                break
            self._read_members(group, (position,))
            entry = self._entries[position]
            if entry is None or not usable(entry):
                continue
            concepts = needed.intersection(m.concept for m in entry.matches)
            if concepts:
                needed -= concepts
                found.append((position, entry))
        return found

    def _latest_candidate(self, group: _CodeGroup, today: date) -> tuple[date, str, int] | None:
        """Labs and vitals: reading keeps every member of the patient that is not entered in error, with the
        group's matches, so the latest can be chosen from status, date and subject alone. Labels are compared
        only between members of the same day, and the subject is checked only for the one chosen."""
        raws = self._raws
        passed_over: set[int] = set()  # chosen, then found to name another patient
        while True:
            top_day: date | None = None
            top_position = -1
            top_label: str | None = None
            for position in group.members:  # ascending: of equal labels, the first sent stays
                raw = raws[position]
                if not _is_result(raw):
                    continue
                day = fj.fhir_day(raw.get("effectiveDateTime") or observation_effective(raw))
                if day is None:
                    continue
                if day > today or (top_day is not None and day < top_day) or position in passed_over:
                    continue
                if day == top_day:
                    top_label = top_label or fj.resource_label(raws[top_position])
                    label = fj.resource_label(raw)
                    if label <= top_label:
                        continue
                    top_label = label
                else:
                    top_label = None
                top_day, top_position = day, position
            if top_day is None:
                return None
            if not self._foreign_patient(raws[top_position]):
                return top_day, top_label or fj.resource_label(raws[top_position]), top_position
            passed_over.add(top_position)


def _by_source(entry: ObservationEntry) -> str:
    return entry.source


def _sorted(found: Iterable[tuple[int, ObservationEntry]]) -> tuple[ObservationEntry, ...]:
    """By resource label, then in the order sent (as reading them all in order and sorting did)."""
    return tuple(entry for _, entry in sorted(found, key=lambda f: (f[1].source, f[0])))
