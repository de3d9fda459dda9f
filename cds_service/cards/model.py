"""CDS Hooks 2.0 card objects, with the spec's rules enforced where cards are built.

- `summary` is shorter than 140 characters (ended at a phrase boundary when too long, never rejected);
- every card and suggestion has a `uuid`;
- `selectionBehavior` is present whenever there are suggestions, and with
  `at-most-one` at most one suggestion is recommended;
- optional attributes with no value are omitted (no null, "", [] or {}).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUMMARY_LIMIT = 140  # characters; the spec says "<140"
INDICATORS = ("info", "warning", "critical")


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str | None = None

    def to_json(self) -> dict[str, Any]:
        return compact({"system": self.system, "code": self.code, "display": self.display})


@dataclass(frozen=True)
class Action:
    type: str  # create | update | delete
    description: str
    resource: dict[str, Any] | None = None
    resource_id: str | None = None

    def __post_init__(self) -> None:
        if self.type not in {"create", "update", "delete"}:
            raise ValueError(f"unknown action type {self.type}")
        if self.type == "delete" and (self.resource is not None or not self.resource_id):
            raise ValueError("a delete action names resourceId and carries no resource")
        if self.type != "delete" and self.resource is None:
            raise ValueError(f"a {self.type} action carries the whole resource")

    def to_json(self) -> dict[str, Any]:
        return compact(
            {"type": self.type, "description": self.description, "resource": self.resource, "resourceId": self.resource_id}
        )


@dataclass(frozen=True)
class Suggestion:
    label: str
    uuid: str
    actions: tuple[Action, ...] = ()
    is_recommended: bool | None = None
    key: str = ""  # what the uuid is derived from within its card (not sent)

    def to_json(self) -> dict[str, Any]:
        return compact(
            {
                "label": self.label,
                "uuid": self.uuid,
                "isRecommended": self.is_recommended,
                "actions": [a.to_json() for a in self.actions],
            }
        )


@dataclass(frozen=True)
class Link:
    label: str
    url: str
    type: str = "absolute"  # absolute | smart
    app_context: str | None = None

    def to_json(self) -> dict[str, Any]:
        if self.app_context is not None and self.type != "smart":
            raise ValueError("appContext is only valid on smart links")
        return compact({"label": self.label, "url": self.url, "type": self.type, "appContext": self.app_context})


@dataclass(frozen=True)
class Card:
    uuid: str
    summary: str
    indicator: str
    source_label: str
    topic: Coding | None = None
    source_url: str | None = None
    detail: str | None = None
    suggestions: tuple[Suggestion, ...] = ()
    selection_behavior: str | None = None
    override_reasons: tuple[Coding, ...] = field(default=())
    links: tuple[Link, ...] = ()
    key: str = ""  # what the uuid is derived from within a hook call (not sent)

    def __post_init__(self) -> None:
        if self.indicator not in INDICATORS:
            raise ValueError(f"unknown indicator {self.indicator}")
        if self.suggestions and self.selection_behavior not in {"at-most-one", "any"}:
            raise ValueError("cards with suggestions need selectionBehavior at-most-one or any")
        if self.selection_behavior == "at-most-one" and sum(bool(s.is_recommended) for s in self.suggestions) > 1:
            raise ValueError("at-most-one allows at most one recommended suggestion")
        if any(not r.display for r in self.override_reasons):
            raise ValueError("override reasons need a display")

    def to_json(self) -> dict[str, Any]:
        return compact(
            {
                "uuid": self.uuid,
                "summary": fit_summary(self.summary),
                "detail": self.detail,
                "indicator": self.indicator,
                "source": compact(
                    {"label": self.source_label, "url": self.source_url, "topic": self.topic.to_json() if self.topic else None}
                ),
                "suggestions": [s.to_json() for s in self.suggestions],
                "selectionBehavior": self.selection_behavior if self.suggestions else None,
                "overrideReasons": [r.to_json() for r in self.override_reasons],
                "links": [link.to_json() for link in self.links],
            }
        )


_PHRASE_ENDS = ("; ", " (", ": ", ", ")  # where a summary may end when it is too long, in order of preference
_SHORTEST = 12  # characters: a phrase shorter than this says too little to end on


def fit_summary(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """The text, shorter than `limit`, ended at a phrase boundary when too long: never cut mid-phrase, nor inside
    parentheses."""
    text = " ".join(text.split())
    if len(text) < limit:
        return text
    for end in _PHRASE_ENDS:
        cut = limit - 1
        while (cut := text.rfind(end, 0, cut)) > 0:
            head = text[:cut].rstrip(" ,;:")
            if len(head) >= _SHORTEST and head.count("(") == head.count(")"):
                return head
    return text[: text.rfind(" ", 0, limit - 1)].rstrip(" ,;:")


def compact(value: dict[str, Any]) -> dict[str, Any]:
    """Drop attributes with no value; `False` and `0` are values."""
    return {k: v for k, v in value.items() if v is not None and v != "" and v != [] and v != {}}
